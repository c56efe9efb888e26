package shim

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// A log disk that fills up mid-run does not stop the job: its output still reaches the
// terminal, the exit is still right, and the failures are counted and recorded.
func TestLogDiskFullMidRunKeepsTheJobRunning(t *testing.T) {
	work := t.TempDir()
	stateDir := filepath.Join(work, ".trainwrap")
	logs := filepath.Join(stateDir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", logs).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", logs).Run() })
	s := startSupervisorIn(t, work, testOptions{StateDir: stateDir}, "sh", "-c", `i=0; while [ $i -lt 4000 ]; do echo "step $i loss 0.5 padding padding padding padding padding"; i=$((i+1)); done; exit 0`)
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
	}
	if n := strings.Count(s.stdout.String(), "\n"); n != 4000 {
		t.Errorf("terminal got %d lines, want 4000", n)
	}
	if !strings.Contains(s.stderr.String(), "cannot write the job log") {
		t.Errorf("log failure not reported on stderr: %q", s.stderr.String())
	}
	st := s.state()
	recs := s.records()
	if st.LogWriteErrors == 0 || len(recs) != 1 || recs[0].LogWriteErrors == 0 {
		t.Errorf("log write errors not recorded: state %d, records %+v", st.LogWriteErrors, recs)
	}
}

// As PID 1 (a container's init) trainwrap reaps orphans it never started, forwards
// SIGTERM, and exits only after every descendant has.
func TestPID1ReapsForwardsAndWaits(t *testing.T) {
	testkit.NeedTool(t, "unshare", "util-linux")
	if err := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("unshare --pid not permitted here: %v", err)
	}
	work := t.TempDir()
	exe, _ := os.Executable()
	to, _ := json.Marshal(testOptions{StateDir: filepath.Join(work, ".trainwrap"), StopTimeout: 5 * time.Second})
	script := `(exec sleep 0.7 &)
sh -c 'trap "sleep 0.5; echo finished > trap-done; exit 0" TERM; while :; do sleep 0.05; done' &
echo started; while :; do sleep 0.05; done`
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", exe, "supervise", "sh", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "SHIM_TEST_OPTIONS="+string(to))
	stdout, stderr := &testkit.Buffer{}, &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	// The supervisor is unshare's child on the host side.
	var sup proc.Info
	testkit.Eventually(t, time.Minute, "the supervisor under unshare", func() bool {
		ds, _ := proc.Descendants(cmd.Process.Pid)
		for _, d := range ds {
			if d.PPID == cmd.Process.Pid {
				sup = d
				return true
			}
		}
		return false
	})
	// The double-forked sleeper is re-parented to trainwrap-as-init, exits, and is
	// reaped: it vanishes instead of staying a zombie.
	var orphan proc.Info
	testkit.Eventually(t, time.Minute, "the orphan re-parented to PID 1", func() bool {
		all, _ := proc.All()
		for _, in := range all {
			if in.PPID == sup.PID && in.Comm == "sleep" {
				orphan = in
				return true
			}
		}
		return false
	})
	testkit.Eventually(t, time.Minute, "the orphan reaped", func() bool {
		_, err := proc.Stat(orphan.PID)
		if err != nil {
			return true
		}
		in, _ := proc.Stat(orphan.PID)
		return in.StartTime != orphan.StartTime
	})
	testkit.Eventually(t, time.Minute, "the job to start", func() bool { return strings.Contains(stdout.String(), "started") })
	if err := syscall.Kill(sup.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("trainwrap as PID 1 did not exit after SIGTERM\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("exit %d, want 143\n%s", code, stderr.String())
	}
	if b, err := os.ReadFile(filepath.Join(work, "trap-done")); err != nil || !bytes.Contains(b, []byte("finished")) {
		t.Errorf("PID 1 exited before a descendant finished its SIGTERM handler (%v)", err)
	}
}

// Under a pty the job sees a terminal of our terminal's size, and follows its resizes.
func TestPtyGivesTheJobATerminal(t *testing.T) {
	work := t.TempDir()
	exe, _ := os.Executable()
	to, _ := json.Marshal(testOptions{StateDir: filepath.Join(work, ".trainwrap"), Pty: string(PtyAuto), StopTimeout: 2 * time.Second})
	cmd := exec.Command(exe, "supervise", "sh", "-c", `trap 'echo "size $(stty size)"' WINCH; test -t 1 && echo "tty yes"; echo "size $(stty size)"; echo ready; while :; do sleep 0.05; done`)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "SHIM_TEST_OPTIONS="+string(to))
	// trainwrap itself runs on a terminal, so --pty auto chooses a pty.
	outer, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	out := &testkit.Buffer{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := outer.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if st, err := rundir.ReadState(filepath.Join(work, ".trainwrap", "state.json")); err == nil {
			sweep(st.RunID)
		}
	})
	testkit.Eventually(t, time.Minute, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	if s := out.String(); !strings.Contains(s, "tty yes") || !strings.Contains(s, "size 40 120") {
		t.Fatalf("job output %q: want a terminal of 40x120", s)
	}
	if err := pty.Setsize(outer, &pty.Winsize{Rows: 50, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, "the resize to reach the job", func() bool { return strings.Contains(out.String(), "size 50 100") })
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("supervisor did not stop")
	}
}
