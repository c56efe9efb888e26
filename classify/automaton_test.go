package classify

import (
	"slices"
	"testing"
)

// found runs the automaton over s and returns the literals seen, in rule order.
func found(a *automaton, lits []string, s string) []string {
	seen := map[int32]bool{}
	st := state(0)
	for i := 0; i < len(s); i++ {
		st = a.step(st, s[i])
		for _, id := range a.outputs(st) {
			seen[id] = true
		}
	}
	var out []string
	for id := range lits {
		if seen[int32(id)] {
			out = append(out, lits[id])
		}
	}
	return out
}

func TestAutomaton(t *testing.T) {
	rs := []rule{
		{name: "a", literals: []string{"he", "she", "his", "hers"}},
		{name: "b", literals: []string{"CUDA error:", "CUDA error: out of memory"}, unless: []string{"previous error"}},
		{name: "c", literals: []string{"aaa"}},
	}
	a := compile(rs)
	var lits []string
	for _, r := range rs {
		lits = append(lits, r.literals...)
		lits = append(lits, r.unless...)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"no match", "loss 0.123 lr 1e-4", nil},
		{"empty line", "", nil},
		{"at start", "he said", []string{"he"}},
		{"at end", "said he", []string{"he"}},
		{"overlapping through failure links", "ushers", []string{"he", "she", "hers"}},
		{"one literal inside another", "RuntimeError: CUDA error: out of memory", []string{"CUDA error:", "CUDA error: out of memory"}},
		{"prefix of a literal only", "CUDA erro", nil},
		{"unless literal found too", "CUDA error: see previous error", []string{"CUDA error:", "previous error"}},
		{"repeated letters", "aaaa", []string{"aaa"}},
		{"case matters", "cuda ERROR:", nil},
		{"binary bytes", "\x00\xff\xfeCUDA error:\x80", []string{"CUDA error:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(a, lits, tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %q in %q, want %q", got, tt.in, tt.want)
			}
		})
	}
	for id, want := range []int32{0, 0, 0, 0, 1, 1, -2, 2} {
		if a.lit[id] != want {
			t.Errorf("literal %d (%q) maps to rule %d, want %d", id, lits[id], a.lit[id], want)
		}
	}
}

// TestRulesLiteralsReachable proves every literal of the real rules is found by the
// compiled automaton when it stands alone on a line.
func TestRulesLiteralsReachable(t *testing.T) {
	a := compiled()
	for ri, r := range rules() {
		for _, l := range r.literals {
			c := &Classifier{a: a, matched: make([]bool, len(rules())), unless: make([]bool, len(rules()))}
			st := state(0)
			for i := 0; i < len(l); i++ {
				st = a.step(st, l[i])
				for _, id := range a.outputs(st) {
					if r := a.lit[id]; r >= 0 {
						c.matched[r] = true
					}
				}
			}
			if !c.matched[ri] {
				t.Errorf("rule %s: literal %q not found by the automaton", r.name, l)
			}
		}
	}
}

// TestMatcherStaysSmall: the matcher is resident for the supervisor's life, whatever
// the tables add. A dense table of its states would be tens of megabytes.
func TestMatcherStaysSmall(t *testing.T) {
	a := compile(rules())
	states := len(a.fail)
	if size, dense := a.size(), states*256*2; size > 2<<20 || size*10 > dense {
		t.Errorf("matcher of %d states takes %d bytes (a dense table would take %d), want under 2 MiB", states, size, dense)
	}
}
