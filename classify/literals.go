package classify

// Literals returns every literal the rules match on, the unless-literals included, each
// once, in rule order: the work the prefilter does per byte, for tools that compare it
// with grep over the same patterns (bench/classify.sh).
func Literals() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rules {
		for _, group := range [][]string{r.literals, r.unless} {
			for _, l := range group {
				if !seen[l] {
					seen[l] = true
					out = append(out, l)
				}
			}
		}
	}
	return out
}
