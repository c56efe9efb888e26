package preflight

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
	"golang.org/x/sys/unix"
)

// readOnlyDir returns a directory nobody may write into: a read-only tmpfs for root
// (who passes every permission check), mode 0555 for anyone else.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		d := t.TempDir()
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(d, 0o755) })
		return d
	}
	d := mountTmpfs(t, "size=1m")
	if err := unix.Mount("", d, "", unix.MS_REMOUNT|unix.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	return d
}

func TestDirs(t *testing.T) {
	ro := readOnlyDir(t)
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		dirs      []string
		want      Status
		reason    string
		afterFix  Status
		fixedPart string
	}{
		{"all there", []string{root}, OK, "", OK, ""},
		{"missing", []string{root, filepath.Join(root, "a", "logs")}, Warn, "missing: " + filepath.Join(root, "a", "logs"), OK, "created " + filepath.Join(root, "a", "logs")},
		{"read-only", []string{ro}, Fail, ro + " is not writable", Fail, ""},
		{"a file", []string{file}, Fail, "is not a directory", Fail, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &DirsCheck{Dirs: tc.dirs}
			wantResult(t, runCheck(t, c), tc.want, tc.reason)
			rep := runChecks([]Check{c}, RunOptions{Fix: true})
			wantResult(t, rep.Results[0], tc.afterFix)
			if !strings.Contains(rep.Results[0].Fixed, tc.fixedPart) {
				t.Errorf("Fixed %q lacks %q", rep.Results[0].Fixed, tc.fixedPart)
			}
		})
	}
}

