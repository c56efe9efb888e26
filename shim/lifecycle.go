package shim

import (
	"context"

	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/rundir"
)

// lifecycle is the state of the one loop that owns the child: while an attempt runs,
// a holds it and its exit, stall and stop timers are read; between attempts, backoff
// is the timer to the next start. Only the loop's goroutine touches it.
type lifecycle struct {
	s       *supervisor
	ctx     context.Context
	n       int           // the current (or last) attempt
	a       *attemptState // nil between attempts
	backoff Timer         // nil while an attempt runs
	done    bool
	code    int
}

// loop runs attempts until the job succeeds, is stopped, or the policy gives up, and
// returns the exit code. It is the one place that reads the child's events: its exit,
// our signals, the guard's death, the stall, stop and backoff timers, and the tick.
// Start, teardown and the restart decision run inside it, between two events.
func (s *supervisor) loop(ctx context.Context) int {
	l := &lifecycle{s: s, ctx: ctx}
	l.begin(1)
	for !l.done {
		a := l.a
		select {
		case ex := <-a.exitedC():
			l.onExit(ex)
		case <-l.cancelled():
			l.onCancel()
		case sig := <-s.sigs:
			l.onSignal(sig.(syscall.Signal))
		case <-s.guardGone():
			s.restartGuard()
			a.onGuardRestarted()
		case <-a.timerC(stallEvent):
			a.onStall()
		case <-a.timerC(abortEvent):
			a.onAbortGrace()
		case <-a.timerC(killEvent):
			a.onStopTimeout()
		case <-a.tickC():
			a.onTick()
		case <-a.metricsC():
			a.onMetrics(true)
		case <-timerC(l.backoff):
			l.onBackoffOver()
		}
	}
	return l.code
}

// begin starts attempt n; one that cannot start ends at once.
func (l *lifecycle) begin(n int) {
	l.n = n
	a, res, ok := l.s.startAttempt(l.ctx, n)
	if !ok {
		l.concluded(res)
		return
	}
	l.a = a
}

// cancelled is ctx's Done channel when a cancel still changes something: between
// attempts, and while the attempt is not stopping already.
func (l *lifecycle) cancelled() <-chan struct{} {
	if l.a != nil && l.a.stopping {
		return nil
	}
	return l.ctx.Done()
}

func (l *lifecycle) onCancel() {
	if l.a != nil {
		l.a.onCancel()
		return
	}
	l.stopDuringBackoff(syscall.SIGTERM)
}

func (l *lifecycle) onSignal(sig syscall.Signal) {
	if l.a != nil {
		l.a.onSignal(sig)
		return
	}
	switch sig {
	case syscall.SIGCHLD:
		l.s.reaper.reap()
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
		l.stopDuringBackoff(sig)
	}
}

// onExit ends the attempt whose leader exited: teardown, output, verdict, decision.
func (l *lifecycle) onExit(ex exitInfo) {
	res := l.a.onExit(ex)
	l.a = nil
	l.concluded(res)
}

// concluded decides what follows an attempt: the end of the run, or the backoff.
func (l *lifecycle) concluded(res attemptResult) {
	code, delay, done := l.s.conclude(l.ctx, res, l.n)
	if done {
		l.done, l.code = true, code
		return
	}
	// To the NextStart that state.json shows, on the stall detector's clock: a test
	// moves that clock to see the backoff end exactly then.
	clk := l.s.clock()
	if next := l.s.state.NextStart; next != nil {
		delay = next.Sub(clk.Now())
	}
	l.backoff = clk.NewTimer(delay)
}

func (l *lifecycle) onBackoffOver() {
	l.backoff = nil
	s := l.s
	s.state.NextStart = nil
	if s.o.QuickCheck != nil {
		if err := s.o.QuickCheck(l.ctx); err != nil {
			s.logf("between-attempts check: %v", err)
		}
	}
	l.begin(l.n + 1)
}

func (l *lifecycle) stopDuringBackoff(sig syscall.Signal) {
	l.backoff.Stop()
	l.backoff = nil
	s := l.s
	code := 128 + int(sig)
	s.state.Status = rundir.StatusStopped
	s.state.NextStart = nil
	s.state.ExitCode = &code
	s.writeState()
	s.publish(observe.Event{Kind: observe.Stopped, Signal: signalName(sig), ExitCode: code})
	s.logf("stopped by %s during backoff; exiting %d", signalName(sig), code)
	l.done, l.code = true, code
}

