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
}

// loop runs attempts until the job succeeds, is stopped, or the policy gives up.
func (s *supervisor) loop(ctx context.Context) int {
	for attempt := 1; ; attempt++ {
		res := s.attempt(ctx, attempt)
		rec := s.record(res)

		if res.stopSig != 0 {
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
		if res.verdict.Class == classify.None {
			rec.Decision, rec.Reason = rundir.DecisionDone, "exit 0"
			s.maintainInto(ctx, &rec)
			s.appendRecord(rec)
			s.state.Status = rundir.StatusSucceeded
			code := 0
			s.state.ExitCode = &code
			s.writeState()
			s.publish(observe.Event{Kind: observe.Succeeded, Step: res.stepEnd})
			s.logf("job succeeded (attempt %d)", attempt)
			return 0
		}

		// A failure: find the resume point first, since a new checkpoint is progress.
		progressed := s.maintainInto(ctx, &rec)
		if res.stepEnd > s.bestStep {
			if s.bestStep >= 0 || res.stepEnd > res.stepStart {
				progressed = true
			}
			s.bestStep = res.stepEnd
		}
		rec.Progressed = progressed
		d := s.rs.decide(Outcome{Start: res.start, End: res.end, Retryable: res.verdict.Retryable, Class: string(res.verdict.Class), Progressed: progressed})
		s.lastClass = string(res.verdict.Class)
		s.state.LastClass = s.lastClass
		s.logf("attempt %d: %s", attempt, describeVerdict(res))
		d = s.adjust(&rec, res.verdict, d)
		if !d.Restart {
			rec.Decision, rec.Reason = rundir.DecisionGiveUp, d.Reason
			s.appendRecord(rec)
			code := res.verdict.ExitCode
			s.state.Status = rundir.StatusGaveUp
			s.state.ExitCode = &code
			s.writeState()
			s.publish(observe.Event{Kind: observe.GaveUp, Class: string(res.verdict.Class), ExitCode: code, Suggestion: res.verdict.Suggestion, Message: d.Reason})
			s.logf("giving up: %s; exiting %d (%s)", d.Reason, code, res.verdict.Class)
			return code
		}
		rec.Decision, rec.Reason, rec.BackoffMS = rundir.DecisionRestart, d.Reason, d.Delay.Milliseconds()
		s.appendRecord(rec)
		s.state.Restarts++
		s.state.Status = rundir.StatusBackoff
		next := time.Now().Add(d.Delay)
		s.state.NextStart = &next
		s.writeState()
		s.publish(observe.Event{Kind: observe.Restarting, Backoff: d.Delay, Restarts: s.state.Restarts, Class: string(res.verdict.Class), Message: recoveryMessage(rec.Adjustments)})
		s.logf("restarting in %s (attempt %d)%s", d.Delay.Round(time.Millisecond), attempt+1, resumeNote(s.resume))
		if sig := s.backoff(ctx, d.Delay); sig != 0 {
			code := 128 + int(sig)
			s.state.Status = rundir.StatusStopped
			s.state.NextStart = nil
			s.state.ExitCode = &code
			s.writeState()
			s.publish(observe.Event{Kind: observe.Stopped, Signal: signalName(sig), ExitCode: code})
			s.logf("stopped by %s during backoff; exiting %d", signalName(sig), code)
			return code
		}
		s.state.NextStart = nil
		if s.o.QuickCheck != nil {
			if err := s.o.QuickCheck(ctx); err != nil {
				s.logf("between-attempts check: %v", err)
			}
		}
	}
}

// backoff waits d, reaping and forwarding signals meanwhile. It returns the stop
// signal when the user asked to stop.
func (s *supervisor) backoff(ctx context.Context, d time.Duration) syscall.Signal {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return 0
		case <-ctx.Done():
			return syscall.SIGTERM
		case <-s.guardGone():
			s.restartGuard()
		case sig := <-s.sigs:
			switch sig {
			case syscall.SIGCHLD:
				s.reaper.reap()
			case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
				return sig.(syscall.Signal)
			}
		}
	}
}