func TestCorruptState(t *testing.T) {
	t.Parallel()
	dir := rundir.New(t.TempDir())
	c := &StateCheck{Dir: dir}
	wantResult(t, runCheck(t, c), OK)

	if err := rundir.WriteState(dir.State(), rundir.State{RunID: "r1", Attempt: 2, Status: rundir.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, c)
	wantResult(t, r, OK)
	if r.Value != "run r1, attempt 2, running" {
		t.Errorf("value %q", r.Value)
	}

	corrupt := []byte(`{"run_id": "r1", "attempt": 2, "sta`) // cut short by a crash
	if err := os.WriteFile(dir.State(), corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	wantResult(t, runCheck(t, c), Fail, "state.json is corrupt")

	rep := runChecks([]Check{c}, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], OK)
	moved, _ := filepath.Glob(dir.State() + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt state moved to %v, want one state.json.corrupt-<time>", moved)
	}
	if rep.Results[0].Fixed != "moved corrupt state.json to "+moved[0] {
		t.Errorf("Fixed %q", rep.Results[0].Fixed)
	}
	if b, err := os.ReadFile(moved[0]); err != nil || !bytes.Equal(b, corrupt) {
		t.Errorf("moved file holds %q, %v; want the corrupt bytes kept", b, err)
	}
}

// deadProc returns the identity of a process that has exited.
func deadProc(t *testing.T) proc.ID {
	t.Helper()
	c := startProc(t, nil, "sleep", "30")
	id, err := proc.Identify(c.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Process.Kill()
	if !c.exited(time.Minute) {
		t.Fatal("sleep did not die")
	}
	return id
}

func TestLock(t *testing.T) {
	t.Parallel()
	dead := deadProc(t)
	write := func(t *testing.T, dir rundir.Dir, status string) {
		t.Helper()
		st := rundir.State{RunID: "r-lock", Status: status, Supervisor: rundir.Proc{PID: dead.PID, StartTime: dead.StartTime}}
		if err := rundir.WriteState(dir.State(), st); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir.Lock(), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("no lock", func(t *testing.T) {
		t.Parallel()
		wantResult(t, runCheck(t, &LockCheck{Dir: rundir.New(t.TempDir())}), OK)
	})
	t.Run("left after a clean end", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		write(t, dir, rundir.StatusSucceeded)
		r := runCheck(t, &LockCheck{Dir: dir})
		wantResult(t, r, OK)
		if r.Value != "free" {
			t.Errorf("value %q", r.Value)
		}
	})
	t.Run("stale from a dead supervisor", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		write(t, dir, rundir.StatusRunning)
		c := &LockCheck{Dir: dir}
		wantResult(t, runCheck(t, c), Warn, "supervisor pid", "died while running")
		rep := runChecks([]Check{c}, RunOptions{Fix: true})
		wantResult(t, rep.Results[0], OK)
		if rep.Results[0].Fixed != "removed stale lock "+dir.Lock() {
			t.Errorf("Fixed %q", rep.Results[0].Fixed)
		}
		if _, err := os.Stat(dir.Lock()); !os.IsNotExist(err) {
			t.Errorf("lock file still there: %v", err)
		}
	})
	t.Run("held by another live process", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		write(t, dir, rundir.StatusRunning)
		holder := startProc(t, nil, "flock", dir.Lock(), "sleep", "3600")
		waitFor(t, func() bool { return lockHeld(dir.Lock()) })
		c := &LockCheck{Dir: dir}
		r := runCheck(t, c)
		wantResult(t, r, Fail, "another trainwrap (pid")
		rep := runChecks([]Check{c}, RunOptions{Fix: true})
		if _, err := os.Stat(dir.Lock()); err != nil {
			t.Errorf("fix touched a lock held by live pid %d: %v", holder.cmd.Process.Pid, err)
		}
		wantResult(t, rep.Results[0], Fail)
	})
	t.Run("held through a descriptor its dead taker passed on", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		write(t, dir, rundir.StatusRunning)
		startInheritedLock(t, nil, dir.Lock())
		wantResult(t, runCheck(t, &LockCheck{Dir: dir}), Fail, "is still held by a process that inherited it")
	})
	t.Run("held through a descriptor whose taker is an unreaped zombie", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		write(t, dir, rundir.StatusRunning)
		// flock(1) runs in the background and the shell becomes sleep, which never
		// reaps it: the pid /proc/locks names stays a zombie while sleep holds the lock.
		holder := startProc(t, nil, "sh", "-c", `exec 9>"$0"; flock -x 9 & exec sleep 3600`, dir.Lock())
		var fi unix.Stat_t
		waitFor(t, func() bool {
			if !lockHeld(dir.Lock()) || unix.Stat(dir.Lock(), &fi) != nil {
				return false
			}
			taker := flockHolder("/proc/locks", fi)
			in, err := proc.Stat(taker)
			return taker != 0 && taker != holder.cmd.Process.Pid && err == nil && in.Zombie()
		})
		wantResult(t, runCheck(t, &LockCheck{Dir: dir}), Fail, "is still held by a process that inherited it")
	})
	t.Run("held by this process", func(t *testing.T) {
		t.Parallel()
		dir := rundir.New(t.TempDir())
		f, err := os.OpenFile(dir.Lock(), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, &LockCheck{Dir: dir})
		wantResult(t, r, OK)
		if r.Value != "held by this trainwrap" {
			t.Errorf("value %q", r.Value)
		}
	})
}

