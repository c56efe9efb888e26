package preflight

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryCgroupLayouts reads recorded /proc and /sys/fs/cgroup trees of each
// layout (testdata/preflight/cgroup/*): MemAvailable there is 32.8 GB.
func TestMemoryCgroupLayouts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		layout string
		want   Status
		value  string
		detail string
		reason string
	}{
		{"v2", Warn, "2.1 GB available (cgroup v2 limit 8.6 GB, 6.4 GB used)", "cgroup v2 /job.slice: limit 8.6 GB", "only 2.1 GB"},
		{"v2-container", OK, "32.8 GB available", "cgroup v2 /: limit 34.4 GB", ""},
		{"v1", Warn, "295.0 MB available (cgroup v1 limit 4.3 GB, 4.0 GB used)", "cgroup v1 /docker/abc", "only 295.0 MB"},
		{"hybrid", OK, "32.8 GB available", "", ""},
		{"old-kernel", Fail, "", "", "no MemAvailable line"},
	}
	for _, tc := range cases {
		t.Run(tc.layout, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join("..", "testdata", "preflight", "cgroup", tc.layout)
			c := &MemoryCheck{MinAvailable: 4 * GB, ProcRoot: filepath.Join(root, "proc"), CgroupRoot: filepath.Join(root, "sys")}
			r := runCheck(t, c)
			wantResult(t, r, tc.want, tc.reason)
			if r.Value != tc.value {
				t.Errorf("value %q, want %q", r.Value, tc.value)
			}
			details := strings.Join(r.Details, "\n")
			if tc.detail == "" && details != "" {
				t.Errorf("details %q, want none (no limit applies)", details)
			}
			if !strings.Contains(details, tc.detail) {
				t.Errorf("details %q lack %q", details, tc.detail)
			}
		})
	}
}

// TestMemoryThisHost runs the check against this machine's real files.
func TestMemoryThisHost(t *testing.T) {
	t.Parallel()
	r := runCheck(t, &MemoryCheck{MinAvailable: 1})
	wantResult(t, r, OK)
	if !strings.Contains(r.Value, "available") {
		t.Errorf("value %q", r.Value)
	}
	// No host has a petabyte free: the same measurement must warn.
	wantResult(t, runCheck(t, &MemoryCheck{MinAvailable: 1000 * TB}), Warn, "of memory available to the job (want 1000.0 TB)")
}
