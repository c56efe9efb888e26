package classify

import (
	"bytes"
	"fmt"
	"syscall"
)

// Evidence is one line that supports a verdict, with its line number in the output.
type Evidence struct {
	Line int64  `json:"line"`
	Text string `json:"text"`
	Rule string `json:"rule,omitempty"`
}

// Verdict is why an attempt ended, and what to do about it.
type Verdict struct {
	Class      Class      `json:"class"`
	Evidence   []Evidence `json:"evidence"`
	Suggestion string     `json:"suggestion"`
	Retryable  bool       `json:"retryable"`
	ExitCode   int        `json:"exit_code"`
	// Rank is the torchrun/MPI rank the decisive line came from, when one is named.
	Rank *int `json:"rank,omitempty"`
}

// Exit is how the attempt ended, as the supervisor saw it.
type Exit struct {
	Code               int            // exit status when the process exited normally
	Signal             syscall.Signal // non-zero when it was killed by a signal
	Stalled            bool           // stopped by the supervisor for lack of progress
	StopRequested      bool           // the user asked trainwrap to stop
	KilledBySupervisor bool           // the fatal signal came from trainwrap's stop escalation
	OOMKillDelta       int64          // rise of the cgroup's oom_kill counter; -1 unknown
}

// Limits that keep a classifier's memory bounded whatever the job prints.
const (
	maxEvidencePerClass = 3
	maxEvidenceText     = 400
	ringLines           = 16
)

type hit struct {
	ev    Evidence
	class Class
	rank  int
	tier  tier
}

// Classifier gathers evidence from one attempt's output. It is not safe for concurrent
// use; the supervisor serialises ObserveLine calls.
type Classifier struct {
	a       *automaton
	lines   int64
	matched []bool // per rule, reset per line
	unless  []bool
	hits    map[Class][]hit
	// final is the last line shaped like the last line of a Python traceback.
	final     *hit
	finalLine int64
	ring      [ringLines][]byte
	ringN     int
}

// New returns a classifier. The rules are compiled once per process.
func New() *Classifier {
	a := compiled()
	return &Classifier{a: a, matched: make([]bool, len(rules)), unless: make([]bool, len(rules)), hits: map[Class][]hit{}}
}

// Lines is the number of lines observed.
func (c *Classifier) Lines() int64 { return c.lines }

// ObserveLine takes one line of output (without its newline). It keeps nothing of
// line but bounded copies of evidence and of the last few lines.
func (c *Classifier) ObserveLine(line []byte) {
	c.lines++
	slot := &c.ring[c.ringN%ringLines]
	n := min(len(line), maxEvidenceText)
	*slot = append((*slot)[:0], line[:n]...)
	c.ringN++

	if !c.a.grams.mayMatch(line) {
		return
	}
	st, any := state(0), false
	next, out := c.a.next, c.a.out
	for _, b := range line {
		st = next[st][b]
		if out[st] != nil {
			any = true
			for _, id := range out[st] {
				if r := c.a.lit[id]; r >= 0 {
					c.matched[r] = true
				} else {
					c.unless[-1-r] = true
				}
			}
		}
	}
	if !any {
		return
	}
	c.slowPath(line)
}

// slowPath runs for the few lines the automaton flagged.
func (c *Classifier) slowPath(line []byte) {
	defer func() {
		clear(c.matched)
		clear(c.unless)
	}()
	text, rank := normalize(line)
	if isWarning(text) {
		return
	}
	isFinal := finalException(text)
	var best *hit
	for ri, m := range c.matched {
		if !m || c.unless[ri] {
			continue
		}
		r := &rules[ri]
		h := hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: r.name}, class: r.class, rank: rank, tier: r.tier}
		// Capped per tier, so early hints cannot crowd out a later root cause.
		list := c.hits[r.class]
		same := 0
		for _, o := range list {
			if o.tier == h.tier {
				same++
			}
		}
		if same < maxEvidencePerClass {
			c.hits[r.class] = append(list, h)
		}
		if best == nil || h.tier > best.tier {
			hh := h
			best = &hh
		}
	}
	if isFinal {
		if best == nil {
			best = &hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: "traceback"}, class: Unknown, rank: rank, tier: hint}
		}
		c.final = best
		c.finalLine = c.lines
	}
}

// isWarning reports lines that are warnings, not crashes.
func isWarning(text []byte) bool {
	return bytes.Contains(text, []byte("Warning:")) || bytes.Contains(text, []byte("warnings.warn")) || bytes.HasPrefix(text, []byte("[W ")) || bytes.HasPrefix(text, []byte("WARNING")) ||
		// A library that says it will retry has handled the error (wandb's "Network
		// error (ReadTimeout), entering retry loop."): if it gives up, it says so.
		bytes.Contains(text, []byte("entering retry loop"))
}

// finalException reports the shape of a traceback's last line: a dotted exception
// name ending in Error, Exception or Interrupt at the start of the line, then ":" or
// the end.
func finalException(text []byte) bool {
	i := 0
	for i < len(text) && (text[i] == '_' || text[i] == '.' || (text[i]|0x20 >= 'a' && text[i]|0x20 <= 'z') || (i > 0 && text[i] >= '0' && text[i] <= '9')) {
		i++
	}
	name := text[:i]
	if !(bytes.HasSuffix(name, []byte("Error")) || bytes.HasSuffix(name, []byte("Exception")) || bytes.HasSuffix(name, []byte("Interrupt"))) {
		return false
	}
	return i == len(text) || text[i] == ':'
}

