package preflight

import (
	"path/filepath"
	"testing"
)

func TestShm(t *testing.T) {
	small := mountTmpfs(t, "size=64m") // Docker's default /dev/shm
	big := mountTmpfs(t, "size=2g")
	fullBig := mountTmpfs(t, "size=40m")
	fillTo(t, fullBig, 1*MB)
	cases := []struct {
		name   string
		path   string
		min    uint64
		want   Status
		reason string
	}{
		{"docker default", small, 1 * GB, Warn, "bus error"},
		{"big enough", big, 1 * GB, OK, ""},
		{"lower --shm-min", small, 32 * MB, OK, ""},
		{"full", fullBig, 32 * MB, Warn, "kB free (want 32.0 MB)"},
		{"missing", filepath.Join(big, "nope"), 1 * GB, Warn, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantResult(t, runCheck(t, &ShmCheck{Path: tc.path, Min: tc.min}), tc.want, tc.reason)
		})
	}
}
