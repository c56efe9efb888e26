package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// attemptResult is how one attempt ended.
type attemptResult struct {
	start, end time.Time
	pid        int
	exit       exitInfo
	verdict    classify.Verdict
	stopSig    syscall.Signal // the signal the user stopped us with, 0 when none
	stalled    bool
	stepStart  int64
	stepEnd    int64
	lines      int64
	termDrops  int64 // bytes the terminal copy dropped during this attempt
	// What the training-metrics detector found; anomalyStop is the one that stopped
	// the attempt under --on-anomaly restart.
	anomalies        []training.Anomaly
	anomaliesDropped int
	anomalyStop      *training.Anomaly
}

// attemptState is one running attempt: the child, its output, and the timers of its
// stall and stop sequence. The lifecycle loop calls one method per event; each method
// handles that event and nothing else. A nil *attemptState (between attempts) has no
// events: its channels are nil.
type attemptState struct {
	s   *supervisor
	ctx context.Context
	res attemptResult

	argv   []string
	usePty bool
	env    []string
	cls    *classify.Classifier
	t      *tee
	tap    *metricsTap // nil without a recogniser
	// metricsDropped counts samples lost to a full queue; the first loss is said.
	metricsDropped int64
	warnedDropped  bool
	c              *child
	j              job
	pumpsDone      chan struct{}
	oomBefore      int64
	// dropsBefore is the terminal's drop count at the start: the attempt's share is the rest.
	dropsBefore int64
	// stallFrom is the attempt's start on the stall Clock: the startup window counts from it.
	stallFrom time.Time

	stopping    bool
	killedByUs  bool
	reapPending bool // zombies wait out their linger limit; the tick retries
	stallTimer  Timer
	abortTimer  Timer // the SIGABRT grace of a stall, before the stop sequence
	killTimer   Timer // the stop timeout, before SIGKILL
	// tick is the housekeeping timer (see onTick): every second while something
	// changes, less and less often while the job is quiet, so a job that prints
	// nothing for hours costs no wake-up a second.
	tick      Timer
	tickEvery time.Duration
	// The stall timer runs to the earliest deadline known; progress only pushes the
	// deadline later (the timer then re-arms when it fires), but the first progress
	// can bring it forward from --startup-timeout to --stall-timeout, which the tick
	// catches.
	stallAt time.Time
	killAt  time.Time // when the stop sequence SIGKILLs what is left
	hbMtime time.Time
	lastPub int64
}

// startAttempt starts attempt n. It returns false, and the result, when the job could
// not be started at all.
func (s *supervisor) startAttempt(ctx context.Context, n int) (*attemptState, attemptResult, bool) {
	a := s.newAttempt(ctx, n)
	c, err := a.spawn(n)
	if err != nil {
		_ = s.cg.endAttempt(ctx)
		a.res.end = time.Now()
		a.res.exit = exitInfo{err: err, at: a.res.end}
		a.res.verdict = startFailure(err)
		s.logf("%v", err)
		return nil, a.res, false
	}
	a.started(c)
	return a, a.res, true
}