// maintainInto runs checkpoint maintenance and records it; it reports whether a new
// complete checkpoint appeared (progress for the restart budget).
func (s *supervisor) maintainInto(ctx context.Context, rec *rundir.Record) bool {
	if s.o.Checkpoints == nil {
		return false
	}
	res, err := s.o.Checkpoints(ctx)
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

// attempt runs the job once, from start to the end of its last process.
func (s *supervisor) attempt(ctx context.Context, n int) attemptResult {
	s.state.Attempt = n
	s.state.Status = rundir.StatusRunning
	s.state.ExitCode = nil
	s.step.Store(-1)
	s.lastProgress.Store(0)
	// The attempt starts at its resume point's step: that is where the job goes on.
	res := attemptResult{start: time.Now()}
	if s.resume != "" {
		res.stepStart = s.resumeStep
	}

	argv := s.command()
	env := s.env(n)
	s.state.AttemptCommand, s.state.AttemptEnv = argv, s.rec.envVars()
	usePty := s.o.Pty == PtyAlways || (s.o.Pty == PtyAuto && isTerminal(os.Stdout))
	if !usePty {
		env = setDefault(env, "PYTHONUNBUFFERED", "1")
	}
	// Also under a pty: the stack dump on a stall needs the fault handler.
	env = setDefault(env, "PYTHONFAULTHANDLER", "1")

	cls := classify.New()
	t := newTee(s.log, n, []LineObserver{cls})
	if s.o.ProgressRegex != nil {
		t.segments = LineObserverFunc(s.observeProgress)
	} else {
		t.segments = LineObserverFunc(s.observeBuiltinStep)
	}
	oomBefore := oomKills()
	dropsBefore := s.terminalDrops()

	if s.cg != nil {
		if err := s.cg.startAttempt(n); err != nil {
			s.logf("cgroup: %v; this attempt runs without one", err)
		}
	}
	var cg *jobCgroup
	if s.cg != nil && s.cg.leaf != "" {
		cg = s.cg
	}
	spec := spawnSpec{argv: argv, env: env, dir: s.o.WorkDir, usePty: usePty, stdout: s.outTerm, stderr: s.errTerm, cgroup: cg}
	c, err := spawn(spec, s.reaper)
	if err != nil && spec.cgroup != nil {
		// A kernel or a delegation that refuses CLONE_INTO_CGROUP: when the job starts
		// without it, the cgroup was the cause, and the sweep alone is left.
		spec.cgroup = nil
		if c2, err2 := spawn(spec, s.reaper); err2 == nil {
			s.logf("cgroup: cannot start the job in %s (%v); processes that leave the job's group and environment may survive its end", s.cg.dir, err)
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = s.cg.remove(rctx)
			cancel()
			s.cg = nil
			c, err = c2, nil
		}
	}
	if err != nil {
		_ = s.cg.endAttempt(ctx)
		res.end = time.Now()
		res.exit = exitInfo{err: err, at: res.end}
		res.verdict = startFailure(err)
		s.logf("%v", err)
		return res
	}
	res.pid = c.id.PID
	s.reaper.setJob(c.pgid, c.sid)
	j := job{runID: s.runID, c: c, cg: s.cg}
	if s.guard != nil {
		j.guard = s.guard.pid
	}
	s.state.Child = &rundir.Proc{PID: c.id.PID, PGID: c.pgid, StartTime: c.id.StartTime}
	s.state.AttemptStarted = res.start
	s.state.LastProgress = time.Time{}
	s.writeState()
	s.publish(observe.Event{Kind: observe.Started, PID: c.id.PID, Command: argv, StallTimeout: s.o.StallTimeout})

	var pumps sync.WaitGroup
	for _, o := range c.outs {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			t.pump(o.r, o.dst)
		}()
	}
	pumpsDone := make(chan struct{})
	go func() { pumps.Wait(); close(pumpsDone) }()

	var (
		stopping    bool
		killedByUs  bool
		stallTimer  = time.NewTimer(time.Hour)
		abortTimer  *time.Timer
		killTimer   *time.Timer
		tick        = time.NewTicker(time.Second)
		hbMtime     time.Time
		lastPub     int64
		reapPending bool // zombies wait out their linger limit; the tick retries
	)
	stallTimer.Stop()
	defer tick.Stop()
	// The stall timer runs to the earliest deadline known; progress only pushes the
	// deadline later (the timer then re-arms when it fires), but the first progress
	// can bring it forward from --startup-timeout to --stall-timeout, which the tick
	// catches.
	var stallAt time.Time
	armStall := func() {
		if d, ok := s.stallDeadline(res.start, t); ok {
			stallAt = d
			stallTimer.Reset(time.Until(d))
		}
	}
	armStall()
	timerC := func(t *time.Timer) <-chan time.Time {
		if t == nil {
			return nil
		}
		return t.C
	}
	var killAt time.Time // when the stop sequence SIGKILLs what is left
	startStop := func(sig syscall.Signal) {
		stopping = true
		j.signalGroup(sig)
		killAt = time.Now().Add(s.o.StopTimeout)
		killTimer = time.NewTimer(s.o.StopTimeout)
	}
	if s.o.HeartbeatFile != "" {
		if fi, err := os.Stat(s.o.HeartbeatFile); err == nil {
			hbMtime = fi.ModTime()
		}
	}

wait:
	for {
		select {
		case ex := <-c.exited:
			res.exit = ex
			c.gone = true
			break wait
		case <-ctx.Done():
			if !stopping {
				res.stopSig = syscall.SIGTERM
				startStop(syscall.SIGTERM)
			}
		case sig := <-s.sigs:
			ss := sig.(syscall.Signal)
			switch ss {
			case syscall.SIGCHLD:
				reapPending = s.reaper.reap()
			case syscall.SIGPIPE:
			case syscall.SIGWINCH:
				c.resize()
			case syscall.SIGUSR1, syscall.SIGUSR2:
				// SLURM's pre-emption warning: every rank that listens should see it.
				j.signalCatchers(ss)
			default: // INT, TERM, HUP, QUIT
				if res.stopSig == 0 {
					res.stopSig = ss
				}
				if !stopping {
					s.logf("received %s: forwarding it to the job; SIGKILL in %s (send it again to kill now)", signalName(ss), s.o.StopTimeout)
					s.state.Status = rundir.StatusStopping
					s.writeState()
					startStop(ss)
				} else {
					killedByUs = true
					j.signalAll(syscall.SIGKILL)
				}
			}
		case <-s.guardGone():
			s.restartGuard()
			j.guard = 0
			if s.guard != nil {
				j.guard = s.guard.pid
			}
		case <-stallTimer.C:
			if stopping {
				continue
			}
			if d, ok := s.stallDeadline(res.start, t); ok && time.Now().Before(d) {
				stallAt = d
				stallTimer.Reset(time.Until(d))
				continue
			}
			res.stalled = true
			s.logf("no progress for %s: sending SIGABRT to the job for a stack dump, then stopping it", s.stallWindow(t))
			s.publish(observe.Event{Kind: observe.Hang, PID: c.id.PID, StallTimeout: s.o.StallTimeout, Class: string(classify.Hang)})
			s.state.Status = rundir.StatusStopping
			s.writeState()
			stopping = true
			// Every rank's fault handler dumps its stacks, not only the launcher's.
			j.signalAbort()
			abortTimer = time.NewTimer(s.o.AbortGrace)
		case <-timerC(abortTimer):
			abortTimer = nil
			startStop(syscall.SIGTERM)
		case <-timerC(killTimer):
			killTimer = nil
			killedByUs = true
			j.signalAll(syscall.SIGKILL)
		case <-tick.C:
			if !stopping {
				if d, ok := s.stallDeadline(res.start, t); ok && d.Before(stallAt) {
					stallAt = d
					stallTimer.Reset(time.Until(d))
				}
			}
			if s.o.HeartbeatFile != "" {
				if fi, err := os.Stat(s.o.HeartbeatFile); err == nil && !fi.ModTime().Equal(hbMtime) {
					hbMtime = fi.ModTime()
					s.lastProgress.Store(time.Now().UnixNano())
				}
			}
			if reapPending {
				reapPending = s.reaper.reap()
			}
			lp := s.progressTime(t)
			if lp != lastPub {
				lastPub = lp
				s.state.LastProgress = time.Unix(0, lp)
				if st := s.step.Load(); st >= 0 {
					s.state.Step = st
				}
				s.state.LogWriteErrors = s.log.failuresOrZero()
				s.writeState()
				s.publish(observe.Event{Kind: observe.Progress, Step: s.state.Step, LastProgress: s.state.LastProgress, LogWriteErrors: s.state.LogWriteErrors})
			}
		}
	}
	stallTimer.Stop()

	// The leader is gone; now the rest of the job. A stop already sent its signal and
	// keeps its deadline; after a plain exit the leftovers get SIGTERM and the full stop
	// timeout; a stall still waiting out its SIGABRT grace goes straight to SIGKILL.
	if left := j.procs(); len(left) > 0 {
		switch {
		case abortTimer != nil:
			killAt = time.Now()
		case !stopping:
			j.signalAll(syscall.SIGTERM)
			killAt = time.Now().Add(s.o.StopTimeout)
		}
		gctx, cancel := context.WithDeadline(context.Background(), killAt)
		gone := j.waitGone(gctx, s.reaper, 20*time.Millisecond)
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

	// Output: whatever the job wrote before it died is in the pipes or the pty.
	s.drainOutput(ctx, t, c, pumpsDone, &res)
	if res.termDrops = s.flushTerminals() - dropsBefore; res.termDrops > 0 {
		s.logf("the terminal did not keep up: %d bytes of the job's output were not shown there; they are in the log, %s", res.termDrops, s.dir.TrainLog())
	}
	res.end = time.Now()
	t.mu.Lock()
	res.lines = t.lines
	// Exit 0 is success whatever timer fired: a job whose SIGABRT or SIGTERM handler
	// ends it cleanly (or that finished just as the stall was declared) is done, and
	// restarting it would redo finished work.
	cleanExit := res.exit.err == nil && !res.exit.status.Signaled() && res.exit.status.ExitStatus() == 0
	if res.stalled && cleanExit {
		s.logf("the job exited 0 after the stall was declared: counted as success, not a hang")
	}
	exit := classify.Exit{
		Stalled:            res.stalled && !cleanExit,
		StopRequested:      res.stopSig != 0,
		KilledBySupervisor: killedByUs,
		OOMKillDelta:       -1,
	}
	if ws := res.exit.status; ws.Signaled() {
		exit.Signal = ws.Signal()
		exit.Code = -1
	} else {
		exit.Code = ws.ExitStatus()
	}
	if oomAfter := oomKills(); oomBefore >= 0 && oomAfter >= 0 {
		exit.OOMKillDelta = oomAfter - oomBefore
	}
	res.verdict = cls.Verdict(exit)
	t.mu.Unlock()
	if s.progressTime(t) != 0 {
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
	return res
}

// observeProgress takes progress (and the step, from the first group) from lines that
// match --progress-regex.
func (s *supervisor) observeProgress(line []byte) {
	m := s.o.ProgressRegex.FindSubmatch(line)
	if m == nil {
		return
	}
	s.lastProgress.Store(time.Now().UnixNano())
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
