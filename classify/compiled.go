package classify

import "sync"

// compiled is the rules' automaton, built on first use and never changed after.
var compiled = sync.OnceValue(func() *automaton { return compile(rules()) })