// conclude records attempt n's result and decides: it returns the exit code and true
// when the run ends, or the delay before the next attempt.
func (s *supervisor) conclude(ctx context.Context, res attemptResult, n int) (int, time.Duration, bool) {
	rec := s.record(res)
	if res.stopSig != 0 {
		return s.concludeStopped(rec, res), 0, true
	}
	if res.verdict.Class == classify.None {
		return s.concludeSucceeded(ctx, rec, res, n), 0, true
	}
	return s.concludeFailed(ctx, rec, res, n)
}

func (s *supervisor) concludeStopped(rec rundir.Record, res attemptResult) int {
	rec.Decision, rec.Reason = rundir.DecisionStop, "stopped by "+signalName(res.stopSig)
	s.appendRecord(rec)
	s.state.Status = rundir.StatusStopped
	code := 128 + int(res.stopSig)
	s.state.ExitCode = &code
	s.writeState()
	s.publish(observe.Event{Kind: observe.Stopped, Signal: signalName(res.stopSig), ExitCode: code})
	s.logf("stopped by %s; exiting %d", signalName(res.stopSig), code)
	return code
}

func (s *supervisor) concludeSucceeded(ctx context.Context, rec rundir.Record, res attemptResult, n int) int {
	rec.Decision, rec.Reason = rundir.DecisionDone, "exit 0"
	s.maintainInto(ctx, &rec, 0)
	s.appendRecord(rec)
	s.state.Status = rundir.StatusSucceeded
	code := 0
	s.state.ExitCode = &code
	s.writeState()
	s.publish(observe.Event{Kind: observe.Succeeded, Step: res.stepEnd})
	s.logf("job succeeded (attempt %d)", n)
	return 0
}

// concludeFailed asks the policy (and smart recovery) about a failed attempt.
func (s *supervisor) concludeFailed(ctx context.Context, rec rundir.Record, res attemptResult, n int) (int, time.Duration, bool) {
	// Find the resume point first, since a new checkpoint is progress. After an
	// anomaly the steps from it on went bad: the checkpoints saved since are moved
	// aside, and only the steps before it count as getting further, so a job that
	// spikes at the same step again and again gives up.
	var before int64
	reached := res.stepEnd
	if an := res.anomalyStop; an != nil && an.Step > 0 {
		before, reached = an.From(), min(res.stepEnd, an.From())
	}
	progressed := s.maintainInto(ctx, &rec, before)
	if reached > s.bestStep {
		if s.bestStep >= 0 || reached > res.stepStart {
			progressed = true
		}
		s.bestStep = reached
	}
	rec.Progressed = progressed
	d := s.rs.decide(Outcome{Start: res.start, End: res.end, Retryable: res.verdict.Retryable, Class: string(res.verdict.Class), Progressed: progressed})
	s.lastClass = string(res.verdict.Class)
	s.state.LastClass = s.lastClass
	s.logf("attempt %d: %s", n, describeVerdict(res))
	d = s.adjust(&rec, res.verdict, d)
	if an := res.anomalyStop; an != nil {
		if d.Restart {
			d.Reason = "--on-anomaly restart: " + anomalyText(*an) + "; " + d.Reason
		} else {
			d.Reason += "; the attempt was stopped for an anomaly (--on-anomaly restart): " + anomalyText(*an)
		}
	}
	if !d.Restart {
		rec.Decision, rec.Reason = rundir.DecisionGiveUp, d.Reason
		s.appendRecord(rec)
		code := res.verdict.ExitCode
		s.state.Status = rundir.StatusGaveUp
		s.state.ExitCode = &code
		s.writeState()
		s.publish(observe.Event{Kind: observe.GaveUp, Class: string(res.verdict.Class), ExitCode: code, Suggestion: res.verdict.Suggestion, Message: d.Reason})
		s.logf("giving up: %s; exiting %d (%s)", d.Reason, code, res.verdict.Class)
		return code, 0, true
	}
	rec.Decision, rec.Reason, rec.BackoffMS = rundir.DecisionRestart, d.Reason, d.Delay.Milliseconds()
	s.appendRecord(rec)
	s.state.Restarts++
	s.state.Status = rundir.StatusBackoff
	next := s.clock().Now().Add(d.Delay)
	s.state.NextStart = &next
	s.writeState()
	s.publish(observe.Event{Kind: observe.Restarting, Backoff: d.Delay, Restarts: s.state.Restarts, Class: string(res.verdict.Class), Message: recoveryMessage(rec.Adjustments)})
	s.logf("restarting in %s (attempt %d)%s", d.Delay.Round(time.Millisecond), n+1, resumeNote(s.resume))
	return 0, d.Delay, false
}
