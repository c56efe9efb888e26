package shim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/trainwrap/trainwrap/internal/exitcode"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// Exit codes of Run besides the class codes.
const (
	ExitOK        = 0
	ExitUsage     = 2
	ExitPreflight = 3
)

// Error is an error with the exit code trainwrap should end with.
type Error = exitcode.Error

// supervisor is the state of one `trainwrap run`. Only the goroutine in Run touches it,
// except the atomics, which the output pumps update.
type supervisor struct {
	o      Options
	dir    rundir.Dir
	runID  string
	self   proc.ID
	reaper *reaper
	sigs   chan os.Signal
	log    *logSink
	logw   *logFile
	guard  *guardHandle
	// sentinel is a second guard inside the job's cgroup; nil without a cgroup.
	sentinel *guardHandle
	// subreaper is set once we are a child subreaper: every process of the job then
	// stays in our tree, and teardown walks the tree instead of the whole host.
	subreaper bool
	exe       string     // re-executed as the guard
	cgDir     string     // the job's cgroup, which the guard kills; "" without one
	cg        *jobCgroup // nil: no cgroup v2 delegation, or --cgroup off
	state     rundir.State
	w         *rundir.Writer // state.json and runs.jsonl, surviving a full disk
	rs        *restarter
	rec       *recovery // smart recovery; nil when off
	// series is metrics.jsonl; nil without metrics. Its failed writes are counted,
	// the first one said.
	series       SeriesSink
	seriesErrors int64

	// The job's output (and our messages) on the way to our stdout and stderr.
	outTerm, errTerm *termWriter

	bestStep       int64 // highest step any attempt reached
	bestCheckpoint int64 // newest complete checkpoint step seen
	resume         string
	resumeStep     int64
	lastClass      string
	// startup is what maintenance before attempt 1 did; attempt 1's record holds it.
	startup *CheckpointResult
	// progressedBefore is set once an attempt made progress: later attempts then get
	// the stall window from their start (plus ResumeAllowance), not StartupTimeout.
	progressedBefore bool

	// set by the output pumps of the current attempt
	lastProgress atomic.Int64 // unix nanos
	step         atomic.Int64
}

// Run supervises o.Command until it succeeds, is stopped, or the policy gives up, and
// returns the exit code trainwrap should end with. Errors that stop it before the job
// starts are *Error with the code to use.
func Run(ctx context.Context, o Options) (int, error) {
	o.Defaults()
	if len(o.Command) == 0 {
		return ExitUsage, &Error{Code: ExitUsage, Err: errors.New("no command given: put it after --, as in trainwrap [run] [flags] -- CMD ARGS")}
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	s := &supervisor{o: o, dir: rundir.New(o.StateDir), reaper: newReaper(), bestStep: -1, bestCheckpoint: -1}
	s.outTerm, s.errTerm = newTermWriter(o.Stdout, o.TerminalPatience), newTermWriter(o.Stderr, o.TerminalPatience)
	defer s.errTerm.close()
	defer s.outTerm.close()
	rec, notes, err := newRecovery(o.Recovery, o.Command, o.WorkDir, o.StateDir)
	if err != nil {
		return ExitUsage, &Error{Code: ExitUsage, Err: err}
	}
	s.rec = rec
	for _, n := range notes {
		s.logf("%s", n)
	}
	return s.run(ctx)
}

func (s *supervisor) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr(), "trainwrap: "+format+"\n", args...)
}

