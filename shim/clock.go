package shim

import "time"

// Clock is the time source of stall detection and of the backoff: the attempt's start
// for the startup window, the progress times taken from --progress-regex lines and
// heartbeat touches, the stall timer, the once-a-second tick, the SIGABRT grace, and
// the backoff timer with the NextStart it counts to. A nil Clock in
// Options is the real one. Output times without --progress-regex come from the tee
// and are always real, so a test with a fake Clock sets ProgressRegex.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
}

// Timer is the part of *time.Timer that the supervisor uses; C is its channel.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is the part of *time.Ticker that the supervisor uses; C is its channel.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// realClock is the Clock of the zero Options.
type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// clock is the supervisor's Clock: Options.Clock, or the real one.
func (s *supervisor) clock() Clock {
	if s.o.Clock == nil {
		return realClock{}
	}
	return s.o.Clock
}

// timerC is t's channel, nil (never ready) for no timer.
func timerC(t Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}
