package shim

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// supervised is a supervisor started as a real process from the test binary.
type supervised struct {
	t      *testing.T
	cmd    *exec.Cmd
	work   string
	dir    rundir.Dir
	stdout *testkit.Buffer
	stderr *testkit.Buffer
	done   chan struct{}
	code   int
}

// startSupervisor starts `<test binary> supervise CMD...` in a fresh work dir.
func startSupervisor(t *testing.T, to testOptions, command ...string) *supervised {
	t.Helper()
	work := t.TempDir()
	if to.StateDir == "" {
		to.StateDir = filepath.Join(work, ".trainwrap")
	}
	return startSupervisorIn(t, work, to, command...)
}

func startSupervisorIn(t *testing.T, work string, to testOptions, command ...string) *supervised {
	t.Helper()
	return startSupervisorTo(t, work, to, nil, command...)
}

// startSupervisorTo is startSupervisorIn with the supervisor's stdout on stdout
// instead of s.stdout, when stdout is not nil: a pipe the test never reads, say.
func startSupervisorTo(t *testing.T, work string, to testOptions, stdout *os.File, command ...string) *supervised {
	t.Helper()
	b, err := json.Marshal(to)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &supervised{t: t, work: work, dir: rundir.New(to.StateDir), stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(exe, append([]string{"supervise"}, command...)...)
	if len(to.Wrap) > 0 {
		s.cmd = exec.Command(to.Wrap[0], append(append(to.Wrap[1:len(to.Wrap):len(to.Wrap)], "supervise"), command...)...)
	}
	s.cmd.Dir = work
	s.cmd.Env = append(os.Environ(), "SHIM_TEST_OPTIONS="+string(b))
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if stdout != nil {
		s.cmd.Stdout = stdout
	}
	// Its own group, so a signal test cannot hit the test binary.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		s.code = s.cmd.ProcessState.ExitCode()
		if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			s.code = 128 + int(ws.Signal())
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
		// Whatever a failed test left behind: kill what carries its run id.
		if st, err := rundir.ReadState(s.dir.State()); err == nil && st.RunID != "" {
			sweep(st.RunID)
		}
	})
	return s
}

func sweep(runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	proc.KillAllWithEnv(ctx, rundir.RunIDEnv, runID)
}

// wait waits for the supervisor to exit and returns its exit code.
func (s *supervised) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(timeout):
		s.t.Fatalf("supervisor still running after %s\nstderr:\n%s", timeout, s.stderr.String())
		return -1
	}
}

// state waits for state.json to exist and returns it.
func (s *supervised) state() rundir.State {
	s.t.Helper()
	var st rundir.State
	testkit.Eventually(s.t, time.Minute, "state.json", func() bool {
		var err error
		st, err = rundir.ReadState(s.dir.State())
		return err == nil
	})
	return st
}

// waitChild waits until the state says a child runs, and returns its identity.
func (s *supervised) waitChild() rundir.State {
	s.t.Helper()
	var st rundir.State
	testkit.Eventually(s.t, time.Minute, "a running child in state.json", func() bool {
		var err error
		st, err = rundir.ReadState(s.dir.State())
		return err == nil && st.Child != nil && st.Status == rundir.StatusRunning
	})
	return st
}

func (s *supervised) records() []rundir.Record {
	s.t.Helper()
	recs, torn, err := rundir.ReadRecords(s.dir.Runs())
	if err != nil {
		s.t.Fatal(err)
	}
	if w := torn.Warning(); w != "" {
		s.t.Fatalf("the supervisor tore its own record: %s", w)
	}
	return recs
}

func (s *supervised) log() string {
	b, _ := os.ReadFile(s.dir.TrainLog())
	return string(b)
}

// readPids reads a file of pids, one per line, written by a job script.
func readPids(t *testing.T, path string) []proc.ID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []proc.ID
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		id, err := proc.Identify(pid)
		if err != nil {
			continue // already gone
		}
		out = append(out, id)
	}
	return out
}

// waitLines waits until path holds at least n whitespace-separated fields.
func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	testkit.Eventually(t, time.Minute, path, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && len(strings.Fields(string(b))) >= n
	})
}

// assertGone fails unless every process named is dead within timeout.
func assertGone(t *testing.T, timeout time.Duration, ids ...proc.ID) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var alive []proc.ID
		for _, id := range ids {
			if id.Alive() {
				alive = append(alive, id)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, id := range alive {
				proc.Signal(id, syscall.SIGKILL)
			}
			t.Fatalf("still alive after %s: %v", timeout, alive)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertNoRunProcs fails when a process carrying the run id is alive.
func assertNoRunProcs(t *testing.T, runID string) {
	t.Helper()
	left, err := proc.WithEnv(rundir.RunIDEnv, runID)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		sweep(runID)
		t.Fatalf("processes of run %s left behind: %+v", runID, left)
	}
}