func (s *supervisor) run(ctx context.Context) (int, error) {
	if err := os.MkdirAll(s.dir.Logs(), 0o755); err != nil {
		return ExitUsage, &Error{Code: ExitUsage, Err: fmt.Errorf("create run directory %s: %w; choose a writable --state-dir", s.dir.Path, err)}
	}
	lock, err := s.lockRunDir()
	if err != nil {
		return ExitUsage, err
	}
	defer lock.Close()

	if err := s.sweepPrevious(); err != nil {
		return ExitUsage, &Error{Code: ExitUsage, Err: err}
	}
	s.w = rundir.NewWriter(s.dir, func(msg string) { s.logf("%s", msg) })
	defer func() {
		if err := s.w.Close(); err != nil {
			s.logf("warning: %v", err)
		}
	}()

	s.runID = newRunID()
	if s.self, err = proc.Self(); err != nil {
		return ExitUsage, &Error{Code: ExitUsage, Err: fmt.Errorf("read own process identity: %w", err)}
	}
	if err := becomeSubreaper(); err == nil {
		s.subreaper = true
	} else {
		s.logf("warning: cannot become a child subreaper (%v); orphans of the job will be found by run id only", err)
	}

	// Signals that came before this point (see NotifyEarly) wait in o.Signals.
	s.sigs = s.o.Signals
	if s.sigs == nil {
		s.sigs = make(chan os.Signal, 32)
	}
	signal.Notify(s.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCHLD, syscall.SIGPIPE)
	defer signal.Stop(s.sigs)

	removeCgroup := s.makeCgroup()
	defer removeCgroup()
	s.startFirstGuard()
	// The sentinel first: the guard's sweep of the cgroup would count and kill it. The
	// guard of the end may be a restarted one.
	defer func() { s.sentinel.stop(); s.guard.stop() }()

	s.openSeries()
	defer s.closeSeries()

	s.logw = newLogFile(s.dir.TrainLog(), s.o.LogMaxSizeMB, s.o.LogMaxBackups)
	s.log = &logSink{w: s.logw, stderr: s.stderr()}
	defer s.logw.Close()

	now := s.initState()
	if s.o.Preflight != nil {
		if err := s.o.Preflight(ctx); err != nil {
			s.state.Status = rundir.StatusGaveUp
			s.writeState()
			return ExitPreflight, &Error{Code: ExitPreflight, Err: fmt.Errorf("preflight failed: %w; fix it (trainwrap preflight --fix) or start with --skip-preflight", err)}
		}
	}
	s.startupCheckpoints(ctx)

	s.rs = newRestarter(s.o.Policy, uint64(now.UnixNano()))
	code := s.loop(ctx)
	s.sweepRunID()
	s.finish()
	return code, nil
}

// lockRunDir takes the run directory's lock; an *Error says who holds it.
func (s *supervisor) lockRunDir() (io.Closer, error) {
	lock, err := lockDir(s.dir.Lock())
	if errors.Is(err, ErrLocked) {
		who := ""
		if st, rerr := rundir.ReadState(s.dir.State()); rerr == nil {
			who = fmt.Sprintf(" (supervisor pid %d)", st.Supervisor.PID)
		}
		return nil, &Error{Code: ExitUsage, Err: fmt.Errorf("%s is in use by another trainwrap%s; wait for it to end, or use another --state-dir", s.dir.Path, who)}
	}
	if err != nil {
		return nil, &Error{Code: ExitUsage, Err: err}
	}
	return lock, nil
}

// makeCgroup gives the job a cgroup of its own where delegation allows, and returns
// what removes it at the end of the run.
func (s *supervisor) makeCgroup() func() {
	if s.o.Cgroup == CgroupOff {
		return func() {}
	}
	cg, err := newJobCgroup(s.runID)
	if err != nil {
		s.logf("cgroup: no cgroup v2 delegation for the job here (%v); processes that leave the job's group and environment may survive its end (--cgroup off silences this)", err)
		return func() {}
	}
	s.cg = cg
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.cg.remove(ctx); err != nil {
			s.logf("warning: %v", err)
		}
	}
}

