package classify

// automaton is an Aho-Corasick matcher over the rules' literals, compiled once into a
// dense transition table: one table lookup per byte, no allocation, whatever the number
// of literals. It is exact; the gram filter in front of it (prefilter.go) keeps healthy
// lines off it.
type automaton struct {
	next [][256]state
	// out[state] lists the literal ids that end at state (including through failure
	// links); nil for most states.
	out [][]int32
	// lit[id] is the rule index of literal id.
	lit []int32
	// grams is the prefilter in front of the automaton (see mayMatch).
	grams gramFilter
}

// state is an automaton state. 16 bits halve the dense table (a few thousand states
// × 256 edges stays resident for the supervisor's life); TestStatesFit keeps the rules
// under the limit.
type state = uint16

// maxStates is how many states a state can number.
const maxStates = 1 << 16

func compile(rs []rule) *automaton {
	a := &automaton{next: make([][256]state, 1), out: make([][]int32, 1)}
	for ri, r := range rs {
		for _, l := range r.literals {
			a.add(l, int32(len(a.lit)))
			a.lit = append(a.lit, int32(ri))
		}
		for _, l := range r.unless {
			// unless-literals are matched too, so one pass finds them; they map to
			// -1-ri to tell them apart.
			a.add(l, int32(len(a.lit)))
			a.lit = append(a.lit, int32(-1-ri))
		}
	}
	a.link()
	a.grams = newGramFilter(rs)
	return a
}

// add puts literal id into the trie; -1 in next means "no edge yet".
func (a *automaton) add(s string, id int32) {
	st := state(0)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if a.next[st][b] == 0 {
			a.next = append(a.next, [256]state{})
			a.out = append(a.out, nil)
			a.next[st][b] = state(len(a.next) - 1)
		}
		st = a.next[st][b]
	}
	a.out[st] = append(a.out[st], id)
}

// link turns the trie into a DFA: breadth first, each missing edge follows the
// failure link, and each state's outputs include its failure state's.
func (a *automaton) link() {
	fail := make([]state, len(a.next))
	var queue []state
	for b := 0; b < 256; b++ {
		if s := a.next[0][b]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if f := fail[st]; len(a.out[f]) > 0 {
			a.out[st] = append(a.out[st], a.out[f]...)
		}
		for b := 0; b < 256; b++ {
			s := a.next[st][b]
			if s == 0 {
				a.next[st][b] = a.next[fail[st]][b]
				continue
			}
			fail[s] = a.next[fail[st]][b]
			queue = append(queue, s)
		}
	}
}
