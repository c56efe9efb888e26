package shim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// escapee starts a process that clears its environment (no run id) and leaves the
// job's session and group, writes its pid to esc, and waits for it before going on.
const escapee = `env -i setsid sh -c 'echo $$ > esc.tmp; mv esc.tmp esc; exec sleep 300' &
while [ ! -s esc ]; do sleep 0.01; done
`

// needCgroup skips unless this machine delegates a cgroup v2 to us.
func needCgroup(t *testing.T) {
	t.Helper()
	cg, err := newJobCgroup(newRunID())
	if err != nil {
		t.Skipf("no cgroup v2 delegation here: %v", err)
	}
	cg.remove(t.Context())
}

func escapeeID(t *testing.T, s *supervised) proc.ID {
	t.Helper()
	waitLines(t, filepath.Join(s.work, "esc"), 1)
	ids := readPids(t, filepath.Join(s.work, "esc"))
	if len(ids) != 1 {
		t.Fatalf("the escaping process is not running")
	}
	t.Cleanup(func() { proc.Signal(ids[0], syscall.SIGKILL) })
	return ids[0]
}

// With a cgroup of its own, a process that cleared its environment and setsid'ed away
// dies at the job's end like the rest, and trainwrap exits only after it has.
func TestCgroupEndsWhatEscapedTheJob(t *testing.T) {
	needCgroup(t)
	s := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", escapee+`grep '^0::' /proc/self/cgroup; exit 0`)
	id := escapeeID(t, s)
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
	}
	if st := s.state(); !strings.Contains(s.stdout.String(), cgroupPrefix+st.RunID) {
		t.Errorf("the job was not in its own cgroup: %q", s.stdout.String())
	}
	if id.Alive() {
		t.Fatalf("the process that left the job's group and environment outlived trainwrap")
	}
}

// The guard kills the cgroup when the supervisor dies of SIGKILL: the escaped process
// carries no run id, so the environment sweep alone cannot find it.
func TestGuardKillsTheCgroupWhenTheSupervisorDies(t *testing.T) {
	needCgroup(t)
	s := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", escapee+`exec sleep 300`)
	id := escapeeID(t, s)
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.wait(time.Minute)
	assertGone(t, time.Minute, id)
}