// startFirstGuard starts the guard that kills the job if we are SIGKILLed.
func (s *supervisor) startFirstGuard() {
	exe := s.o.Exe
	if exe == "" {
		exe, _ = os.Executable()
	}
	cgDir := ""
	if s.cg != nil {
		cgDir = s.cg.dir
	}
	s.exe, s.cgDir = exe, cgDir
	if g, err := startGuard(exe, s.runID, s.self, cgDir); err != nil {
		s.logf("warning: %v; if trainwrap is killed with SIGKILL, grandchildren of the job may survive until the next run on this directory", err)
	} else {
		s.guard = g
	}
	if s.cg == nil {
		return
	}
	// The guard dies with us when trainwrap's whole group or both pids are SIGKILLed;
	// the sentinel, in the job's cgroup and a group of its own, still ends the job.
	fd, err := s.cg.openSentinelLeaf()
	if err == nil {
		s.sentinel, err = startSentinel(exe, s.runID, s.self, cgDir, fd)
		unix.Close(fd)
	}
	if err != nil {
		s.logf("warning: cgroup sentinel: %v; if trainwrap and its guard are both SIGKILLed, the job runs on until the next run on this directory", err)
	}
}

// initState writes the run's first state.json and returns the run's start.
func (s *supervisor) initState() time.Time {
	now := time.Now()
	s.state = rundir.State{
		RunID:          s.runID,
		Supervisor:     rundir.Proc{PID: s.self.PID, StartTime: s.self.StartTime},
		Command:        s.o.Command,
		Status:         rundir.StatusStarting,
		StartedAt:      now,
		CheckpointRoot: s.o.CheckpointRoot,
	}
	if s.o.StallTimeout > 0 {
		s.state.StallTimeout = s.o.StallTimeout.String()
	}
	s.recordGuard()
	s.writeState()
	return now
}

// startupCheckpoints runs checkpoint maintenance before attempt 1 and takes the resume
// point from it.
func (s *supervisor) startupCheckpoints(ctx context.Context) {
	if s.o.Checkpoints == nil {
		return
	}
	res, err := s.o.Checkpoints(ctx, 0)
	if err != nil {
		s.logf("checkpoints: %v", err)
		return
	}
	// What an earlier run left may be pruned before the job starts: say so, as
	// between attempts.
	s.reportCheckpoints(res, "before attempt 1: ")
	for i := range res.Removed {
		res.Removed[i].Startup = true
	}
	s.startup = &res
	s.resume, s.resumeStep = res.Resume, res.ResumeStep
	s.state.ResumeFrom = res.Resume
	s.bestCheckpoint = res.NewestComplete
	if res.Resume != "" {
		s.logf("resuming from %s (step %d)", res.Resume, res.ResumeStep)
	}
}

// sweepPrevious checks the state.json of an earlier supervisor on this directory and
// kills what is left of its job: processes that still carry its run id, proven by
// pid, start time and environment, once that supervisor is dead.
func (s *supervisor) sweepPrevious() error {
	prev, err := rundir.ReadState(s.dir.State())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if errors.Is(err, rundir.ErrCorruptState) {
		if !s.o.Force {
			return err
		}
		aside, rerr := rundir.MoveAside(s.dir.State(), time.Now())
		if rerr != nil {
			return fmt.Errorf("--force: %w", rerr)
		}
		s.logf("--force: moved the corrupt state.json aside to %s", filepath.Base(aside))
		return nil
	}
	if err != nil {
		return err
	}
	if prev.RunID == "" {
		return nil
	}
	sup := proc.ID{PID: prev.Supervisor.PID, StartTime: prev.Supervisor.StartTime}
	if sup.PID != 0 && sup.Alive() {
		// Holding the lock means it is not supervising this directory any more; its
		// job is its own business.
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	killed, err := proc.KillAllWithEnv(ctx, rundir.RunIDEnv, prev.RunID)
	cancel()
	if err != nil {
		s.logf("warning: %v", err)
	}
	if killed > 0 {
		s.logf("killed %d leftover process(es) of the previous run %s", killed, prev.RunID)
	}
	// A supervisor killed together with its guard leaves its job's cgroup behind, with
	// whatever escaped the run id in it.
	if s.o.Cgroup != CgroupOff {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := killCgroupOf(ctx, prev.RunID)
		cancel()
		if err != nil {
			s.logf("warning: %v", err)
		}
		if n > 0 {
			s.logf("killed %d leftover process(es) in the cgroup of the previous run %s", n, prev.RunID)
		}
	}
	return nil
}

// sweepRunID is the last sweep of the run: it kills whatever still carries the run id
// anywhere on the host, proven by pid, start time and environment. Teardown between
// attempts looks only at our own tree and the job's cgroup, which hold every process
// of the job as long as we are a subreaper; this one scan of every process is for what
// left the tree all the same (a process re-parented by a ptrace, a pid namespace's
// init of its own), so that nothing of the job outlives the run.
func (s *supervisor) sweepRunID() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	killed, err := proc.KillAllWithEnv(ctx, rundir.RunIDEnv, s.runID)
	if err != nil {
		s.logf("warning: %v", err)
	}
	if killed > 0 {
		s.logf("killed %d process(es) of the job that had left its process tree", killed)
		s.reaper.reapAll()
	}
}

