//go:build cgo

package preflight

import "testing"

// TestLibraryLoads checks the probe behind HaveNVML on libraries that are and are not
// there: libc is on every host these tests run on.
func TestLibraryLoads(t *testing.T) {
	cases := []struct {
		name string
		want bool
	}{
		{"libc.so.6", true},
		{"libnvidia-ml-not-installed.so.1", false},
		{"/nonexistent/libnvidia-ml.so.1", false},
	}
	for _, tc := range cases {
		if got := libraryLoads(tc.name); got != tc.want {
			t.Errorf("libraryLoads(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