// The sentinel ends the job when the supervisor and its guard are SIGKILLed together
// (as a kill of trainwrap's whole process group does): the escaped process carries no
// run id and left the job's group, so only the cgroup holds it. Before the sentinel it
// ran on until the next run on the directory.
func TestSentinelEndsTheJobWhenSupervisorAndGuardDie(t *testing.T) {
	needCgroup(t)
	s, id, st, guard := startEscapedRun(t)
	sentinel := sentinelOf(t, st.RunID)
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil { // it can replace no guard now
		t.Fatal(err)
	}
	proc.Signal(guard, syscall.SIGKILL)
	assertGone(t, time.Minute, guard)
	if !id.Alive() {
		t.Fatal("the escaped process died with the guard alone; the test proves nothing")
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.wait(time.Minute)
	assertGone(t, time.Minute, id, sentinel)
}

// startEscapedRun starts a job whose escapee waits in the job's cgroup, and returns
// the run, the escapee, the state once the child runs, and the guard recorded there.
func startEscapedRun(t *testing.T) (*supervised, proc.ID, rundir.State, proc.ID) {
	t.Helper()
	s := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", escapee+`exec sleep 300`)
	id := escapeeID(t, s)
	st := s.waitChild()
	if st.Guard == nil {
		t.Fatal("no guard in state.json")
	}
	return s, id, st, proc.ID{PID: st.Guard.PID, StartTime: st.Guard.StartTime}
}

// sentinelOf is the sentinel guard of runID, found in its leaf of the job's cgroup
// with a deadline.
func sentinelOf(t *testing.T, runID string) proc.ID {
	t.Helper()
	parent, err := cgroupParent()
	if err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(parent, cgroupPrefix+runID, sentinelLeaf)
	deadline := time.Now().Add(time.Minute)
	for {
		if pids := cgroupPids(leaf, ""); len(pids) == 1 {
			in, err := proc.Stat(pids[0])
			if err != nil {
				t.Fatal(err)
			}
			return proc.ID{PID: in.PID, StartTime: in.StartTime}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sentinel in %s", leaf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A supervisor SIGKILLed together with its guard and sentinel leaves its job's cgroup
// behind; the next trainwrap on the same run directory kills what is in it.
func TestNextRunKillsTheCgroupOfADeadSupervisorAndGuard(t *testing.T) {
	needCgroup(t)
	s, id, st, guard := startEscapedRun(t)
	// The sentinel too, so that nothing of the dead run is left to end its job.
	sentinel := sentinelOf(t, st.RunID)
	s.cmd.Process.Signal(syscall.SIGSTOP) // a stopped supervisor replaces no guard
	proc.Signal(guard, syscall.SIGKILL)
	proc.Signal(sentinel, syscall.SIGKILL)
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.wait(time.Minute)
	assertGone(t, time.Minute, guard, sentinel)
	if !id.Alive() {
		t.Fatal("the escaped process died with the supervisor, guard and sentinel; the test proves nothing")
	}
	next := startSupervisorIn(t, t.TempDir(), testOptions{StateDir: s.dir.Path}, "sh", "-c", "exit 0")
	if code := next.wait(time.Minute); code != 0 {
		t.Fatalf("next run: exit %d\n%s", code, next.stderr.String())
	}
	if id.Alive() {
		t.Fatalf("the next run left the dead run's cgroup alive\n%s", next.stderr.String())
	}
	if !strings.Contains(next.stderr.String(), "in the cgroup of the previous run "+st.RunID) {
		t.Errorf("next run did not say what it killed:\n%s", next.stderr.String())
	}
}

// Without a cgroup (--cgroup off, or no delegation: here a read-only cgroup mount in a
// mount namespace of the supervisor's own) today's sweep still ends the job's group;
// a missing delegation is said once however many attempts, --cgroup off says nothing.
func TestWithoutCgroupTheSweepRemains(t *testing.T) {
	const job = `sleep 300 & echo $! >> pids; grep '^0::' /proc/self/cgroup; exit 3`
	cases := []struct {
		name     string
		opts     testOptions
		readOnly bool
		messages int
	}{
		{"--cgroup off", testOptions{Cgroup: CgroupOff}, false, 0},
		{"no delegation", testOptions{}, true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.StopTimeout, tc.opts.BackoffInitial, tc.opts.MaxRestarts = 2*time.Second, 10*time.Millisecond, 1
			var s *supervised
			if tc.readOnly {
				s = startReadOnlyCgroupSupervisor(t, tc.opts, "sh", "-c", job)
			} else {
				s = startSupervisor(t, tc.opts, "sh", "-c", job)
			}
			if code := s.wait(time.Minute); code != 85 {
				t.Fatalf("exit %d, want 85\n%s", code, s.stderr.String())
			}
			if n := strings.Count(s.stderr.String(), "no cgroup v2 delegation"); n != tc.messages {
				t.Errorf("%d messages about the missing delegation, want %d\n%s", n, tc.messages, s.stderr.String())
			}
			if strings.Contains(s.stdout.String(), cgroupPrefix) {
				t.Errorf("the job ran in a cgroup of its own: %q", s.stdout.String())
			}
			if len(s.records()) != 2 {
				t.Fatalf("%d attempts, want 2", len(s.records()))
			}
			ids := readPids(t, filepath.Join(s.work, "pids"))
			assertGone(t, time.Minute, ids...)
			assertNoRunProcs(t, s.state().RunID)
		})
	}
}

// startReadOnlyCgroupSupervisor starts the supervisor in a mount namespace where every
// cgroup2 mount is read-only: a machine that delegates no cgroup.
func startReadOnlyCgroupSupervisor(t *testing.T, to testOptions, command ...string) *supervised {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Fatal(err)
	}
	var remount []string
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			remount = append(remount, "mount -o remount,bind,ro "+m.MountPoint)
		}
	}
	if len(remount) == 0 {
		t.Skip("no cgroup2 mount: the default path is already the no-delegation one")
	}
	if err := exec.Command("unshare", "-m", "sh", "-c", strings.Join(remount, " && ")).Run(); err != nil {
		t.Skipf("cannot make cgroup2 read-only in a mount namespace here: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrap := filepath.Join(t.TempDir(), "ro-cgroup")
	script := "#!/bin/sh\n" + strings.Join(remount, " && ") + " && exec \"$@\"\n"
	if err := os.WriteFile(wrap, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary as `supervise`, under unshare and the remount.
	to.Wrap = []string{"unshare", "-m", wrap, exe}
	return startSupervisor(t, to, command...)
}

// An attempt whose teardown needed cgroup.kill (a helper in a session of its own that
// ignores SIGTERM) is followed by one that runs: each attempt gets a fresh cgroup, since
// the kernel SIGKILLs whatever is later cloned into a cgroup that was killed.
func TestAttemptAfterACgroupKillRuns(t *testing.T) {
	needCgroup(t)
	script := `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then setsid sh -c 'trap "" TERM; echo $$ > esc.tmp; mv esc.tmp esc; exec sleep 300' &
while [ ! -s esc ]; do sleep 0.01; done; exit 3; fi
grep '^0::' /proc/self/cgroup; echo "attempt $TRAINWRAP_ATTEMPT ran"`
	s := startSupervisor(t, testOptions{StopTimeout: 500 * time.Millisecond, BackoffInitial: 10 * time.Millisecond, MaxRestarts: 2}, "sh", "-c", script)
	id := escapeeID(t, s)
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
	}
	if !strings.Contains(s.stdout.String(), "attempt 2 ran") || !strings.Contains(s.stdout.String(), "/attempt-2\n") {
		t.Errorf("attempt 2 did not run in a cgroup of its own: %q", s.stdout.String())
	}
	if id.Alive() {
		t.Error("the helper that ignored SIGTERM outlived its attempt")
	}
}

// A guard that dies is replaced, and the replacement still kills the job's cgroup when
// the supervisor is SIGKILLed afterwards.
func TestDeadGuardIsReplaced(t *testing.T) {
	needCgroup(t)
	s, id, _, old := startEscapedRun(t)
	proc.Signal(old, syscall.SIGKILL)
	var next proc.ID
	testkit.Eventually(t, time.Minute, "a new guard in state.json", func() bool {
		st, err := rundir.ReadState(s.dir.State())
		if err != nil || st.Guard == nil || st.Guard.PID == old.PID {
			return false
		}
		next = proc.ID{PID: st.Guard.PID, StartTime: st.Guard.StartTime}
		return next.Alive()
	})
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.wait(time.Minute)
	assertGone(t, time.Minute, id)
	assertGone(t, time.Minute, next)
}