// newAttempt resets the state for attempt n and prepares its command, environment
// and output tee.
func (s *supervisor) newAttempt(ctx context.Context, n int) *attemptState {
	s.state.Attempt = n
	s.state.Status = rundir.StatusRunning
	s.state.ExitCode = nil
	s.step.Store(-1)
	s.lastProgress.Store(0)
	// The attempt starts at its resume point's step: that is where the job goes on.
	a := &attemptState{s: s, ctx: ctx, res: attemptResult{start: time.Now()}}
	a.stallFrom = s.clock().Now()
	if s.resume != "" {
		a.res.stepStart = s.resumeStep
	}

	a.argv = s.command()
	a.env = s.env(n)
	s.state.AttemptCommand, s.state.AttemptEnv = a.argv, s.rec.envVars()
	a.usePty = s.o.Pty == PtyAlways || (s.o.Pty == PtyAuto && isTerminal(os.Stdout))
	if !a.usePty {
		a.env = setDefault(a.env, "PYTHONUNBUFFERED", "1")
	}
	// Also under a pty: the stack dump on a stall needs the fault handler.
	a.env = setDefault(a.env, "PYTHONFAULTHANDLER", "1")

	a.cls = classify.New()
	a.t = newTee(s.log, n, []LineObserver{a.cls})
	if s.o.ProgressRegex != nil {
		a.t.segments = LineObserverFunc(s.observeProgress)
	} else {
		a.t.segments = builtinStepObserver{s}
	}
	if s.o.Training.NewRecognizer != nil {
		// On the segment path, after the step: a tqdm bar's metrics are in its \r
		// redraws, and a line that names its step gives its samples that step.
		a.tap = newMetricsTap(s.o.Training.NewRecognizer(), &s.step, &a.t.lastOutput, n)
		a.t.segments = segmentTap{step: a.t.segments, metrics: a.tap}
	}
	if s.o.Training.Detector != nil {
		s.o.Training.Detector.StartAttempt(n)
	}
	a.oomBefore = oomKills()
	a.dropsBefore = s.terminalDrops()
	return a
}

// spawn starts the job, in the attempt's cgroup where there is one.
func (a *attemptState) spawn(n int) (*child, error) {
	s := a.s
	if s.cg != nil {
		if err := s.cg.startAttempt(n); err != nil {
			s.logf("cgroup: %v; this attempt runs without one", err)
		}
	}
	var cg *jobCgroup
	if s.cg != nil && s.cg.leaf != "" {
		cg = s.cg
	}
	spec := spawnSpec{argv: a.argv, env: a.env, dir: s.o.WorkDir, usePty: a.usePty, stdout: s.outTerm, stderr: s.errTerm, cgroup: cg}
	c, err := spawn(spec, s.reaper)
	if err != nil && spec.cgroup != nil {
		// A kernel or a delegation that refuses CLONE_INTO_CGROUP: when the job starts
		// without it, the cgroup was the cause, and the sweep alone is left.
		spec.cgroup = nil
		if c2, err2 := spawn(spec, s.reaper); err2 == nil {
			s.logf("cgroup: cannot start the job in %s (%v); processes that leave the job's group and environment may survive its end", s.cg.dir, err)
			rctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
			_ = s.cg.remove(rctx)
			cancel()
			s.cg = nil
			c, err = c2, nil
		}
	}
	return c, err
}

// started records the running child, starts reading its output and arms the timers.
func (a *attemptState) started(c *child) {
	s := a.s
	a.c = c
	a.res.pid = c.id.PID
	s.reaper.setJob(c.pgid, c.sid)
	a.j = job{runID: s.runID, c: c, cg: s.cg, sweepHost: !s.subreaper}
	if s.guard != nil {
		a.j.guard = s.guard.pid
	}
	if s.sentinel != nil {
		a.j.sentinel = s.sentinel.pid
	}
	s.state.Child = &rundir.Proc{PID: c.id.PID, PGID: c.pgid, StartTime: c.id.StartTime}
	s.state.AttemptStarted = a.res.start
	s.state.LastProgress = time.Time{}
	s.writeState()
	s.publish(observe.Event{Kind: observe.Started, PID: c.id.PID, Command: a.argv, StallTimeout: s.o.StallTimeout})

	var pumps sync.WaitGroup
	for _, o := range c.outs {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			a.t.pump(o.r, o.dst)
		}()
	}
	a.pumpsDone = make(chan struct{})
	go func() { pumps.Wait(); close(a.pumpsDone) }()

	clk := s.clock()
	a.stallTimer = clk.NewTimer(time.Hour)
	a.stallTimer.Stop()
	a.tickEvery = time.Second
	// The housekeeping tick runs on real time, as the stop timeout does: reaping,
	// the heartbeat file's mtime and state.json are the real world's. The Clock keeps
	// the stall and backoff timers, which the tick only re-arms, so a test that moves
	// the Clock sees those timers alone.
	a.tick = realClock{}.NewTimer(a.tickEvery)
	a.armStall()
	if s.o.HeartbeatFile != "" {
		if fi, err := os.Stat(s.o.HeartbeatFile); err == nil {
			a.hbMtime = fi.ModTime()
		}
	}
}

