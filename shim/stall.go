package shim

import (
	"strconv"
	"time"
)

// The stall detector: when the current attempt counts as stalled. Progress is taken
// on the output pumps' goroutines (into the supervisor's atomics); the lifecycle loop
// reads the deadline on its stall timer and tick.

// observeProgress takes progress (and the step, from the first group) from lines that
// match --progress-regex.
func (s *supervisor) observeProgress(line []byte) {
	m := s.o.ProgressRegex.FindSubmatch(line)
	if m == nil {
		return
	}
	s.lastProgress.Store(s.clock().Now().UnixNano())
	if len(m) > 1 {
		if v, err := strconv.ParseInt(string(m[1]), 10, 64); err == nil && v > s.step.Load() {
			s.step.Store(v)
		}
	}
}

// progressTime is the last moment of progress, 0 before the first: any output without
// --progress-regex, matching lines with it, and heartbeat-file touches either way.
func (s *supervisor) progressTime(t *tee) int64 {
	p := s.lastProgress.Load()
	if s.o.ProgressRegex == nil {
		if o := t.lastOutput.Load(); o > p {
			p = o
		}
	}
	return p
}

// stallWindow is how long the current attempt may go without progress from now on.
func (s *supervisor) stallWindow(t *tee) time.Duration {
	if s.progressTime(t) == 0 {
		return s.firstWindow()
	}
	return s.o.StallTimeout
}

// firstWindow is how long an attempt may run before its first progress; 0 or less is
// no limit. A job that has made progress in an earlier attempt is known to start: it
// gets the stall timeout plus the resume allowance (loading a checkpoint), not the long
// --startup-timeout meant for a first compile or download, and never more than that.
func (s *supervisor) firstWindow() time.Duration {
	w := s.o.StartupTimeout
	if w <= 0 {
		// No separate startup limit: the stall timeout counts from the start.
		w = s.o.StallTimeout
	}
	if s.progressedBefore && s.o.StallTimeout > 0 {
		if r := s.o.StallTimeout + s.o.ResumeAllowance; w <= 0 || r < w {
			w = r
		}
	}
	return w
}

// stallDeadline is when the job counts as stalled if nothing happens before.
func (s *supervisor) stallDeadline(start time.Time, t *tee) (time.Time, bool) {
	p := s.progressTime(t)
	if p == 0 {
		w := s.firstWindow()
		if w <= 0 {
			return time.Time{}, false
		}
		return start.Add(w), true
	}
	if s.o.StallTimeout <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, p).Add(s.o.StallTimeout), true
}
