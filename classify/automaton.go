package classify

// automaton is an Aho-Corasick matcher over the rules' literals. The root's edges are
// a dense table (most bytes leave the root at once); every other state keeps only its
// own edges, sorted in one flat array, and a failure link. That keeps the matcher a few
// hundred kilobytes however many literals the tables add (a dense table of 30,000
// states × 256 edges was 15 MB, resident for the supervisor's life), at the price of a
// short scan per byte on the lines it runs on: the gram filter in front of it
// (prefilter.go) keeps healthy lines off it. It allocates nothing when it runs.
type automaton struct {
	root [256]state
	// State s's edges are edgeByte/edgeTo[first[s]:first[s+1]].
	first    []int32
	edgeByte []byte
	edgeTo   []state
	fail     []state
	// State s's outputs, the literal ids that end there (through failure links too),
	// are outIDs[outFirst[s]:outFirst[s+1]].
	outFirst []int32
	outIDs   []int32
	// lit[id] is the rule index of literal id; -1-ri for rule ri's unless-literals.
	lit []int32
	// grams is the prefilter in front of the automaton (see mayMatch).
	grams gramFilter
}

// state is an automaton state; 0 is the root.
type state = int32

// step follows byte b from st, through failure links where st has no edge for it.
func (a *automaton) step(st state, b byte) state {
	for st != 0 {
		for i, end := a.first[st], a.first[st+1]; i < end; i++ {
			if a.edgeByte[i] == b {
				return a.edgeTo[i]
			}
		}
		st = a.fail[st]
	}
	return a.root[b]
}

// outputs lists the literal ids that end at st.
func (a *automaton) outputs(st state) []int32 {
	return a.outIDs[a.outFirst[st]:a.outFirst[st+1]]
}

// size is the matcher's memory in bytes, less the prefilter.
func (a *automaton) size() int {
	return len(a.root)*4 + len(a.first)*4 + len(a.edgeByte) + len(a.edgeTo)*4 + len(a.fail)*4 + len(a.outFirst)*4 + len(a.outIDs)*4 + len(a.lit)*4
}

// trie is the automaton while it is built: children as linked lists.
type trie struct {
	child, sibling []state
	label          []byte
	out            [][]int32
	// rootOf[b] is the root's child for b, plus one (0: none): the root has a child
	// for most bytes, and walking its list for each literal was a quarter of start-up.
	rootOf [256]state
}

func (t *trie) add(s string, id int32) {
	st := state(0)
	for i := 0; i < len(s); i++ {
		next := t.find(st, s[i])
		if next < 0 {
			next = state(len(t.child))
			t.child = append(t.child, -1)
			t.sibling = append(t.sibling, t.child[st])
			t.label = append(t.label, s[i])
			t.out = append(t.out, nil)
			t.child[st] = next
			if st == 0 {
				t.rootOf[s[i]] = next + 1
			}
		}
		st = next
	}
	t.out[st] = append(t.out[st], id)
}

func (t *trie) find(st state, b byte) state {
	if st == 0 {
		return t.rootOf[b] - 1
	}
	for c := t.child[st]; c >= 0; c = t.sibling[c] {
		if t.label[c] == b {
			return c
		}
	}
	return -1
}

func compile(rs []rule) *automaton {
	t := &trie{child: []state{-1}, sibling: []state{-1}, label: []byte{0}, out: [][]int32{nil}}
	a := &automaton{}
	for ri, r := range rs {
		for _, l := range r.literals {
			t.add(l, int32(len(a.lit)))
			a.lit = append(a.lit, int32(ri))
		}
		for _, l := range r.unless {
			// unless-literals are matched too, so one pass finds them.
			t.add(l, int32(len(a.lit)))
			a.lit = append(a.lit, int32(-1-ri))
		}
	}
	n := len(t.child)
	fail := make([]state, n)
	// Breadth first: a state's failure link is the longest proper suffix of its path
	// that is also a path, and its outputs include that state's.
	queue := make([]state, 0, n)
	for c := t.child[0]; c >= 0; c = t.sibling[c] {
		queue = append(queue, c)
	}
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		if f := fail[s]; len(t.out[f]) > 0 {
			t.out[s] = append(t.out[s], t.out[f]...)
		}
		for c := t.child[s]; c >= 0; c = t.sibling[c] {
			f := fail[s]
			for {
				if g := t.find(f, t.label[c]); g >= 0 {
					fail[c] = g
					break
				}
				if f == 0 {
					break
				}
				f = fail[f]
			}
			queue = append(queue, c)
		}
	}
	a.fail = fail
	a.first = make([]int32, n+1)
	a.outFirst = make([]int32, n+1)
	for s := 0; s < n; s++ {
		a.first[s] = int32(len(a.edgeByte))
		for c := t.child[s]; c >= 0; c = t.sibling[c] {
			a.edgeByte = append(a.edgeByte, t.label[c])
			a.edgeTo = append(a.edgeTo, c)
		}
		a.outFirst[s] = int32(len(a.outIDs))
		a.outIDs = append(a.outIDs, t.out[s]...)
	}
	a.first[n], a.outFirst[n] = int32(len(a.edgeByte)), int32(len(a.outIDs))
	for c := t.child[0]; c >= 0; c = t.sibling[c] {
		a.root[t.label[c]] = c
	}
	a.grams = newGramFilter(rs)
	return a
}
