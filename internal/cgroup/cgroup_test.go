package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// procTree writes a /proc with one process, 1, whose cgroup file holds content, and
// self linking to it, as the kernel's does.
func procTree(t *testing.T, content string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "1", "cgroup"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("1", filepath.Join(root, "self")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestSelf(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    Membership
		err     string
	}{
		{"v2 only", "0::/kubepods.slice/pod1/cri-abc\n", Membership{Unified: "/kubepods.slice/pod1/cri-abc", HasUnified: true, V1: map[string]string{}}, ""},
		{"v2 root in a container", "0::/\n", Membership{Unified: "/", HasUnified: true, V1: map[string]string{}}, ""},
		{
			"v1 with shared and named hierarchies",
			"12:pids:/slurm/job_42\n5:memory:/slurm/job_42\n4:cpu,cpuacct:/slurm\n1:name=systemd:/user.slice\n",
			Membership{V1: map[string]string{"pids": "/slurm/job_42", "memory": "/slurm/job_42", "cpu": "/slurm", "cpuacct": "/slurm", "name=systemd": "/user.slice"}},
			"",
		},
		{
			"hybrid: v1 memory and a v2 line",
			"4:memory:/user.slice\n0::/user.slice/session.scope\n",
			Membership{Unified: "/user.slice/session.scope", HasUnified: true, V1: map[string]string{"memory": "/user.slice"}},
			"",
		},
		{"path with colons", "0::/a:b/c\n", Membership{Unified: "/a:b/c", HasUnified: true, V1: map[string]string{}}, ""},
		{"empty file", "", Membership{V1: map[string]string{}}, ""},
		{"not a cgroup line", "garbage\n", Membership{}, "self/cgroup"},
		{"hierarchy not a number", "x:memory:/a\n", Membership{}, "hierarchy ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Self(procTree(t, tt.content))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Self: %v, want an error saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Self = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSelfMissing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "proc")
	_, err := Self(root)
	if want := "read " + filepath.Join(root, "self", "cgroup") + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Self: %v, want an error starting %q", err, want)
	}
}

// This machine's own file reads without error wherever /proc is mounted.
func TestSelfHere(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skipf("no /proc/self/cgroup here: %v", err)
	}
	m, err := Self("")
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasUnified && len(m.V1) == 0 {
		t.Errorf("Self = %+v: in no hierarchy at all", m)
	}
}
