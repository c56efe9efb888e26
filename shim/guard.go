package shim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// The guard is trainwrap re-executed as `trainwrap guard`: a tiny process that outlives
// a supervisor killed with SIGKILL just long enough to kill the job's processes that
// Pdeathsig cannot reach (grandchildren, processes that called setsid). It learns of
// the supervisor's death twice over: its stdin is a pipe whose only writer is the
// supervisor (EOF when it dies, however it dies), and its parent-death signal is SIGTERM.

// guardHandle is the supervisor's side of the guard.
type guardHandle struct {
	pid  int
	w    *os.File
	done chan struct{}
}

// startGuard starts the guard for runID. exe is the trainwrap binary.
// cgroupDir, when not empty, is the job's cgroup, which the guard kills too.
func startGuard(exe string, runID string, self proc.ID, cgroupDir string) (*guardHandle, error) {
	return startGuardProcess(exe, runID, self, cgroupDir, -1)
}

// startSentinel starts a second guard inside the job's cgroup, in a leaf of its own
// (leafFD, open on it). A SIGKILL of the supervisor and the guard together, or of
// trainwrap's whole process group, leaves it alive: it is in a group of its own and its
// pid is nowhere for a script to find. It then kills the attempts' leaves, as the guard
// would have; teardown never counts it as the job's (see jobCgroup.pids).
func startSentinel(exe string, runID string, self proc.ID, cgroupDir string, leafFD int) (*guardHandle, error) {
	return startGuardProcess(exe, runID, self, cgroupDir, leafFD)
}

func startGuardProcess(exe string, runID string, self proc.ID, cgroupDir string, leafFD int) (*guardHandle, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	// The guard says "ready" once its signal handlers are in place: a supervisor
	// killed before that moment would otherwise kill the guard with its parent-death
	// SIGTERM before the sweep.
	rr, rw, err := os.Pipe()
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("guard: %w", err)
	}
	defer rr.Close()
	args := []string{"trainwrap", "guard", "--run-id", runID, "--supervisor-pid", fmt.Sprint(self.PID), "--supervisor-start", fmt.Sprint(self.StartTime)}
	if cgroupDir != "" {
		args = append(args, "--cgroup", cgroupDir)
	}
	if leafFD >= 0 {
		args = append(args, "--sentinel")
	}
	cmd := &exec.Cmd{
		Path:   exe,
		Args:   args,
		Stdin:  r,
		Stdout: rw,
		Stderr: os.Stderr,
		// Its own group: a Ctrl-C meant for the supervisor must not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
	}
	if leafFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, leafFD
	}
	// The guard carries no run id, so that it never finds itself in a sweep.
	cmd.Env = withoutEnv(os.Environ(), rundir.RunIDEnv)
	g := &guardHandle{w: w, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		r.Close()
		rw.Close()
		started <- err
		if err != nil {
			return
		}
		_ = cmd.Wait()
		close(g.done)
	}()
	if err := <-started; err != nil {
		w.Close()
		return nil, fmt.Errorf("guard: start %s: %w", exe, err)
	}
	g.pid = cmd.Process.Pid
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(rr).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			g.stop()
			return nil, fmt.Errorf("guard did not start: %v", err)
		}
	case <-time.After(10 * time.Second):
		g.stop()
		return nil, fmt.Errorf("guard did not say ready within 10s")
	}
	return g, nil
}

// stop tells the guard that the supervisor ends cleanly and waits for it briefly.
func (g *guardHandle) stop() {
	if g == nil {
		return
	}
	g.w.Write([]byte("done\n"))
	g.w.Close()
	select {
	case <-g.done:
	case <-time.After(2 * time.Second):
	}
}

// GuardOptions configure RunGuard.
type GuardOptions struct {
	RunID      string
	Supervisor proc.ID
	Stdin      io.Reader
	// Ready receives "ready\n" once the guard's signal handlers are installed.
	Ready  io.Writer
	Stderr io.Writer
	// Cgroup is the job's cgroup directory, killed as a whole; "" when it has none.
	Cgroup string
	// Signals is the channel from NotifyEarly; nil makes a new one.
	Signals chan os.Signal
	// Sentinel is set for the guard that lives in the job's cgroup: it kills the
	// attempts' leaves, not the whole cgroup, which holds it too.
	Sentinel bool
}

// RunGuard is the body of `trainwrap guard`. It waits until its supervisor is gone,
// then kills every process that carries the run id, until none is left (at most 10 s).
// A clean end ("done" on stdin) still sweeps: there should be nothing left, and if there
// is, it is ours.
func RunGuard(ctx context.Context, o GuardOptions) error {
	if o.RunID == "" {
		return fmt.Errorf("guard: --run-id is required")
	}
	// Our parent-death signal and terminal signals must not kill us before the sweep.
	sigs := o.Signals
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
	}
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if o.Ready != nil {
		if _, err := io.WriteString(o.Ready, "ready\n"); err != nil {
			return fmt.Errorf("guard: tell the supervisor: %w", err)
		}
		if c, ok := o.Ready.(io.Closer); ok {
			c.Close()
		}
	}
	if !waitForSupervisorDeath(ctx, o, sigs) {
		return nil
	}
	sweepAfterSupervisor(ctx, o)
	return nil
}

