package classify

import (
	"encoding/binary"
	"strings"
)

// gramFilter is the literal prefilter that keeps healthy lines cheap. Every literal
// contains a 4-byte gram chosen to be rare in ordinary log text (capitals and
// punctuation over lower case, digits and spaces); the filter holds those grams hashed
// into a bit set. A line can contain a literal only if one of its 4-byte windows hits
// the set. Unlike the automaton, whose every step waits for the previous state, each
// window is tested independently, so the CPU overlaps them: about 1 ns per byte
// instead of 3. A hit (a real gram or a hash collision) sends the line on to the
// automaton, which is exact.
type gramFilter struct {
	bits *[gramWords]uint64
	// all is set when some literal is shorter than a gram: the filter then passes
	// every line to the automaton.
	all bool
}

const (
	gramHashBits = 20 // 1 Mbit, 128 KiB: few collisions with a few hundred grams
	gramWords    = 1 << gramHashBits / 64
)

func gramHash(g uint32) uint32 { return (g * 0x9E3779B1) >> (32 - gramHashBits) }

// byteCost scores how common a byte is in training logs; the rarest gram of a
// literal is the one with the lowest sum.
func byteCost(b byte) int {
	switch {
	case b == ' ' || b >= '0' && b <= '9':
		return 5
	case b >= 'a' && b <= 'z':
		if b == 'e' || b == 't' || b == 'a' || b == 'o' || b == 'i' || b == 'n' || b == 's' || b == 'r' {
			return 4
		}
		return 3
	case b == '.' || b == ',' || b == ':' || b == '\'' || b == '|' || b == '%' || b == '/' || b == '-' || b == '_' || b == '=' || b == '[' || b == ']' || b == '{' || b == '}' || b == '(' || b == ')':
		return 3
	case b >= 'A' && b <= 'Z':
		return 1
	}
	return 0
}

// commonLogText is the vocabulary of healthy training output. A gram found in it is
// never chosen while the literal has another: "loss is nan" must not make every loss
// line look suspect.
const commonLogText = "{'loss': 0.6931, 'grad_norm': 1.25, 'learning_rate': 2e-05, 'epoch': 0.5} " +
	"step 100 loss 2.31 lr 1e-4 Epoch 1: 45%|####  | 445/1000 [02:13<02:46, 3.34it/s, v_num=0, train_loss=0.412] " +
	"INFO - trainer - eval_loss tokens/s time: 0.199 data_time iter: 659 total_loss: 1.619 loss_cls: 1.110 max_mem: 2996M " +
	"Saving model checkpoint to output/checkpoint-500 global_step samples_per_second"

func gramCost(g string) int {
	c := byteCost(g[0]) + byteCost(g[1]) + byteCost(g[2]) + byteCost(g[3])
	if strings.Contains(commonLogText, g) {
		c += 100
	}
	return c
}

// gramSlack is how much rarer than a literal's rarest gram another may be and still be
// chosen because other literals share it: fewer distinct grams, fewer collisions.
const gramSlack = 4

func newGramFilter(rs []rule) gramFilter {
	f := gramFilter{bits: new([gramWords]uint64)}
	// unless-literals only matter on lines a literal already flagged.
	var lits []string
	for _, r := range rs {
		for _, l := range r.literals {
			if len(l) < 4 {
				f.all = true
				continue
			}
			lits = append(lits, l)
		}
	}
	// How many literals each gram could serve. One seen map, cleared per literal, and
	// each distinct gram's cost computed once: this runs at every start-up, and a map
	// per literal and a search of commonLogText per gram visit were most of the time
	// `trainwrap classify` took on a small log.
	shared := map[string]int{}
	seen := map[string]bool{}
	for _, l := range lits {
		clear(seen)
		for o := 0; o+4 <= len(l); o++ {
			if g := l[o : o+4]; !seen[g] {
				seen[g] = true
				shared[g]++
			}
		}
	}
	cost := make(map[string]int, len(shared))
	for g := range shared {
		cost[g] = gramCost(g)
	}
	for _, l := range lits {
		lo := 1 << 30
		for o := 0; o+4 <= len(l); o++ {
			lo = min(lo, cost[l[o:o+4]])
		}
		best, bestShared, bestCost := 0, -1, 0
		for o := 0; o+4 <= len(l); o++ {
			g := l[o : o+4]
			c := cost[g]
			if c > lo+gramSlack {
				continue
			}
			if shared[g] > bestShared || shared[g] == bestShared && c < bestCost {
				best, bestShared, bestCost = o, shared[g], c
			}
		}
		h := gramHash(binary.LittleEndian.Uint32([]byte(l[best : best+4])))
		f.bits[h>>6] |= 1 << (h & 63)
	}
	return f
}

// mayMatch reports whether line may contain a literal; false is certain.
func (f *gramFilter) mayMatch(line []byte) bool {
	if f.all {
		return true
	}
	bits := f.bits
	var acc uint64
	i := 0
	for ; i+8 <= len(line); i += 4 {
		// One 8-byte load gives four overlapping 4-byte windows.
		w := binary.LittleEndian.Uint64(line[i:])
		h0 := gramHash(uint32(w))
		h1 := gramHash(uint32(w >> 8))
		h2 := gramHash(uint32(w >> 16))
		h3 := gramHash(uint32(w >> 24))
		acc |= bits[h0>>6]>>(h0&63) | bits[h1>>6]>>(h1&63) | bits[h2>>6]>>(h2&63) | bits[h3>>6]>>(h3&63)
	}
	for ; i+4 <= len(line); i++ {
		h := gramHash(binary.LittleEndian.Uint32(line[i:]))
		acc |= bits[h>>6] >> (h & 63)
	}
	return acc&1 != 0
}

// firstHit returns the offset of the first 4-byte window of b that hits the set, or
// len(b) when none does: no literal lies wholly inside b[:firstHit(b)+3]. Run over a
// whole read of output at once it vouches for many lines with one call.
func (f *gramFilter) firstHit(b []byte) int {
	if f.all {
		return 0
	}
	bits := f.bits
	i := 0
	for ; i+12 <= len(b); i += 8 {
		// Two 8-byte loads give eight overlapping windows, tested together; a hit
		// is located exactly by the loop below.
		w := binary.LittleEndian.Uint64(b[i:])
		v := binary.LittleEndian.Uint64(b[i+4:])
		h0 := gramHash(uint32(w))
		h1 := gramHash(uint32(w >> 8))
		h2 := gramHash(uint32(w >> 16))
		h3 := gramHash(uint32(w >> 24))
		h4 := gramHash(uint32(v))
		h5 := gramHash(uint32(v >> 8))
		h6 := gramHash(uint32(v >> 16))
		h7 := gramHash(uint32(v >> 24))
		acc := bits[h0>>6]>>(h0&63) | bits[h1>>6]>>(h1&63) | bits[h2>>6]>>(h2&63) | bits[h3>>6]>>(h3&63) |
			bits[h4>>6]>>(h4&63) | bits[h5>>6]>>(h5&63) | bits[h6>>6]>>(h6&63) | bits[h7>>6]>>(h7&63)
		if acc&1 != 0 {
			break
		}
	}
	for ; i+4 <= len(b); i++ {
		h := gramHash(binary.LittleEndian.Uint32(b[i:]))
		if bits[h>>6]>>(h&63)&1 != 0 {
			return i
		}
	}
	return len(b)
}
