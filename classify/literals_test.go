package classify

import (
	"slices"
	"testing"
)

func TestLiterals(t *testing.T) {
	got := Literals()
	for _, r := range rules {
		for _, l := range append(append([]string(nil), r.literals...), r.unless...) {
			if !slices.Contains(got, l) {
				t.Errorf("rule %s: literal %q missing from Literals()", r.name, l)
			}
		}
	}
	seen := map[string]bool{}
	for _, l := range got {
		if seen[l] {
			t.Errorf("%q listed twice", l)
		}
		seen[l] = true
	}
}