// waitForSupervisorDeath returns when the supervisor is gone (true) or ctx ends
// (false).
func waitForSupervisorDeath(ctx context.Context, o GuardOptions, sigs <-chan os.Signal) bool {
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, o.Stdin)
		close(eof)
	}()
	// Belt and braces: a supervisor that died while its pipe was inherited by someone
	// else would never give us EOF. Its pidfd tells us of its death without a wake-up
	// before it; only a kernel without pidfds makes us look once a second.
	var dead <-chan struct{}
	var tick <-chan time.Time
	if w, err := proc.NewWatch(o.Supervisor); err == nil {
		defer w.Close()
		dead = w.Exited()
	} else if errors.Is(err, proc.ErrGone) {
		closed := make(chan struct{})
		close(closed)
		dead = closed
	} else {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	// Nothing but the sweep is left to do in this process: give the pages that start-up
	// touched back, and keep the heap small (see trimGuard).
	trimGuard()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-eof:
			return true
		case <-dead:
			return true
		case <-sigs:
			if !o.Supervisor.Alive() {
				return true
			}
		case <-tick:
			if !o.Supervisor.Alive() {
				return true
			}
		}
	}
}

// sweepAfterSupervisor kills what is left of the run once its supervisor is gone.
func sweepAfterSupervisor(ctx context.Context, o GuardOptions) {
	sweep, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The cgroup first: it holds what left the group and cleared its environment.
	inCgroup := 0
	if o.Cgroup != "" && o.Sentinel {
		n, err := killAttemptLeaves(o.Cgroup, o.RunID)
		if err != nil && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "trainwrap guard: %v\n", err)
		}
		inCgroup = n
	} else if o.Cgroup != "" {
		n, err := killCgroupDir(sweep, o.Cgroup, o.RunID)
		if err != nil && o.Stderr != nil {
			fmt.Fprintf(o.Stderr, "trainwrap guard: %v\n", err)
		}
		inCgroup = n
	}
	killed, err := proc.KillAllWithEnv(sweep, rundir.RunIDEnv, o.RunID)
	killed += inCgroup
	if err != nil && o.Stderr != nil {
		fmt.Fprintf(o.Stderr, "trainwrap guard: %v\n", err)
	}
	if killed > 0 && o.Stderr != nil {
		fmt.Fprintf(o.Stderr, "trainwrap guard: supervisor gone; killed %d leftover process(es) of run %s\n", killed, o.RunID)
	}
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// trimGuard makes a guard, which from here on only sleeps until its supervisor is
// gone, as small as a Go process of this binary can be. The guard is the whole
// trainwrap binary re-executed, so start-up (the runtime, every package's init, the
// CLI parser) touched some 14 MB of its text and read-only data; those pages stay
// mapped, and counted in its RSS, though it never runs that code again. They are clean
// pages of the executable, shared with the supervisor in the page cache: dropping
// this process's mappings of them (MADV_DONTNEED) frees nothing of the file and costs
// only a few page faults for the code of the sweep, if it ever runs. The heap gets a
// low GC target and a limit, and what the collector freed goes back to the kernel.
func trimGuard() {
	debug.SetGCPercent(20)
	debug.SetMemoryLimit(4 << 20)
	debug.FreeOSMemory()
	dropCleanExecutablePages()
}

// dropCleanExecutablePages drops this process's mappings of the executable's
// read-only pages (text, read-only data) where the mapping holds no anonymous,
// copied-on-write page: a writable or relocated (RELRO) mapping keeps its contents,
// since DONTNEED on it would lose what was written.
func dropCleanExecutablePages() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	type mapping struct {
		start, end uintptr
		ok         bool
	}
	var maps []mapping
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			// A mapping's header: "start-end perms offset dev inode [path]".
			cur = -1
			lo, hi, found := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if !found || err1 != nil || err2 != nil || len(f) < 6 || f[5] != exe {
				continue
			}
			if perms := f[1]; perms != "r-xp" && perms != "r--p" {
				continue
			}
			maps = append(maps, mapping{start: uintptr(start), end: uintptr(end), ok: true})
			cur = len(maps) - 1
			continue
		}
		if cur >= 0 && len(f) >= 2 && (f[0] == "Anonymous:" || f[0] == "Private_Dirty:") && f[1] != "0" {
			maps[cur].ok = false
		}
	}
	for _, m := range maps {
		if m.ok {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED)
		}
	}
}
