package training

import (
	"bytes"
	"math"
	"strconv"
	"time"
)

// Recognizer reads metrics from lines of a job's output: the built-in formats (HF
// Trainer's log dicts, tqdm and Lightning bars, DeepSpeed's step, throughput and
// overflow lines, Megatron-LM's training_log line, key=value loss lines) and the
// user's --metric NAME=REGEX. It holds no state between lines and is safe for
// concurrent use (each caller passes its own slice).
type Recognizer struct {
	custom []Custom
	// prefix[i] is a literal every match of custom[i] starts with, tested before the
	// regexp runs (empty when it has none).
	prefix [][]byte
}

// NewRecognizer compiles nothing: custom's regexps come compiled from ParseCustom.
// A nil custom is the built-ins alone.
func NewRecognizer(custom []Custom) *Recognizer {
	r := &Recognizer{custom: append([]Custom(nil), custom...)}
	for _, c := range r.custom {
		p, _ := c.Re.LiteralPrefix()
		r.prefix = append(r.prefix, []byte(p))
	}
	return r
}

// Recognize appends to dst the samples line holds and returns the extended slice.
// line is valid only during the call and is not kept. step is the job's global step
// as the caller knows it (from --progress-regex), -1 if unknown; a step the line
// itself names (DeepSpeed's step=, Megatron's iteration, a dict's 'step') wins over
// it, and a tqdm bar's n is taken only when the caller's is unknown. Of two samples
// of one name on a line, the first is kept (so a built-in's wins over a --metric of
// the same name). Non-finite values (a NaN loss) are dropped: the series is JSON, and a NaN run is
// the classifier's to name. A line with no metric costs a prefilter scan and no
// allocation.
func (r *Recognizer) Recognize(dst []Sample, line []byte, step int64, attempt int, now time.Time) []Sample {
	// A terminal shows only what follows the last carriage return: tqdm redraws its
	// bar that way, and only the newest redraw is the current rate.
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		if rest := bytes.TrimSpace(line[i+1:]); len(rest) > 0 {
			line = line[i+1:]
		} else if j := bytes.LastIndexByte(line[:i], '\r'); j >= 0 {
			line = line[j+1 : i]
		} else {
			line = line[:i]
		}
	}
	e := emitter{dst: dst, start: len(dst), step: step, attempt: attempt, now: now}
	if mayHoldMetric(line) {
		recognizeBuiltin(&e, line)
	}
	for i := range r.custom {
		c := &r.custom[i]
		if len(r.prefix[i]) > 0 && !bytes.Contains(line, r.prefix[i]) {
			continue
		}
		// Match first: it does not allocate, FindSubmatchIndex does.
		if !c.Re.Match(line) {
			continue
		}
		loc := c.Re.FindSubmatchIndex(line)
		lo, hi := loc[0], loc[1]
		if len(loc) >= 4 && loc[2] >= 0 {
			lo, hi = loc[2], loc[3]
		}
		if v, _, ok := parseNumber(bytes.TrimSpace(line[lo:hi]), 0); ok {
			e.add(c.Name, v)
		}
	}
	return e.dst
}

// emitter collects one line's samples; the line's own step, once found, is set on
// every sample of the line, including those added before it was found.
type emitter struct {
	dst     []Sample
	start   int
	step    int64
	attempt int
	now     time.Time
}

// add appends one sample unless the line already gave one of that name: Lightning's
// postfix may show both loss= and train_loss=, and the first is the bar's own.
func (e *emitter) add(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	for i := e.start; i < len(e.dst); i++ {
		if e.dst[i].Name == name {
			return
		}
	}
	e.dst = append(e.dst, Sample{Time: e.now, Attempt: e.attempt, Step: e.step, Name: name, Value: v})
}

// setStep records the step the line itself names.
func (e *emitter) setStep(s int64) {
	e.step = s
	for i := e.start; i < len(e.dst); i++ {
		e.dst[i].Step = s
	}
}

// anchors are literals at least one of which every built-in metric line holds; a
// line with none of them is not parsed further.
var anchors = [...][]byte{
	[]byte("loss"), []byte("it/s"), []byte("s/it"), []byte("lr="), []byte("learning_rate"),
	[]byte("grad_norm"), []byte("SamplesPerSec"), []byte("samples/sec"), []byte("OVERFLOW"), []byte("iteration"),
}

func mayHoldMetric(line []byte) bool {
	for _, a := range anchors {
		if bytes.Contains(line, a) {
			return true
		}
	}
	return false
}

// recognizeBuiltin tries each built-in format on a line that passed the prefilter.
// The formats do not overlap: each reads different keys, so all are tried.
func recognizeBuiltin(e *emitter, line []byte) {
	if bytes.Contains(line, []byte(" iteration ")) && bytes.IndexByte(line, '|') >= 0 {
		if megatron(e, line) {
			return
		}
	}
	if bytes.IndexByte(line, '{') >= 0 && bytes.IndexByte(line, ':') >= 0 {
		hfDict(e, line)
	}
	otherBar := false
	if bytes.Contains(line, []byte("it/s")) || bytes.Contains(line, []byte("s/it")) {
		otherBar = tqdmBar(e, line)
	}
	if !otherBar && bytes.IndexByte(line, '=') >= 0 {
		keyValues(e, line)
	}
	if bytes.Contains(line, []byte("OVERFLOW")) {
		deepspeedOverflow(e, line)
	}
	if bytes.Contains(line, []byte("samples/sec: ")) {
		deepspeedPipe(e, line)
	}
}

// parseNumber reads a decimal number at b[i:] (sign, digits, fraction, exponent) and
// returns it with the index after it. nan and inf are not numbers here.
func parseNumber(b []byte, i int) (float64, int, bool) {
	j := i
	if j < len(b) && (b[j] == '-' || b[j] == '+') {
		j++
	}
	digits := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
		digits++
	}
	if j < len(b) && b[j] == '.' {
		j++
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
			digits++
		}
	}
	if digits == 0 {
		return 0, i, false
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		k := j + 1
		if k < len(b) && (b[k] == '-' || b[k] == '+') {
			k++
		}
		if k < len(b) && b[k] >= '0' && b[k] <= '9' {
			for k < len(b) && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			j = k
		}
	}
	v, err := strconv.ParseFloat(string(b[i:j]), 64)
	if err != nil {
		return 0, i, false
	}
	return v, j, true
}

// parseInt reads unsigned decimal digits at b[i:].
func parseInt(b []byte, i int) (int64, int, bool) {
	j := i
	var n int64
	for j < len(b) && b[j] >= '0' && b[j] <= '9' && j-i < 18 {
		n = n*10 + int64(b[j]-'0')
		j++
	}
	return n, j, j > i
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func skipSpaces(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}
