package proc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startSleeper starts `sleep` with extra environment and reaps it at cleanup.
func startSleeper(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestIdentityAndSignal(t *testing.T) {
	cmd := startSleeper(t)
	id, err := Identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if id.StartTime == 0 || !id.Alive() {
		t.Fatalf("identity %v: want a live process with a start time", id)
	}
	// The same pid with another start time is another process: never signalled.
	other := ID{PID: id.PID, StartTime: id.StartTime + 1}
	if other.Alive() {
		t.Fatal("a wrong start time counts as alive")
	}
	if err := Signal(other, syscall.SIGKILL); !errors.Is(err, ErrGone) {
		t.Fatalf("Signal with a wrong start time: %v, want ErrGone", err)
	}
	if !id.Alive() {
		t.Fatal("the process died from a signal meant for another")
	}
	if err := Signal(id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if id.Alive() {
		t.Fatal("alive after SIGKILL and reaping")
	}
	if err := Signal(id, syscall.SIGKILL); !errors.Is(err, ErrGone) {
		t.Fatalf("Signal to a dead process: %v, want ErrGone", err)
	}
}

func TestWithEnvAndSignalIfEnv(t *testing.T) {
	ours := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-1")
	theirs := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-2")
	found, err := WithEnv("TRAINWRAP_RUN_ID", "proc-test-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].PID != ours.Process.Pid {
		t.Fatalf("WithEnv found %+v, want only pid %d", found, ours.Process.Pid)
	}
	tid, _ := Identify(theirs.Process.Pid)
	if err := SignalIfEnv(tid, "TRAINWRAP_RUN_ID", "proc-test-1", syscall.SIGKILL); err == nil {
		t.Fatal("SignalIfEnv signalled a process without the run id")
	}
	if !tid.Alive() {
		t.Fatal("the other run's process died")
	}
	if err := SignalIfEnv(found[0].ID, "TRAINWRAP_RUN_ID", "proc-test-1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ours.Wait()
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds, err := Descendants(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 2 {
			for _, d := range ds {
				if d.PPID != cmd.Process.Pid || d.Comm != "sleep" {
					t.Fatalf("descendant %+v: want a sleep whose parent is %d", d, cmd.Process.Pid)
				}
				Signal(d.ID, syscall.SIGKILL)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descendants %+v, want 2 sleeps", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKillAllWithEnv(t *testing.T) {
	a := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-3")
	b := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-3")
	other := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-4")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Reap them as they die, as their parent would.
	done := make(chan struct{})
	go func() { a.Wait(); b.Wait(); close(done) }()
	n, err := KillAllWithEnv(ctx, "TRAINWRAP_RUN_ID", "proc-test-3")
	if err != nil || n != 2 {
		t.Fatalf("KillAllWithEnv = %d, %v; want 2 killed", n, err)
	}
	<-done
	if oid, err := Identify(other.Process.Pid); err != nil || !oid.Alive() {
		t.Fatal("a process of another run was killed")
	}
}
