package classify

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// Evidence is one line that supports a verdict, with its line number in the output:
// the type runs.jsonl stores, so that a verdict is recorded as it was found.
type Evidence = rundir.Evidence

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

// silenceHang is how long a job must have printed nothing before it was killed for the
// kill to read as a hang's end.
const silenceHang = 30 * time.Minute

// Classifier gathers evidence from one attempt's output. It is not safe for concurrent
// use; the supervisor serialises ObserveLine calls.
type Classifier struct {
	a  *automaton
	rs []rule
	// disabled[i] leaves rule i out (the corpus test's leave-one-source-out runs).
	disabled []bool
	lines    int64
	matched  []bool // per rule, reset per line
	unless   []bool
	hits     map[Class][]hit
	// final is the decisive exception of the last traceback: in a chain, the first
	// root cause; else its last exception. finalTB tells one ending a traceback from a
	// bare exception-shaped line, which a log may print and go on.
	final     *hit
	finalTB   bool
	finalLine int64
	// fatal is the first sign of a crash that names no class (a traceback, a fatal
	// error, a C++ terminate): a log holding one is never none.
	fatal *hit
	ring  [ringLines][]byte
	ringN int

	// Structure. inTB is set between a traceback's header and its last line, when every
	// line is looked at (frames are skipped, the exception line is parsed).
	inTB      bool
	tbRank    int
	tbIgnored bool  // "Exception ignored in": Python printed it and went on
	ignoredAt int64 // line of the last "Exception ignored in"
	chained   bool  // the next traceback continues the current chain
	whatNext  bool  // a C++ terminate: its what() line is the exception
	terminate bool
	fault     string // faulthandler's "Fatal Python error: <fault>"
	hung      bool   // a hang was already recorded from a thread dump
	// ncclSetup: the log shows NCCL setting up a communicator through the store, so a
	// store timeout is NCCL's.
	ncclSetup bool
	// precursor is the last line printed before a throw that may be caught
	// (markPrecursor); it decides only a failed attempt whose log names nothing else.
	precursor *hit
	// waitAt is the line of the last "still waiting for peers" message
	// (markBarrierWait), waitHit its evidence.
	waitAt  int64
	waitHit *hit
	// tbIndent is the indentation of the current traceback's header: a traceback
	// quoted with a uniform indent keeps its frames deeper and its exception level.
	tbIndent int
}

// New returns a classifier. The rules are compiled once per process.
func New() *Classifier {
	return newClassifier(nil)
}

// newClassifier returns a classifier that ignores the rules off reports.
func newClassifier(off func(*rule) bool) *Classifier {
	a, rs := compiled(), rules()
	c := &Classifier{a: a, rs: rs, matched: make([]bool, len(rs)), unless: make([]bool, len(rs)), hits: map[Class][]hit{}, tbRank: -1}
	if off != nil {
		c.disabled = make([]bool, len(rs))
		for i := range rs {
			c.disabled[i] = off(&rs[i])
		}
	}
	return c
}

// Lines is the number of lines observed.
func (c *Classifier) Lines() int64 { return c.lines }

// ObserveLine takes one line of output (without its newline). It keeps nothing of
// line but bounded copies of evidence and of the last few lines.
func (c *Classifier) ObserveLine(line []byte) {
	c.remember(line)
	if c.inTB && c.tracebackLine(line) {
		return
	}
	if !c.a.grams.mayMatch(line) {
		return
	}
	if !c.scan(line) {
		return
	}
	c.slowPath(line, false)
	if exc := pyCallstackException(line); exc != nil {
		// The traceback ended inside the string; its last line is the exception.
		c.inTB = false
		c.scan(exc)
		c.slowPath(exc, true)
	}
}

// remember counts line and keeps its start among the last few lines.
func (c *Classifier) remember(line []byte) {
	c.lines++
	slot := &c.ring[c.ringN%ringLines]
	n := min(len(line), maxEvidenceText)
	*slot = append((*slot)[:0], line[:n]...)
	c.ringN++
}

// QuietUpTo vouches for a stretch of output at once, so that a caller holding a large
// read need not hand the classifier each healthy line in full. b is raw output, many
// lines with their newlines; it returns n such that every line that ends (its newline)
// before b[n] can hold nothing the classifier acts on, whatever part of its bytes the
// caller passes: ObserveQuiet does for it all that ObserveLine would. The answer holds
// until the next ObserveLine call, which may open a traceback (then QuietUpTo is 0:
// inside one, every line is looked at).
func (c *Classifier) QuietUpTo(b []byte) int {
	if c.inTB {
		return 0
	}
	return c.a.grams.firstHit(b)
}

// ObserveQuiet takes a line that QuietUpTo vouched for: it is counted and kept among
// the last lines, as ObserveLine would, without the scan. For any other line it would
// lose evidence.
func (c *Classifier) ObserveQuiet(line []byte) {
	c.remember(line)
}

