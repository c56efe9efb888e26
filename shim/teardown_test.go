package shim

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// A grandchild whose parent exited (a double fork) is re-parented to the supervisor,
// a subreaper, and the attempt's teardown finds it by walking the supervisor's own
// tree: it is dead before the next attempt starts, with or without a cgroup, and the
// run's last sweep finds nothing left to kill.
func TestTeardownEndsADoubleForkedGrandchild(t *testing.T) {
	if !proc.ChildrenSupported() {
		t.Skip("no /proc/PID/task/TID/children here: teardown scans every process instead")
	}
	// Attempt 1 double-forks a sleep and fails; attempt 2 reports the sleep's state
	// from /proc (a zombie, or no entry, is dead) and succeeds.
	const job = `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then
  (sleep 300 & echo $! > gc.tmp; mv gc.tmp gc)
  exit 3
fi
st=$(cut -d' ' -f3 /proc/$(cat gc)/stat 2>/dev/null)
case "$st" in ""|Z) echo "grandchild: dead" ;; *) echo "grandchild: alive ($st)" ;; esac
`
	for _, cg := range []string{CgroupOff, CgroupAuto} {
		t.Run("cgroup "+cg, func(t *testing.T) {
			s := startSupervisor(t, testOptions{Cgroup: cg, StopTimeout: 2 * time.Second, BackoffInitial: 10 * time.Millisecond, MaxRestarts: 1}, "sh", "-c", job)
			if code := s.wait(time.Minute); code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
			}
			ids := readPids(t, filepath.Join(s.work, "gc"))
			if !strings.Contains(s.stdout.String(), "grandchild: dead") {
				assertGone(t, time.Minute, ids...)
				t.Fatalf("the double-forked grandchild outlived its attempt: %q", s.stdout.String())
			}
			if strings.Contains(s.stderr.String(), "left its process tree") {
				t.Errorf("the last sweep had to kill a process the teardown missed:\n%s", s.stderr.String())
			}
			assertNoRunProcs(t, s.state().RunID)
		})
	}
}

// A process that carries the run id but is no descendant of the supervisor (here the
// test's own child) is beyond the tree walk; the run's last sweep kills it, proven by
// its environment, and leaves a process of another run alone.
func TestLastSweepKillsWhatLeftTheTree(t *testing.T) {
	s := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", `while [ ! -e go ]; do sleep 0.01; done; echo done`)
	st := s.waitChild()
	start := func(runID string) *exec.Cmd {
		cmd := exec.Command("sleep", "300")
		cmd.Env = append(os.Environ(), rundir.RunIDEnv+"="+runID)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	ours := start(st.RunID)
	other := start(st.RunID + "-other")
	waited := make(chan error, 1)
	go func() { waited <- ours.Wait() }()
	if err := os.WriteFile(filepath.Join(s.work, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
	}
	select {
	case err := <-waited:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the process with the run id ended with %v, want SIGKILL", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the process with the run id outlived the run")
	}
	if !strings.Contains(s.stderr.String(), "left its process tree") {
		t.Errorf("no message about the process killed by the last sweep:\n%s", s.stderr.String())
	}
	if id, err := proc.Identify(other.Process.Pid); err != nil || !id.Alive() {
		t.Fatal("the last sweep killed a process of another run")
	}
}