// exitedC receives the leader's exit; nil between attempts.
func (a *attemptState) exitedC() <-chan exitInfo {
	if a == nil {
		return nil
	}
	return a.c.exited
}

// The attempt's timers, as the lifecycle loop names them.
const (
	stallEvent = iota
	abortEvent
	killEvent
)

// timerC is the channel of one of the attempt's timers; nil between attempts and for a
// timer that is not running.
func (a *attemptState) timerC(which int) <-chan time.Time {
	if a == nil {
		return nil
	}
	switch which {
	case stallEvent:
		return timerC(a.stallTimer)
	case abortEvent:
		return timerC(a.abortTimer)
	default:
		return timerC(a.killTimer)
	}
}

// tickC is the housekeeping tick of a running attempt; nil between attempts.
func (a *attemptState) tickC() <-chan time.Time {
	if a == nil {
		return nil
	}
	return a.tick.C()
}

// armStall sets the stall timer to the current deadline, if there is one.
func (a *attemptState) armStall() {
	if d, ok := a.s.stallDeadline(a.stallFrom, a.t); ok {
		a.stallAt = d
		a.stallTimer.Reset(d.Sub(a.s.clock().Now()))
	}
}

// startStop sends sig to the job's group and starts the stop timeout.
func (a *attemptState) startStop(sig syscall.Signal) {
	a.stopping = true
	a.j.signalGroup(sig)
	a.killAt = time.Now().Add(a.s.o.StopTimeout)
	// Real time, as the teardown's deadline (killAt) is: the Clock is for stalls.
	a.killTimer = realClock{}.NewTimer(a.s.o.StopTimeout)
}

// onCancel stops the job as SIGTERM would when the context ends.
func (a *attemptState) onCancel() {
	if !a.stopping {
		a.res.stopSig = syscall.SIGTERM
		a.startStop(syscall.SIGTERM)
	}
}

// onSignal handles a signal sent to us while the job runs.
func (a *attemptState) onSignal(sig syscall.Signal) {
	s := a.s
	switch sig {
	case syscall.SIGCHLD:
		a.reapPending = s.reaper.reap()
	case syscall.SIGPIPE:
	case syscall.SIGWINCH:
		a.c.resize()
	case syscall.SIGUSR1, syscall.SIGUSR2:
		// SLURM's pre-emption warning: every rank that listens should see it.
		a.j.signalCatchers(sig)
	default: // INT, TERM, HUP, QUIT
		if a.res.stopSig == 0 {
			a.res.stopSig = sig
		}
		if !a.stopping {
			s.logf("received %s: forwarding it to the job; SIGKILL in %s (send it again to kill now)", signalName(sig), s.o.StopTimeout)
			s.state.Status = rundir.StatusStopping
			s.writeState()
			a.startStop(sig)
		} else {
			a.killedByUs = true
			a.j.signalAll(syscall.SIGKILL)
		}
	}
}

// onGuardRestarted tells the job which process is the (new) guard, not the job's.
func (a *attemptState) onGuardRestarted() {
	if a == nil {
		return
	}
	a.j.guard = 0
	if a.s.guard != nil {
		a.j.guard = a.s.guard.pid
	}
}