// vscodeException heads the exception widget VS Code shows when the debugger stops
// on an exception (src/vs/workbench/contrib/debug/browser/exceptionWidget.ts,
// "exceptionThrownWithId": "Exception has occurred: {0}", the exception's type).
var vscodeException = []byte("Exception has occurred: ")

// pyCallstackException returns the exception line that ends the traceback torchelastic
// writes, escaped, into its error file ("py_callstack": "Traceback (most recent call
// last):\n  File ...\nValueError: bad\n"; elastic/multiprocessing/errors/
// error_handler.py records traceback.format_exc()), unescaped; nil when the line holds
// none or the string is cut off before it closes.
func pyCallstackException(line []byte) []byte {
	key := []byte(`"py_callstack": "`)
	i := bytes.Index(line, key)
	if i < 0 {
		return nil
	}
	s := line[i+len(key):]
	end := -1
	for j := 0; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == '"' {
			end = j
			break
		}
	}
	if end < 0 {
		return nil
	}
	s = bytes.TrimSuffix(s[:end], []byte(`\n`))
	if k := bytes.LastIndex(s, []byte(`\n`)); k >= 0 {
		s = s[k+2:]
	}
	out := make([]byte, 0, len(s))
	for j := 0; j < len(s); j++ {
		if s[j] == '\\' && j+1 < len(s) {
			j++
		}
		out = append(out, s[j])
	}
	if excTypeName(out, false) == nil {
		return nil
	}
	return out
}

// scan runs the automaton over line and marks the rules whose literals it holds.
func (c *Classifier) scan(line []byte) bool {
	st, any := state(0), false
	a := c.a
	for _, b := range line {
		st = a.step(st, b)
		if a.outFirst[st] != a.outFirst[st+1] {
			any = true
			for _, id := range a.outputs(st) {
				if r := c.a.lit[id]; r >= 0 {
					c.matched[r] = true
				} else {
					c.unless[-1-r] = true
				}
			}
		}
	}
	return any
}

// tracebackLine handles a line inside a traceback; false sends it on the normal path.
func (c *Classifier) tracebackLine(line []byte) bool {
	text, rank, indent := normalizeIndent(line)
	if c.tbRank >= 0 && rank >= 0 && rank != c.tbRank {
		// Another rank's line, interleaved.
		return false
	}
	if len(text) == 0 || indent >= c.tbIndent+2 || bytes.HasPrefix(text, []byte(`File "`)) || caretLine(text) || richFrame(text) {
		return true
	}
	c.inTB = false
	if excTypeName(text, false) == nil {
		return false
	}
	c.scan(line)
	c.slowPath(line, true)
	return true
}

// richFrame reports the box Rich draws around a traceback's frames (Lightning, Typer
// and HF CLIs install it): "│ /path/train.py:281 in fit │", "╰────╯".
func richFrame(text []byte) bool {
	return bytes.HasPrefix(text, []byte("│")) || bytes.HasPrefix(text, []byte("╰")) || bytes.HasPrefix(text, []byte("╭"))
}

// caretLine reports the markers Python 3.11+ prints under a frame's code.
func caretLine(text []byte) bool {
	return len(bytes.Trim(text, "^~ ")) == 0
}

