package classify

import (
	"testing"
)

// automatonFinds reports whether the exact automaton finds any rule literal in line.
func automatonFinds(a *automaton, line []byte) bool {
	st := state(0)
	for _, b := range line {
		st = a.step(st, b)
		for _, id := range a.outputs(st) {
			if a.lit[id] >= 0 {
				return true
			}
		}
	}
	return false
}

// TestPrefilterNeverMisses: every literal, alone or inside other text, gets past the
// gram filter; and healthy lines do not.
func TestPrefilterNeverMisses(t *testing.T) {
	a := compiled()
	for _, r := range rules() {
		for _, l := range r.literals {
			for _, line := range []string{l, "x" + l, "[rank3]: " + l + " tail", "ab" + l + "c"} {
				if !a.grams.mayMatch([]byte(line)) {
					t.Errorf("rule %s: the prefilter drops %q", r.name, line)
				}
			}
		}
	}
	passed := 0
	lines := healthyLines()
	for _, l := range lines {
		if a.grams.mayMatch(l) {
			passed++
		}
	}
	// Hash collisions may let a few through; a literal common in healthy output
	// would let most through and undo the point of the filter.
	if passed > len(lines)/20 {
		t.Errorf("%d of %d healthy lines get past the prefilter", passed, len(lines))
	}
}

func TestGramCostAvoidsHealthyVocabulary(t *testing.T) {
	if gramCost("loss") < 100 || gramCost("s na") >= 100 {
		t.Errorf("gramCost(loss) = %d, gramCost(s na) = %d", gramCost("loss"), gramCost("s na"))
	}
}