// onStall handles the stall timer: a deadline that progress moved is re-armed; a real
// stall gets SIGABRT to every rank for a stack dump, then the stop sequence.
func (a *attemptState) onStall() {
	s := a.s
	if a.stopping {
		return
	}
	if d, ok := s.stallDeadline(a.stallFrom, a.t); ok && s.clock().Now().Before(d) {
		a.stallAt = d
		a.stallTimer.Reset(d.Sub(s.clock().Now()))
		return
	}
	a.res.stalled = true
	s.logf("no progress for %s: sending SIGABRT to the job for a stack dump, then stopping it", s.stallWindow(a.t))
	s.publish(observe.Event{Kind: observe.Hang, PID: a.c.id.PID, StallTimeout: s.o.StallTimeout, Class: string(classify.Hang)})
	s.state.Status = rundir.StatusStopping
	s.writeState()
	a.stopping = true
	// Every rank's fault handler dumps its stacks, not only the launcher's.
	a.j.signalAbort()
	a.abortTimer = s.clock().NewTimer(s.o.AbortGrace)
}

// onAbortGrace starts the stop sequence once the stack dump had its time.
func (a *attemptState) onAbortGrace() {
	a.abortTimer = nil
	a.startStop(syscall.SIGTERM)
}

// onStopTimeout kills what is left once the stop timeout has passed.
func (a *attemptState) onStopTimeout() {
	a.killTimer = nil
	a.killedByUs = true
	a.j.signalAll(syscall.SIGKILL)
}

// onTick is the once-a-second housekeeping: the stall deadline brought forward, the
// heartbeat file, reaping that had to wait, and progress published.
func (a *attemptState) onTick() {
	s := a.s
	if !a.stopping {
		if d, ok := s.stallDeadline(a.stallFrom, a.t); ok && d.Before(a.stallAt) {
			a.stallAt = d
			a.stallTimer.Reset(d.Sub(s.clock().Now()))
		}
	}
	if s.o.HeartbeatFile != "" {
		if fi, err := os.Stat(s.o.HeartbeatFile); err == nil && !fi.ModTime().Equal(a.hbMtime) {
			a.hbMtime = fi.ModTime()
			s.lastProgress.Store(s.clock().Now().UnixNano())
		}
	}
	busy := s.o.HeartbeatFile != "" || a.reapPending
	if a.reapPending {
		a.reapPending = s.reaper.reap()
	}
	if a.publishProgress() {
		busy = true
	}
	a.tick.Reset(a.nextTick(busy))
}

// maxTickEvery is the longest the housekeeping tick waits while the job is quiet.
const maxTickEvery = 32 * time.Second

// nextTick is the delay to the next tick: one second after a tick that found
// something to do (progress to publish, a heartbeat file to look at, zombies to
// reap), twice the last delay after one that did not, up to maxTickEvery and half the
// stall timeout. The stall deadline stays exact: the tick only brings it forward, at
// the first progress, to that progress plus the stall timeout, which lies more than
// one (capped) tick later. What a quiet job's status shows is at most one tick late
// when it prints again.
func (a *attemptState) nextTick(busy bool) time.Duration {
	if busy {
		a.tickEvery = time.Second
		return a.tickEvery
	}
	limit := maxTickEvery
	if st := a.s.o.StallTimeout; st > 0 && st/2 < limit {
		limit = max(st/2, time.Second)
	}
	a.tickEvery = min(2*a.tickEvery, limit)
	return a.tickEvery
}

// publishProgress writes and publishes the progress time and step when they changed,
// and reports whether they had.
func (a *attemptState) publishProgress() bool {
	s := a.s
	lp := s.progressTime(a.t)
	if lp == a.lastPub {
		return false
	}
	a.lastPub = lp
	s.state.LastProgress = time.Unix(0, lp)
	if st := s.step.Load(); st >= 0 {
		s.state.Step = st
	}
	s.state.LogWriteErrors = s.log.failuresOrZero()
	s.writeState()
	s.publish(observe.Event{Kind: observe.Progress, Step: s.state.Step, LastProgress: s.state.LastProgress, LogWriteErrors: s.state.LogWriteErrors})
	return true
}

// onExit handles the leader's exit: the rest of the job is torn down, its last output
// read, and the attempt classified. The attempt's timers end here.
func (a *attemptState) onExit(ex exitInfo) attemptResult {
	a.res.exit = ex
	a.c.gone = true
	a.stallTimer.Stop()
	a.tick.Stop()
	a.teardown()
	a.readLastOutput()
	// The last lines' samples are kept and judged; the attempt is over, so an
	// anomaly among them stops nothing.
	a.onMetrics(false)
	return a.finish()
}