// slowPath runs for the few lines the automaton flagged, and for a traceback's last
// line (exc).
func (c *Classifier) slowPath(line []byte, exc bool) {
	defer func() {
		clear(c.matched)
		clear(c.unless)
	}()
	text, rank := normalize(line)
	if isWarning(text) || gdbSourceLine(text) {
		return
	}
	var marks [markNCCLSetup + 1]bool
	var best, excBest *hit
	excLen := 0
	var found []hit
	// etext is where an exception's own line would start: torchelastic's error file
	// quotes it as the JSON "message" inside its "message" object.
	etext := text
	if c.ringN >= 2 && bytes.HasSuffix(bytes.TrimRight(c.ring[(c.ringN-2)%ringLines], " \t\r"), []byte(`"message": {`)) {
		etext = elasticMessage(text)
	}
	if rest, ok := bytes.CutPrefix(text, vscodeException); ok && excTypeName(rest, false) != nil {
		// VS Code's exception widget, pasted: the type of the exception the debugger
		// stopped on, its message on the next line, then the frames.
		etext, exc = rest, true
	}
	name := excTypeName(etext, !exc && !c.whatNext)
	if h := headerExcType(text); h != nil {
		name = h
	}
	for ri, m := range c.matched {
		if !m || c.unless[ri] || (c.disabled != nil && c.disabled[ri]) {
			continue
		}
		r := &c.rs[ri]
		if r.shape == shapeExcType {
			// The longest type name that ends the line's exception type decides:
			// OutOfMemoryError, not MemoryError.
			last := name[bytes.LastIndexByte(name, '.')+1:]
			if name == nil || !bytes.HasSuffix(last, []byte(r.literals[0])) || len(r.literals[0]) <= excLen {
				continue
			}
			excLen = len(r.literals[0])
			excBest = &hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: r.name}, class: r.class, rank: rank, tier: r.tier}
			continue
		}
		if !shapeOK(r, text) {
			continue
		}
		if r.mark == markPrecursor || r.mark == markBarrierWait {
			h := &hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: r.name}, class: r.class, rank: rank, tier: r.tier}
			if r.mark == markPrecursor {
				c.precursor = h
			} else {
				c.waitAt, c.waitHit = c.lines, h
			}
			continue
		}
		marks[r.mark] = true
		if r.class == "" {
			continue
		}
		found = append(found, hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: r.name}, class: r.class, rank: rank, tier: r.tier})
	}

	switch {
	case marks[markIgnored]:
		c.ignoredAt = c.lines
		return
	case marks[markChain]:
		c.chained = true
		return
	case marks[markTraceback]:
		c.inTB, c.tbRank = true, rank
		_, _, c.tbIndent = normalizeIndent(line)
		c.tbIgnored = c.ignoredAt > 0 && c.lines-c.ignoredAt <= 2
		if c.tbIgnored {
			return
		}
		c.setFatal(text, rank, "traceback")
		// A traceback flattened onto one line (a web form that ate the newlines)
		// holds its exception's message too.
		for _, h := range found {
			if h.class != Unknown {
				c.addHit(h)
			}
		}
		if excBest != nil && !(c.chained && c.final != nil && c.final.tier == root) {
			// IPython's header names the type before the frames; the last line,
			// when it comes, replaces it.
			if excBest.class != Unknown {
				c.addHit(*excBest)
			}
			c.final, c.finalTB, c.finalLine = excBest, true, c.lines
			c.chained = false
		}
		return
	}
	if c.tbIgnored && exc {
		// The exception of a traceback Python said it ignored.
		c.tbIgnored = false
		return
	}
	if marks[markNCCLSetup] {
		c.ncclSetup = true
	}
	if marks[markTerminate] {
		c.whatNext, c.terminate = true, true
		c.setFatal(text, rank, "terminate")
	}
	if marks[markWhat] && c.whatNext {
		c.whatNext = false
		exc = true
	}
	if marks[markFatal] || marks[markFatalAbort] {
		if c.fault == "" {
			c.fault = string(bytes.TrimSpace(text[bytes.Index(text, []byte("error:"))+len("error:"):]))
		}
		c.setFatal(text, rank, "fatal")
	}
	if marks[markThread] && !c.hung && (bytes.HasPrefix(text, []byte("Thread 0x")) || bytes.HasPrefix(text, []byte("Current thread 0x"))) &&
		(c.fault == "" || c.fault == "Aborted") && !c.terminate {
		// A dump of every thread with no fatal signal behind it (or the SIGABRT a stall
		// watchdog sends): the job was stuck where the threads wait.
		c.hung = true
		found = append(found, hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: "thread-dump"}, class: Hang, rank: rank, tier: consequence})
	}
	if marks[markPySpy] && !bytes.HasPrefix(text, []byte("Thread ")) {
		found = slices.DeleteFunc(found, func(h hit) bool { return h.class == Hang && h.ev.Rule == "py-spy-thread" })
	}
	if marks[markKill] {
		if gap, ok := c.silenceBefore(line); ok && gap >= silenceHang {
			// The kill is the end of the stall, whatever else the line names.
			found = []hit{{ev: Evidence{Line: c.lines, Text: clip(text) + fmt.Sprintf(" (after %s without output)", gap.Round(time.Minute)), Rule: "killed-after-silence"}, class: Hang, rank: rank, tier: root}}
			excBest = nil
		}
	}
	isFinal := exc || (marks[markException] || excBest != nil) && excTypeName(etext, true) != nil
	if isFinal && nanWord(etext[len(excTypeName(etext, false)):]) {
		found = append(found, hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: "exception-names-nan"}, class: NaNDivergence, rank: rank, tier: root})
	}

	if excBest != nil {
		// Last: at an equal tier, what the message says beats what its type implies.
		found = append(found, *excBest)
	}
	for _, h := range found {
		if h.class == Unknown {
			// A bare exception line is a crash only near the end (FromLog); a kill or a
			// traceback's own exception is one anywhere.
			if exc || !strings.HasPrefix(h.ev.Rule, "exception:") {
				c.setFatal(text, rank, h.ev.Rule)
			}
		} else {
			c.addHit(h)
		}
		if best == nil || h.tier > best.tier || h.tier == best.tier && best.class == Unknown && h.class != Unknown {
			hh := h
			best = &hh
		}
	}
	if isFinal {
		if best == nil {
			best = &hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: "traceback"}, class: Unknown, rank: rank, tier: hint}
		}
		// In a chain the first root cause stands ("raise X from oom"; an error while
		// handling it).
		// torchrun's ChildFailedError summarises a failure printed before it.
		summary := best.ev.Rule == "exception:ChildFailedError" && c.final != nil
		if !summary && !(c.chained && c.final != nil && c.final.tier == root) {
			c.final, c.finalTB, c.finalLine = best, exc, c.lines
		}
		c.chained = false
	}
}

