package classify

import (
	"path/filepath"
	"strings"
	"testing"
)

// The trees under testdata/classify/cgroup mimic /proc/self/cgroup and /sys/fs/cgroup:
// each has proc/ (self links to 1/, which holds cgroup) and a mount point fs/.
func TestOOMKillCount(t *testing.T) {
	tests := []struct {
		tree   string
		want   int64
		source string // path of the counter, relative to fs/
		err    string
	}{
		{tree: "v1", want: 3, source: "memory/slurm/uid_1000/job_42/memory.oom_control"},
		{tree: "v1old", want: 17, source: "memory/docker/abc/memory.failcnt"},
		{tree: "v2", want: 2, source: "kubepods.slice/pod1/cri-abc/memory.events"},
		{tree: "v2nested", want: 5, source: "job.scope/memory.events"},
		{tree: "v2none", err: "no memory cgroup counter"},
		{tree: "missing", err: "oom count"},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			root := filepath.Join("..", "testdata", "classify", "cgroup", tt.tree)
			mount := filepath.Join(root, "fs")
			n, src, err := oomKillCount(filepath.Join(root, "proc"), mount)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want || src != filepath.Join(mount, tt.source) {
				t.Errorf("got %d from %s, want %d from %s", n, src, tt.want, filepath.Join(mount, tt.source))
			}
		})
	}
}

// TestOOMKillCountHere reads this machine's real counter when it has one; either a
// count or a clear error, never a panic.
func TestOOMKillCountHere(t *testing.T) {
	n, src, err := OOMKillCount()
	if err != nil {
		t.Logf("no counter here: %v", err)
		return
	}
	if n < 0 || src == "" {
		t.Errorf("count %d from %q", n, src)
	}
}