// teardown ends the rest of the job once the leader is gone. A stop already sent its
// signal and keeps its deadline; after a plain exit the leftovers get SIGTERM and the
// full stop timeout; a stall still waiting out its SIGABRT grace goes straight to
// SIGKILL.
func (a *attemptState) teardown() {
	s, j := a.s, a.j
	if left := j.procs(); len(left) > 0 {
		switch {
		case a.abortTimer != nil:
			a.killAt = time.Now()
		case !a.stopping:
			j.signalAll(syscall.SIGTERM)
			a.killAt = time.Now().Add(s.o.StopTimeout)
		}
		gctx, cancel := context.WithDeadline(context.Background(), a.killAt)
		gone := j.waitGone(gctx, s.reaper, 100*time.Millisecond)
		cancel()
		if !gone {
			kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if n := j.killAll(kctx, s.reaper); n > 0 {
				s.logf("warning: %d process(es) of the job survived SIGKILL (stuck in the kernel?)", n)
			}
			cancel()
		}
	}
	s.reaper.reap()
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.cg.endAttempt(rctx); err != nil {
		s.logf("warning: %v", err)
	}
	rcancel()
}

// readLastOutput takes whatever the job wrote before it died from the pipes or the
// pty, and waits for the terminal copies.
func (a *attemptState) readLastOutput() {
	s := a.s
	s.drainOutput(a.ctx, a.t, a.c, a.pumpsDone, &a.res)
	if a.res.termDrops = s.flushTerminals() - a.dropsBefore; a.res.termDrops > 0 {
		s.logf("the terminal did not keep up: %d bytes of the job's output were not shown there; they are in the log, %s", a.res.termDrops, s.dir.TrainLog())
	}
}

// finish classifies the ended attempt, records its step and publishes its exit.
func (a *attemptState) finish() attemptResult {
	s, res := a.s, &a.res
	res.end = time.Now()
	a.t.mu.Lock()
	res.lines = a.t.lines
	res.verdict = a.cls.Verdict(a.exitFacts())
	a.t.mu.Unlock()
	a.anomalyVerdict()
	if s.progressTime(a.t) != 0 {
		s.progressedBefore = true
	}
	res.stepEnd = s.step.Load()
	if res.stepEnd < 0 {
		res.stepEnd = res.stepStart
	}
	if s.state.Step < res.stepEnd {
		s.state.Step = res.stepEnd
	}
	s.state.Child = nil
	s.writeState()
	s.publish(observe.Event{Kind: observe.Exited, PID: res.pid, Class: string(res.verdict.Class), ExitCode: exitCodeOf(res.exit), Signal: signalOf(res.exit),
		Evidence: evidenceTexts(res.verdict), Suggestion: res.verdict.Suggestion, Retryable: res.verdict.Retryable, Step: res.stepEnd, LogWriteErrors: s.log.failuresOrZero(),
		StopRequested: res.stopSig != 0})
	return *res
}

// exitFacts is what the classifier needs to know about the end besides the output.
func (a *attemptState) exitFacts() classify.Exit {
	res := &a.res
	// Exit 0 is success whatever timer fired: a job whose SIGABRT or SIGTERM handler
	// ends it cleanly (or that finished just as the stall was declared) is done, and
	// restarting it would redo finished work.
	cleanExit := res.exit.err == nil && !res.exit.status.Signaled() && res.exit.status.ExitStatus() == 0
	if res.stalled && cleanExit {
		a.s.logf("the job exited 0 after the stall was declared: counted as success, not a hang")
	}
	exit := classify.Exit{
		Stalled:            res.stalled && !cleanExit,
		StopRequested:      res.stopSig != 0,
		KilledBySupervisor: a.killedByUs,
		OOMKillDelta:       -1,
	}
	if ws := res.exit.status; ws.Signaled() {
		exit.Signal = ws.Signal()
		exit.Code = -1
	} else {
		exit.Code = ws.ExitStatus()
	}
	if oomAfter := oomKills(); a.oomBefore >= 0 && oomAfter >= 0 {
		exit.OOMKillDelta = oomAfter - a.oomBefore
	}
	return exit
}