// addHit keeps h, capped per class and tier, so early hints cannot crowd out a later
// root cause.
func (c *Classifier) addHit(h hit) {
	list := c.hits[h.class]
	same := 0
	for _, o := range list {
		if o.tier == h.tier {
			same++
		}
	}
	if same < maxEvidencePerClass {
		c.hits[h.class] = append(list, h)
	}
}

func (c *Classifier) setFatal(text []byte, rank int, rule string) {
	if c.fatal == nil {
		c.fatal = &hit{ev: Evidence{Line: c.lines, Text: clip(text), Rule: rule}, class: Unknown, rank: rank, tier: hint}
	}
}

// silenceBefore returns how long before the kill on line the job last printed a
// timestamped line, from the lines still in the ring.
func (c *Classifier) silenceBefore(line []byte) (time.Duration, bool) {
	at, ok := leadingTime(line)
	if !ok {
		return 0, false
	}
	for i := c.ringN - 2; i >= max(0, c.ringN-ringLines); i-- {
		if t, ok := leadingTime(c.ring[i%ringLines]); ok {
			return at.Sub(t), true
		}
	}
	return 0, false
}

// gdbSourceLine reports the line GDB prints in place of a source line it cannot read
// (source.c print_source_lines_base: "%d\t%s" of the line number and file name, then
// print_sys_errmsg's ": <strerror>."), as in "780\t/usr/include/c++/4.9.2/bits/
// stl_vector.h: No such file or directory.": the debugger's trouble, not the job's.
func gdbSourceLine(text []byte) bool {
	k := 0
	for k < len(text) && text[k] >= '0' && text[k] <= '9' {
		k++
	}
	if k == 0 || k == len(text) || text[k] != '\t' || text[len(text)-1] != '.' {
		return false
	}
	return bytes.Contains(text[k+1:], []byte(": "))
}

// isWarning reports lines that are warnings, not crashes.
func isWarning(text []byte) bool {
	return bytes.Contains(text, []byte("Warning:")) || bytes.Contains(text, []byte("warnings.warn")) || bytes.HasPrefix(text, []byte("[W ")) || bytes.HasPrefix(text, []byte("WARNING")) ||
		// A library that says it will retry has handled the error (wandb's "Network
		// error (ReadTimeout), entering retry loop."): if it gives up, it says so.
		bytes.Contains(text, []byte("entering retry loop"))
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
	cl, h := c.strongestHit()
	if cl == Timeout && h != nil && h.ev.Rule == "c10d-store-timeout" && c.ncclSetup {
		return NCCL, h
	}
	return cl, h
}

func (c *Classifier) strongestHit() (Class, *hit) {
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
	if h == nil && c.waitHit != nil && c.waitAt == c.lines && !e.KilledBySupervisor {
		// The log stops at a rank waiting for its peers (torch's store-based barrier
		// logs that every few seconds until all join or it times out, and says so
		// either way): the attempt failed while stuck there.
		cl, h = Hang, c.waitHit
	}
	if h == nil && c.precursor != nil {
		cl, h = c.precursor.class, c.precursor
	}
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
		return c.verdict(Unknown, c.lastException(), fmt.Sprintf("The process died by %s.", signalName(e.Signal)))
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
	return c.verdict(Unknown, c.lastException(), "")
}

// FromLog is the verdict of a log alone, without an exit status (`trainwrap classify`):
// the strongest evidence; else, when the log holds a traceback or a fatal marker,
// unknown with its last exception as evidence; else None.
func (c *Classifier) FromLog() Verdict {
	cl, h := c.strongest()
	if h != nil && cl != Unknown {
		return c.verdict(cl, h, "")
	}
	// A traceback anywhere, or an exception line near the end.
	if c.final != nil && (c.finalTB || c.lines-c.finalLine < ringLines) {
		return c.verdict(Unknown, c.final, "")
	}
	if c.fatal != nil {
		return c.verdict(Unknown, c.fatal, "")
	}
	return c.verdict(None, nil, "")
}

// lastException is the evidence an unknown verdict shows: the last exception, else the
// first fatal marker; nil for the tail of the log.
func (c *Classifier) lastException() *hit {
	if c.final != nil {
		return c.final
	}
	return c.fatal
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