func clip(b []byte) string {
	if len(b) > maxEvidenceText {
		return string(b[:maxEvidenceText]) + "…"
	}
	return string(b)
}

// strongest returns the decisive log evidence: the last traceback's final line when it
// names a root cause; else the earliest root cause; else the earliest consequence; else
// the earliest hint.
func (c *Classifier) strongest() (Class, *hit) {
	if c.final != nil && c.final.tier == root {
		return c.final.class, c.final
	}
	for _, t := range []tier{root, consequence, hint} {
		var bestClass Class
		var best *hit
		// In the classes' fixed order, so a line that names two classes at one tier
		// always gives the same verdict.
		for _, in := range classTable {
			cl, hs := in.Class, c.hits[in.Class]
			for i := range hs {
				if hs[i].tier != t {
					continue
				}
				if best == nil || hs[i].ev.Line < best.ev.Line {
					best, bestClass = &hs[i], cl
				}
				break
			}
		}
		if best != nil {
			return bestClass, best
		}
	}
	return None, nil
}

// Verdict weighs the evidence against how the attempt ended. It is cheap and may be
// called at once when the child exits.
func (c *Classifier) Verdict(e Exit) Verdict {
	if e.Signal == 0 && e.Code == 0 && !e.Stalled {
		return c.verdict(None, nil, "")
	}
	if e.Stalled {
		return c.verdict(Hang, nil, "")
	}
	cl, h := c.strongest()
	tierOf := tier(0)
	if h != nil {
		tierOf = h.tier
	}
	switch {
	case e.Signal == syscall.SIGKILL && !e.KilledBySupervisor:
		if tierOf == root {
			return c.verdict(cl, h, "")
		}
		note := "The kernel's OOM killer is the most likely sender of a SIGKILL nobody asked for, but the cgroup's OOM-kill counter did not confirm it (check dmesg, and the scheduler's memory limit)."
		if e.OOMKillDelta > 0 {
			note = fmt.Sprintf("The cgroup's OOM-kill counter rose by %d during the attempt: the kernel's OOM killer took it.", e.OOMKillDelta)
		}
		return c.verdict(HostOOM, h, note)
	case e.Signal == syscall.SIGSEGV || e.Signal == syscall.SIGBUS || e.Signal == syscall.SIGABRT:
		if tierOf == root || tierOf == consequence {
			return c.verdict(cl, h, "")
		}
		return c.verdict(Segfault, h, fmt.Sprintf("The process died by %s.", signalName(e.Signal)))
	case e.Signal != 0:
		if h != nil {
			return c.verdict(cl, h, "")
		}
		return c.verdict(Unknown, nil, fmt.Sprintf("The process died by %s.", signalName(e.Signal)))
	}
	if h != nil {
		return c.verdict(cl, h, "")
	}
	// A shell or wrapper that reports a child's signal as 128+N.
	switch e.Code {
	case 128 + int(syscall.SIGKILL):
		return c.verdict(HostOOM, nil, "Exit code 137 is 128+SIGKILL: a process under the job was killed, most likely by the OOM killer.")
	case 128 + int(syscall.SIGSEGV), 128 + int(syscall.SIGBUS), 128 + int(syscall.SIGABRT):
		return c.verdict(Segfault, nil, fmt.Sprintf("Exit code %d is 128+%s.", e.Code, signalName(syscall.Signal(e.Code-128))))
	}
	return c.verdict(Unknown, nil, "")
}

// FromLog is the verdict of a log alone, without an exit status (`trainwrap classify`):
// the strongest evidence, or a traceback at the very end, or None.
func (c *Classifier) FromLog() Verdict {
	cl, h := c.strongest()
	if h != nil && h.tier >= hint && cl != Unknown {
		return c.verdict(cl, h, "")
	}
	if c.final != nil && c.lines-c.finalLine < ringLines {
		return c.verdict(Unknown, c.final, "")
	}
	return c.verdict(None, nil, "")
}

func (c *Classifier) verdict(cl Class, h *hit, note string) Verdict {
	in := Lookup(cl)
	v := Verdict{Class: cl, Suggestion: in.Suggestion, Retryable: in.Retryable, ExitCode: in.ExitCode, Evidence: []Evidence{}}
	if note != "" {
		v.Suggestion = note + " " + v.Suggestion
	}
	if cl == None {
		return v
	}
	if h != nil {
		if h.rank >= 0 {
			r := h.rank
			v.Rank = &r
		}
		v.Evidence = append(v.Evidence, h.ev)
		for _, o := range c.hits[cl] {
			if o.ev.Line != h.ev.Line {
				v.Evidence = append(v.Evidence, o.ev)
			}
		}
	}
	if cl == Hang || len(v.Evidence) == 0 {
		v.Evidence = append(v.Evidence, c.tail(3)...)
	}
	return v
}

// tail returns the last n observed lines as evidence.
func (c *Classifier) tail(n int) []Evidence {
	var out []Evidence
	for i := max(0, c.ringN-n); i < c.ringN; i++ {
		text, _ := normalize(c.ring[i%ringLines])
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		out = append(out, Evidence{Line: c.lines - int64(c.ringN-1-i), Text: clip(text), Rule: "last output"})
	}
	return out
}

func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV", syscall.SIGBUS: "SIGBUS", syscall.SIGABRT: "SIGABRT", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}