// maintainInto runs checkpoint maintenance and records it; it reports whether a new
// complete checkpoint appeared (progress for the restart budget).
func (s *supervisor) maintainInto(ctx context.Context, rec *rundir.Record, before int64) bool {
	if s.o.Checkpoints == nil {
		return false
	}
	res, err := s.o.Checkpoints(ctx, before)
	if err != nil {
		s.logf("checkpoints: %v", err)
		return false
	}
	rec.CheckpointsSeen = res.Seen
	addRemovals(rec, res)
	rec.Corrupt = res.Corrupt
	if res.Resume != "" {
		rec.NewestComplete = res.Resume
	}
	s.reportCheckpoints(res, "")
	progressed := res.NewestComplete > s.bestCheckpoint
	if res.NewestComplete > s.bestCheckpoint {
		s.bestCheckpoint = res.NewestComplete
	}
	s.resume, s.resumeStep = res.Resume, res.ResumeStep
	s.state.ResumeFrom = res.Resume
	return progressed
}

// reportCheckpoints prints what maintenance did (every deletion and quarantine with
// its reason and size) and publishes it.
func (s *supervisor) reportCheckpoints(res CheckpointResult, when string) {
	for _, n := range res.Notes {
		s.logf("checkpoints: %s%s", when, n)
	}
	s.publish(observe.Event{Kind: observe.Checkpoints, CheckpointStep: res.ResumeStep, CheckpointPath: res.Resume, CheckpointTime: res.ResumeTime, Pruned: len(res.Pruned), BytesFreed: res.BytesFreed})
}

// addRemovals adds what maintenance deleted and quarantined to rec.
func addRemovals(rec *rundir.Record, res CheckpointResult) {
	rec.Pruned = append(rec.Pruned, res.Pruned...)
	rec.Quarantined = append(rec.Quarantined, res.Quarantined...)
	rec.BytesFreed += res.BytesFreed
	rec.Removed = append(rec.Removed, res.Removed...)
}

func (s *supervisor) appendRecord(rec rundir.Record) {
	s.w.AppendRecord(rec)
}

func (s *supervisor) record(res attemptResult) rundir.Record {
	rec := rundir.Record{
		RunID:          s.runID,
		Attempt:        s.state.Attempt,
		Command:        s.state.AttemptCommand,
		Env:            s.state.AttemptEnv,
		PID:            res.pid,
		Start:          res.start,
		End:            res.end,
		DurationS:      res.end.Sub(res.start).Seconds(),
		Class:          string(res.verdict.Class),
		Suggestion:     res.verdict.Suggestion,
		Retryable:      res.verdict.Retryable,
		ClassExitCode:  res.verdict.ExitCode,
		Rank:           res.verdict.Rank,
		StepStart:      res.stepStart,
		StepEnd:        res.stepEnd,
		ResumedFrom:    s.state.ResumeFrom,
		Lines:          res.lines,
		LogWriteErrors: s.log.failuresOrZero(),
	}
	rec.TerminalDropped = res.termDrops
	rec.Anomalies, rec.AnomaliesDropped = res.anomalies, res.anomaliesDropped
	for _, e := range res.verdict.Evidence {
		rec.Evidence = append(rec.Evidence, rundir.Evidence{Line: e.Line, Text: e.Text})
	}
	if s.startup != nil {
		addRemovals(&rec, *s.startup)
		s.startup = nil
	}
	ws := res.exit.status
	switch {
	case res.exit.err != nil:
		// never started
	case ws.Signaled():
		rec.Signal = signalName(ws.Signal())
	default:
		c := ws.ExitStatus()
		rec.ExitCode = &c
	}
	return rec
}

