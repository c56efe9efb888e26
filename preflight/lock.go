package preflight

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
	"golang.org/x/sys/unix"
)

// LockCheck looks at the run directory's lock, which a live supervisor holds with
// flock(LOCK_EX). Because the kernel drops a flock when its holder dies, the lock
// itself can only be "stale" in two ways, and this check reports both:
//
//   - nobody holds it, but state.json says a supervisor, now dead, was still running:
//     the supervisor crashed (warn; the fix removes the lock file, after taking the
//     lock itself so that no live process can hold it at that moment);
//   - it is held, but the pid that took it is dead: a leftover process of that
//     supervisor inherited the descriptor (fail; the leftovers check's fix kills it).
//
// A lock held by this process (the supervisor running its own preflight) is ok; one
// held by another live process fails: another trainwrap uses the run directory.
type LockCheck struct {
	Dir rundir.Dir
	// ProcLocks defaults to /proc/locks.
	ProcLocks string
}

// Name is "lock".
func (*LockCheck) Name() string { return "lock" }

// lockState is what the check found.
type lockState struct {
	exists bool
	held   bool
	holder int // pid that took the flock, from /proc/locks; 0 when unknown
}

// inspect opens the lock file (never creating it) and tries to take the flock without
// waiting: success proves nobody holds it.
func (c *LockCheck) inspect() (lockState, error) {
	path := c.Dir.Lock()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return lockState{}, nil
	}
	if err != nil {
		return lockState{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st := lockState{exists: true}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return st, nil
	case !errors.Is(err, unix.EWOULDBLOCK):
		return st, fmt.Errorf("flock %s: %w", path, err)
	}
	st.held = true
	var fi unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fi); err == nil {
		st.holder = flockHolder(c.procLocks(), fi)
	}
	return st, nil
}

func (c *LockCheck) procLocks() string {
	if c.ProcLocks != "" {
		return c.ProcLocks
	}
	return "/proc/locks"
}

// flockHolder finds in /proc/locks the pid that took the FLOCK on the file fi.
// Lines look like "1: FLOCK  ADVISORY  WRITE 10239 fe:00:400209 0 EOF"; waiters
// ("1: -> FLOCK ...") are skipped.
func flockHolder(procLocks string, fi unix.Stat_t) int {
	f, err := os.Open(procLocks)
	if err != nil {
		return 0
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(fi.Dev), unix.Minor(fi.Dev), fi.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" || fs[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil {
			return pid
		}
	}
	return 0
}

// deadSupervisor returns the supervisor recorded in state.json when it is dead and
// the recorded status says it was still working (it did not end cleanly).
func (c *LockCheck) deadSupervisor() (rundir.State, bool) {
	st, err := rundir.ReadState(c.Dir.State())
	if err != nil || st.Supervisor.PID == 0 {
		return st, false
	}
	switch st.Status {
	case rundir.StatusSucceeded, rundir.StatusGaveUp, rundir.StatusStopped:
		return st, false
	}
	id := proc.ID{PID: st.Supervisor.PID, StartTime: st.Supervisor.StartTime}
	return st, !id.Alive()
}

// Run inspects the lock.
func (c *LockCheck) Run(ctx context.Context) Result {
	ls, err := c.inspect()
	if err != nil {
		return Result{Status: Fail, Reason: err.Error()}
	}
	switch {
	case !ls.exists:
		return Result{Status: OK, Value: "free"}
	case !ls.held:
		if st, dead := c.deadSupervisor(); dead {
			return Result{Status: Warn, Value: "stale",
				Reason: fmt.Sprintf("supervisor pid %d died while %s and left its lock file; nobody holds it (--fix removes it)", st.Supervisor.PID, st.Status)}
		}
		return Result{Status: OK, Value: "free"}
	case ls.holder == os.Getpid():
		return Result{Status: OK, Value: "held by this trainwrap"}
	case ls.holder == 0:
		return Result{Status: Fail, Value: "held", Reason: fmt.Sprintf("%s is locked by a process /proc/locks does not name; another trainwrap may use this run dir: wait for it or use another --state-dir", c.Dir.Lock())}
	}
	if holderDead(ls.holder) {
		return Result{Status: Fail, Value: fmt.Sprintf("held (pid %d is dead)", ls.holder),
			Reason: fmt.Sprintf("the lock taken by dead pid %d is still held by a process that inherited it: a leftover of that supervisor (see leftovers; --fix kills the ones proven ours)", ls.holder)}
	}
	return Result{Status: Fail, Value: fmt.Sprintf("held by pid %d", ls.holder),
		Reason: fmt.Sprintf("another trainwrap (pid %d) is using %s; wait for it to end, or use another --state-dir", ls.holder, c.Dir.Path)}
}

// Fix removes a lock file that nobody holds. It takes the flock first and unlinks
// while holding it, so a live supervisor cannot be holding that file at the moment it
// disappears.
func (c *LockCheck) Fix(ctx context.Context) (string, error) {
	if _, dead := c.deadSupervisor(); !dead {
		return "", nil
	}
	path := c.Dir.Lock()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return "", fmt.Errorf("%s is held by a live process; not removing it: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("remove stale lock %s: %w", path, err)
	}
	return "removed stale lock " + path, nil
}

// holderDead reports whether the pid that took the flock is gone. A zombie counts as
// gone: it closed its descriptors on exit, so whoever holds the lock now inherited it.
func holderDead(pid int) bool {
	in, err := proc.Stat(pid)
	return errors.Is(err, proc.ErrGone) || (err == nil && in.Zombie())
}
