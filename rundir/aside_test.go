package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Moving a corrupt state.json aside never overwrites an earlier aside copy, even when
// the clock gives the same instant every time (three `--force` runs within one tick of
// a coarse clock) and when an unrelated file already holds the first name.
func TestMoveAsideNeverOverwrites(t *testing.T) {
	at := time.Date(2026, 12, 2, 1, 2, 3, 456, time.UTC)
	cases := []struct {
		name     string
		moves    int
		occupied bool // a file already holds the first aside name
	}{
		{"one move", 1, false},
		{"three moves in the same instant", 3, false},
		{"first name taken by another file", 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t.TempDir())
			first := d.State() + ".corrupt-20261202T010203.000000456Z"
			if tc.occupied {
				if err := os.WriteFile(first, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]string{}
			for i := 0; i < tc.moves; i++ {
				content := "corrupt copy " + string(rune('A'+i))
				if err := os.WriteFile(d.State(), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				dst, err := MoveAside(d.State(), at)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(dst, first) {
					t.Fatalf("aside name %q, want it to start with %q", dst, first)
				}
				if _, dup := seen[dst]; dup {
					t.Fatalf("move %d reused the aside name %s", i+1, dst)
				}
				seen[dst] = content
				if _, err := os.Stat(d.State()); !os.IsNotExist(err) {
					t.Fatalf("state.json still there after the move: %v", err)
				}
			}
			for dst, want := range seen {
				if got, err := os.ReadFile(dst); err != nil || string(got) != want {
					t.Fatalf("%s holds %q (%v), want %q", filepath.Base(dst), got, err, want)
				}
			}
			if tc.occupied {
				if got, _ := os.ReadFile(first); string(got) != "keep me" {
					t.Fatalf("the file that held the first name now holds %q", got)
				}
			}
			asides, _ := filepath.Glob(d.State() + ".corrupt-*")
			want := tc.moves
			if tc.occupied {
				want++
			}
			if len(asides) != want {
				t.Fatalf("%d aside files %v, want %d", len(asides), asides, want)
			}
		})
	}
}

func TestMoveAsideMissingFile(t *testing.T) {
	d := New(t.TempDir())
	_, err := MoveAside(d.State(), time.Now())
	if err == nil || !strings.Contains(err.Error(), d.State()) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("moving a missing state.json: %v, want a not-exist error naming it", err)
	}
}