// finish waits for every descendant when we are PID 1 (a container's init), reaping
// them, so the container does not end with processes still running.
func (s *supervisor) finish() {
	s.reaper.reapAll()
	if os.Getpid() != 1 {
		return
	}
	deadline := time.Now().Add(s.o.StopTimeout)
	for time.Now().Before(deadline) {
		ds, err := proc.Descendants(1)
		if err != nil {
			return
		}
		alive := 0
		for _, d := range ds {
			if !d.Zombie() && (s.guard == nil || d.PID != s.guard.pid) {
				alive++
			}
		}
		s.reaper.reapAll()
		if alive == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *supervisor) writeState() {
	s.state.LogWriteErrors = s.log.failuresOrZero()
	s.w.WriteState(s.state)
}

func (s *supervisor) publish(e observe.Event) {
	if s.o.Observer == nil {
		return
	}
	e.Time = time.Now()
	e.RunID = s.runID
	if e.Attempt == 0 {
		e.Attempt = s.state.Attempt
	}
	s.o.Observer.Publish(e)
}

func (l *logSink) failuresOrZero() int64 {
	if l == nil {
		return 0
	}
	return l.failures.Load()
}

func newRunID() string {
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// oomKills reads the cgroup OOM-kill counter, -1 when unknown.
func oomKills() int64 {
	n, _, err := classify.OOMKillCount()
	if err != nil {
		return -1
	}
	return n
}

// recordGuard puts the guard's identity in the state.
func (s *supervisor) recordGuard() {
	s.state.Guard = nil
	if s.guard == nil {
		return
	}
	s.state.Guard = &rundir.Proc{PID: s.guard.pid}
	if id, err := proc.Identify(s.guard.pid); err == nil {
		s.state.Guard.StartTime = id.StartTime
	}
}

// guardGone is closed when the guard exits; nil (never ready) without a guard.
func (s *supervisor) guardGone() <-chan struct{} {
	if s.guard == nil {
		return nil
	}
	return s.guard.done
}

// restartGuard starts a new guard after the old one died: the guard is what kills the
// job (and its cgroup) if the supervisor is SIGKILLed, so it is kept alive.
func (s *supervisor) restartGuard() {
	s.guard.w.Close()
	g, err := startGuard(s.exe, s.runID, s.self, s.cgDir)
	if err != nil {
		s.guard = nil
		s.logf("warning: the guard died and cannot be restarted (%v); if trainwrap is killed with SIGKILL, processes of the job may survive until the next run on this directory", err)
	} else {
		s.guard = g
		s.logf("the guard process died; started a new one (pid %d)", g.pid)
	}
	s.recordGuard()
	s.writeState()
}
