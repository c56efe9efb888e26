package chaos

import (
	"io"
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

// startProc starts argv with extra env in a session of its own and kills it at cleanup.
func startProc(t *testing.T, env []string, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func procState(pid int) string {
	info, err := proc.Stat(pid)
	if err != nil {
		return "gone"
	}
	return info.State
}

// writeJobState records this test process as the supervisor and leader as its job, as
// a live trainwrap would.
func writeJobState(t *testing.T, dir, runID string, leader int) {
	t.Helper()
	self, err := proc.Self()
	if err != nil {
		t.Fatal(err)
	}
	st := rundir.State{RunID: runID, Supervisor: rundir.Proc{PID: self.PID, StartTime: self.StartTime}, Status: rundir.StatusRunning}
	if leader > 0 {
		id, err := proc.Identify(leader)
		if err != nil {
			t.Fatal(err)
		}
		st.Child = &rundir.Proc{PID: id.PID, PGID: id.PID, StartTime: id.StartTime}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := rundir.WriteState(filepath.Join(dir, rundir.StateFile), st); err != nil {
		t.Fatal(err)
	}
}

func TestInjectSignalsOnlyTheJob(t *testing.T) {
	runID := "inject-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
	env := []string{rundir.RunIDEnv + "=" + runID}
	// The leader's own child, a process that left its tree but carries the run id, and
	// a bystander with neither.
	leader := startProc(t, env, "sh", "-c", "sleep 60 & exec sleep 61")
	away := startProc(t, env, "sleep", "62")
	bystander := startProc(t, nil, "sleep", "63")
	var grandchild int
	waitFor(t, "the leader's child", func() bool {
		ds, _ := proc.Descendants(leader.Process.Pid)
		if len(ds) == 1 && ds[0].Comm == "sleep" {
			grandchild = ds[0].PID
			return true
		}
		return false
	})
	waitFor(t, "the leader's exec", func() bool {
		info, err := proc.Stat(leader.Process.Pid)
		return err == nil && info.Comm == "sleep"
	})

	dir := t.TempDir()
	writeJobState(t, dir, runID, leader.Process.Pid)
	got, err := Inject(dir, InjectHang, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for _, p := range got {
		pids[p.PID] = true
	}
	want := []int{leader.Process.Pid, grandchild, away.Process.Pid}
	for _, pid := range want {
		if !pids[pid] {
			t.Errorf("pid %d not signalled; got %v", pid, got)
		}
		waitFor(t, "SIGSTOP of the job", func() bool { return procState(pid) == "T" })
	}
	if len(got) != len(want) {
		t.Errorf("signalled %d processes, want %d: %v", len(got), len(want), got)
	}
	if s := procState(bystander.Process.Pid); s == "T" {
		t.Errorf("the bystander was stopped")
	}
	// kill and term hit the leader only.
	for _, pid := range want {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	got, err = Inject(dir, InjectTerm, io.Discard)
	if err != nil || len(got) != 1 || !got[0].Leader || got[0].PID != leader.Process.Pid {
		t.Fatalf("term: %v, %v; want the leader alone", got, err)
	}
	if err := leader.Wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("leader after term: %v, want killed by SIGTERM", err)
	}
	if procState(away.Process.Pid) == "gone" || procState(bystander.Process.Pid) == "gone" {
		t.Error("term reached beyond the leader")
	}
}

func TestInjectRefuses(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		mode  string
		err   string
	}{
		{"no state", func(*testing.T, string) {}, InjectHang, "no job recorded in"},
		{"unknown mode", func(*testing.T, string) {}, "nap", `unknown mode "nap"; use one of hang, kill, term`},
		{"no job running", func(t *testing.T, dir string) { writeJobState(t, dir, "r1", 0) }, InjectKill, "has no job running now (status running)"},
		{"dead supervisor", func(t *testing.T, dir string) {
			st := rundir.State{RunID: "r2", Supervisor: rundir.Proc{PID: dead.Process.Pid, StartTime: 1}}
			if err := rundir.WriteState(filepath.Join(dir, rundir.StateFile), st); err != nil {
				t.Fatal(err)
			}
		}, InjectHang, "is not running; nothing to perturb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, err := Inject(dir, tt.mode, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}
