package shim

import (
	"bytes"
	"regexp"
	"strconv"
)

// Without --progress-regex every output line keeps the stall detector quiet, and the
// step (for the restart budget's "got further" and for status and history) comes from
// the progress lines that common trainers print, recognised here. Only lines that carry
// a global step count: HF Trainer's log dicts carry the epoch, Lightning's bars count
// batches within the epoch, and a bar with a description ("Loading checkpoint shards:")
// belongs to something other than the training loop. Real lines of each are in
// testdata/progress/steps.tsv.
var builtinSteps = []*regexp.Regexp{
	// tqdm's bar without a description, as HF Trainer prints it (" 84%|███▍ | 101/120 ["),
	// or without the bar where tqdm cannot draw one (" 57% 4/7 [").
	regexp.MustCompile(`^\s*\d+%(?:\|[^|]*\|)? (\d+)/\d+ \[`),
	// DeepSpeed's engine: "[Rank 0] step=40, skipped=2, lr=[...]".
	regexp.MustCompile(`\] step=(\d+), skipped=`),
	// DeepSpeed's throughput timer ("epoch=0/micro_step=34/global_step=34,"), and any
	// job that prints global_step=N (the chaos trainer).
	regexp.MustCompile(`\bglobal_step=(\d+)`),
	// Megatron(-DeepSpeed): " iteration     5426/  250000 |".
	regexp.MustCompile(`\biteration\s+(\d+)/\s*\d+ \|`),
}

// mayHoldStep is the cheap test in front of the patterns: text without any of these
// holds no step, so a whole read without them needs no line looked at.
func mayHoldStep(b []byte) bool {
	return bytes.IndexByte(b, '%') >= 0 || containsStepEq(b) || bytes.Contains(b, []byte("iteration"))
}

// containsStepEq is bytes.Contains(b, "step="), found from the '=': training output
// is full of s ("loss", "tokens_per_sec", "'step': 12"), which keeps bytes.Index on
// its byte-at-a-time path (0.36 ns a byte, a tenth of the supervisor's CPU), while '='
// is rare and the search for it runs at memory speed.
func containsStepEq(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '=')
		if i < 0 {
			return false
		}
		if i >= 4 && string(b[i-4:i]) == "step" {
			return true
		}
		b = b[i+1:]
	}
}

// builtinStep is the highest global step that one line of output names, if any.
func builtinStep(line []byte) (int64, bool) {
	// Cheap tests first: most lines hold none of these.
	if !mayHoldStep(line) {
		return 0, false
	}
	best, found := int64(0), false
	for _, re := range builtinSteps {
		m := re.FindSubmatch(line)
		if m == nil {
			continue
		}
		if v, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil && (!found || v > best) {
			best, found = v, true
		}
	}
	return best, found
}

// builtinStepObserver hands each line of a job run without --progress-regex to
// observeBuiltinStep, and lets the tee skip a read that holds no step at all.
type builtinStepObserver struct{ s *supervisor }

// ObserveLine takes the step from line, if it names one.
func (b builtinStepObserver) ObserveLine(line []byte) { b.s.observeBuiltinStep(line) }

func (builtinStepObserver) skipsChunk(chunk []byte) bool { return !mayHoldStep(chunk) }

// observeBuiltinStep takes the step from a line of a job run without --progress-regex.
// It leaves the progress time alone: any output already counts as progress then.
func (s *supervisor) observeBuiltinStep(line []byte) {
	if v, ok := builtinStep(line); ok && v > s.step.Load() {
		s.step.Store(v)
	}
}