// command is the job's argv for the next attempt, with smart recovery's changes and
// --resume-arg applied.
func (s *supervisor) command() []string {
	argv := s.rec.apply(append([]string(nil), s.o.Command...))
	if s.o.ResumeArg == "" || s.resume == "" {
		return argv
	}
	return ReplaceArg(argv, s.o.ResumeArg, s.resume)
}

// ReplaceArg returns argv with `flag value` set: an existing `flag X` or `flag=X` is
// replaced, otherwise the pair is appended.
func ReplaceArg(argv []string, flag, value string) []string {
	out := make([]string, 0, len(argv)+2)
	found := false
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == flag:
			out = append(out, flag, value)
			found = true
			i++ // skip the old value
		case strings.HasPrefix(a, flag+"="):
			out = append(out, flag+"="+value)
			found = true
		default:
			out = append(out, a)
		}
	}
	if !found {
		out = append(out, flag, value)
	}
	return out
}

func (s *supervisor) env(attempt int) []string {
	env := os.Environ()
	set := map[string]string{
		rundir.RunIDEnv:    s.runID,
		rundir.AttemptEnv:  strconv.Itoa(attempt),
		rundir.StateDirEnv: s.dir.Path,
	}
	if s.resume != "" {
		set[rundir.ResumeEnv] = s.resume
	}
	if s.lastClass != "" {
		set[rundir.LastCrashEnv] = s.lastClass
	}
	for k, v := range s.rec.envVars() {
		set[k] = v
	}
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; ok {
			continue
		}
		if k == rundir.ResumeEnv || k == rundir.LastCrashEnv {
			continue // an outer trainwrap's values are not ours
		}
		out = append(out, kv)
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

func setDefault(env []string, key, value string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return env
		}
	}
	return append(env, key+"="+value)
}

// startFailure classifies a command that could not be started at all.
func startFailure(err error) classify.Verdict {
	class := classify.FileNotFound
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		class = classify.Permission
	} else if !errors.Is(err, exec.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		class = classify.Unknown
	}
	info := classify.Lookup(class)
	return classify.Verdict{Class: class, Suggestion: fmt.Sprintf("%v. %s", err, info.Suggestion), Retryable: info.Retryable, ExitCode: info.ExitCode}
}

func describeVerdict(res attemptResult) string {
	var b strings.Builder
	switch {
	case res.exit.err != nil:
		b.WriteString("could not start")
	case res.exit.status.Signaled():
		fmt.Fprintf(&b, "killed by %s", signalName(res.exit.status.Signal()))
	default:
		fmt.Fprintf(&b, "exited with code %d", res.exit.status.ExitStatus())
	}
	fmt.Fprintf(&b, " after %s: %s (exit code %d", res.end.Sub(res.start).Round(time.Millisecond), res.verdict.Class, res.verdict.ExitCode)
	if res.verdict.Retryable {
		b.WriteString(", retryable)")
	} else {
		b.WriteString(", not retryable)")
	}
	for _, e := range res.verdict.Evidence {
		text := e.Text
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		fmt.Fprintf(&b, "\n  line %d: %s", e.Line, text)
	}
	if res.verdict.Suggestion != "" {
		fmt.Fprintf(&b, "\n  what to do: %s", res.verdict.Suggestion)
	}
	return b.String()
}

func resumeNote(path string) string {
	if path == "" {
		return ""
	}
	return ", resuming from " + path
}

func signalName(sig syscall.Signal) string {
	if n := unixSignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

func exitCodeOf(e exitInfo) int {
	if e.err != nil || e.status.Signaled() {
		return -1
	}
	return e.status.ExitStatus()
}

func signalOf(e exitInfo) string {
	if e.err == nil && e.status.Signaled() {
		return signalName(e.status.Signal())
	}
	return ""
}

func evidenceTexts(v classify.Verdict) []string {
	out := make([]string, 0, len(v.Evidence))
	for _, e := range v.Evidence {
		out = append(out, e.Text)
	}
	return out
}