// lockHeld reports whether someone holds the flock on path.
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// startInheritedLock starts a process that holds the flock on path through a
// descriptor whose taker is dead: flock(1) takes the lock on the shell's fd 9 and
// exits, and the shell becomes sleep. It returns once the exec happened, since the
// shell execs only after it reaped flock(1): waiting only for the lock to be held
// raced flock(1)'s exit, and CI saw the taker still alive.
func startInheritedLock(t *testing.T, env []string, path string) *child {
	t.Helper()
	c := startProc(t, env, "sh", "-c", `exec 9>"$0"; flock -x 9; exec sleep 3600`, path)
	waitFor(t, func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.cmd.Process.Pid))
		return err == nil && string(comm) == "sleep\n"
	})
	if !lockHeld(path) {
		t.Fatalf("pid %d does not hold the lock on %s", c.cmd.Process.Pid, path)
	}
	return c
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeftovers starts one process carrying the earlier run's id and one without it;
// only the first is reported and killed by --fix.
func TestLeftovers(t *testing.T) {
	t.Parallel()
	dir := rundir.New(t.TempDir())
	runID := "test-leftovers-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")
	dead := deadProc(t)
	if err := rundir.WriteState(dir.State(), rundir.State{RunID: runID, Status: rundir.StatusRunning, Supervisor: rundir.Proc{PID: dead.PID, StartTime: dead.StartTime}}); err != nil {
		t.Fatal(err)
	}
	ours := startProc(t, []string{rundir.RunIDEnv + "=" + runID}, "sleep", "3600")
	other := startProc(t, []string{rundir.RunIDEnv + "=" + runID + "-not"}, "sleep", "3600")
	stranger := startProc(t, nil, "sleep", "3600")

	c := &LeftoversCheck{Dir: dir}
	r := runCheck(t, c)
	wantResult(t, r, Fail, "processes of run "+runID+" outlived supervisor")
	if r.Value != "1 processes" || len(r.Details) != 1 || !strings.Contains(r.Details[0], "pid "+itoa(ours.cmd.Process.Pid)) {
		t.Errorf("value %q, details %q: want only pid %d", r.Value, r.Details, ours.cmd.Process.Pid)
	}

	rep := runChecks([]Check{c}, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], OK)
	if !strings.Contains(rep.Results[0].Fixed, "killed leftover processes of run "+runID+": "+itoa(ours.cmd.Process.Pid)) {
		t.Errorf("Fixed %q", rep.Results[0].Fixed)
	}
	if !ours.exited(time.Minute) {
		t.Error("the leftover with our run id was not killed")
	}
	if other.exited(50*time.Millisecond) || stranger.exited(0) {
		t.Error("--fix killed a process without our run id")
	}
}

// TestLeftoversOfALiveSupervisor: the processes of a supervisor that is alive are its
// job, not leftovers.
func TestLeftoversOfALiveSupervisor(t *testing.T) {
	t.Parallel()
	dir := rundir.New(t.TempDir())
	self, err := proc.Self()
	if err != nil {
		t.Fatal(err)
	}
	runID := "test-live-" + time.Now().Format("150405.000000000")
	if err := rundir.WriteState(dir.State(), rundir.State{RunID: runID, Status: rundir.StatusRunning, Supervisor: rundir.Proc{PID: self.PID, StartTime: self.StartTime}}); err != nil {
		t.Fatal(err)
	}
	job := startProc(t, []string{rundir.RunIDEnv + "=" + runID}, "sleep", "3600")
	rep := runChecks([]Check{&LeftoversCheck{Dir: dir}}, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], OK)
	if job.exited(50 * time.Millisecond) {
		t.Error("--fix killed the job of a live supervisor")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLeftoverHoldingTheLock: the job of a dead supervisor inherited the lock's
// descriptor. --fix kills it (it carries the run id), which releases the lock, and
// then removes the stale lock file.
func TestLeftoverHoldingTheLock(t *testing.T) {
	t.Parallel()
	dir := rundir.New(t.TempDir())
	runID := "test-lock-leftover-" + time.Now().Format("150405.000000000")
	dead := deadProc(t)
	if err := rundir.WriteState(dir.State(), rundir.State{RunID: runID, Status: rundir.StatusRunning, Supervisor: rundir.Proc{PID: dead.PID, StartTime: dead.StartTime}}); err != nil {
		t.Fatal(err)
	}
	job := startInheritedLock(t, []string{rundir.RunIDEnv + "=" + runID}, dir.Lock())

	checks := []Check{&LeftoversCheck{Dir: dir}, &LockCheck{Dir: dir}}
	before := runChecks(checks, RunOptions{})
	wantResult(t, before.Results[0], Fail, "outlived supervisor")
	wantResult(t, before.Results[1], Fail, "inherited it")

	after := runChecks(checks, RunOptions{Fix: true})
	wantResult(t, after.Results[0], OK)
	wantResult(t, after.Results[1], OK)
	if !job.exited(time.Minute) {
		t.Error("the leftover holding the lock is still alive")
	}
	if _, err := os.Stat(dir.Lock()); !os.IsNotExist(err) {
		t.Errorf("stale lock file still there: %v", err)
	}
}
