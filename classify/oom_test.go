package classify

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestOOMKillCount reads real-shaped cgroup trees copied from cgroup v1 and v2 hosts.
func TestOOMKillCount(t *testing.T) {
	tests := []struct {
		dir        string
		want       int64
		sourceTail string
		wantErr    bool
	}{
		{"v2", 2, "kubepods.slice/pod1/cri-abc/memory.events", false},
		{"v2nested", 5, "job.scope/memory.events", false}, // the leaf has no memory controller: walk up
		{"v1", 3, "job_42/memory.oom_control", false},
		{"v1old", 17, "abc/memory.failcnt", false}, // no oom_kill key on old kernels
		{"v2none", 0, "", true},
		{"missing", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			root := filepath.Join("..", "testdata", "classify", "cgroup", tt.dir)
			n, src, err := oomKillCount(filepath.Join(root, "proc-self-cgroup"), filepath.Join(root, "fs"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if n != tt.want || !strings.HasSuffix(src, tt.sourceTail) {
				t.Errorf("got %d from %q, want %d from …%s", n, src, tt.want, tt.sourceTail)
			}
		})
	}
}

// TestOOMKillCountHere reads this machine's own cgroup: a number or a clear error, never a panic.
func TestOOMKillCountHere(t *testing.T) {
	n, src, err := OOMKillCount()
	if err != nil {
		t.Logf("no counter here: %v", err)
		return
	}
	if n < 0 || src == "" {
		t.Errorf("OOMKillCount() = %d from %q", n, src)
	}
}
