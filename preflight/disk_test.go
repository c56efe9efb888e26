package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestDiskFilledTmpfs fills a real 16 MB tmpfs to different levels.
func TestDiskFilledTmpfs(t *testing.T) {
	cases := []struct {
		name    string
		free    uint64 // bytes left free after filling
		minFree uint64
		want    Status
		reason  string
	}{
		{"room", 15 * MB, 4 * MB, OK, ""},
		{"under min", 3 * MB, 4 * MB, Warn, "under 4.0 MB"},
		{"under 10 percent", 1 * MB, 100 * KB, Warn, "under 1.7 MB"}, // 10% of 16 MiB
		{"under a tenth of min", 200 * KB, 4 * MB, Fail, "ENOSPC"},
		{"full", 0, 4 * MB, Fail, "only 0 B free"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := mountTmpfs(t, "size=16m")
			fillTo(t, dir, tc.free)
			c := &DiskCheck{Paths: []DiskPath{{Label: "run dir", Path: dir}}, MinFree: tc.minFree}
			wantResult(t, runCheck(t, c), tc.want, tc.reason)
		})
	}
}

// TestDiskInodes runs out of inodes on a tmpfs with 100 of them.
func TestDiskInodes(t *testing.T) {
	cases := []struct {
		files int
		want  Status
	}{
		{10, OK},
		{93, Warn}, // 100 inodes, the root takes one: 6 left
		{99, Fail}, // none left
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.files), func(t *testing.T) {
			dir := mountTmpfs(t, "size=16m,nr_inodes=100")
			for i := 0; i < tc.files; i++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
					t.Fatalf("file %d: %v", i, err)
				}
			}
			c := &DiskCheck{Paths: []DiskPath{{Label: "logs", Path: dir}}, MinFree: 1 * MB}
			r := runCheck(t, c)
			wantResult(t, r, tc.want)
			if tc.want != OK {
				wantResult(t, r, tc.want, "inodes free")
			}
		})
	}
}

// TestDiskPaths: paths on one filesystem are reported once, a path not created yet
// is measured on its nearest existing parent, and the worst filesystem wins.
func TestDiskPaths(t *testing.T) {
	full := mountTmpfs(t, "size=4m")
	fillTo(t, full, 0)
	roomy := mountTmpfs(t, "size=64m")
	c := &DiskCheck{Paths: []DiskPath{
		{Label: "run dir", Path: filepath.Join(roomy, "not", "yet")},
		{Label: "logs", Path: roomy},
		{Label: "checkpoints", Path: full},
	}, MinFree: 1 * MB}
	r := runCheck(t, c)
	wantResult(t, r, Fail, "checkpoints: only 0 B free on "+full)
	if r.Value != "0 B free on checkpoints" {
		t.Errorf("value %q, want the worst filesystem", r.Value)
	}
	if len(r.Details) != 2 {
		t.Fatalf("details %q, want one line per filesystem", r.Details)
	}
	if want := "run dir, logs (" + filepath.Join(roomy, "not", "yet") + ")"; r.Details[0][:len(want)] != want {
		t.Errorf("detail %q, want it to start with %q", r.Details[0], want)
	}
}

func TestDiskMissingEverything(t *testing.T) {
	t.Parallel()
	c := &DiskCheck{}
	wantResult(t, runCheck(t, c), Skip)
}
