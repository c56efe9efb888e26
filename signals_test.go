package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// A signal that arrives while trainwrap still reads its flags and config (SLURM's USR1,
// a scheduler's TERM, the moment a step starts) neither kills it nor is lost: USR1 and
// USR2 wait for the supervisor and are no failure, a TERM stops the job trainwrap then
// starts (exit 143) instead of killing trainwrap before it has a job. The config file
// is a FIFO, so the signal is sent while trainwrap is provably inside config loading,
// before the supervisor exists: ordering, not timing. (Without the relay from main,
// the TERM case dies of SIGTERM; a USR1 in the window before the Go runtime starts is
// what main's C constructor covers, and no ordering can pin that window down.)
func TestSignalDuringStartupDoesNotKill(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		sig  syscall.Signal
		job  string
		want int
		runs int
	}{
		{"USR1", syscall.SIGUSR1, "echo ok", 0, 20},
		{"USR2", syscall.SIGUSR2, "echo ok", 0, 3},
		{"TERM stops the job", syscall.SIGTERM, "echo ok; exec sleep 300", 143, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < tc.runs; i++ {
				work := t.TempDir()
				// Not trainwrap.json in the working directory: the guard would read it too.
				fifo := filepath.Join(work, "config.fifo")
				dir := filepath.Join(work, "job")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
				cmd := &exec.Cmd{
					Path: exe,
					Args: []string{"trainwrap", "run", "--config", fifo, "--state-dir", filepath.Join(work, ".trainwrap"),
						"--skip-preflight", "--pty", "never", "--sample-interval", "0", "--stop-timeout", "5s", "--", "sh", "-c", tc.job},
					Dir:         dir,
					WaitDelay:   10 * time.Second,
					Stdout:      &testkit.Buffer{},
					SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
				}
				stderr := &testkit.Buffer{}
				cmd.Stderr = stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				t.Cleanup(func() {
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				})
				// A non-blocking open for writing succeeds only once trainwrap has the
				// FIFO open for reading: it is then blocked in loading the config.
				var w *os.File
				testkit.Eventually(t, time.Minute, "trainwrap reading its config", func() bool {
					f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
					if err != nil {
						if !errors.Is(err, syscall.ENXIO) {
							t.Fatal(err)
						}
						return false
					}
					w = f
					return true
				})
				if err := cmd.Process.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
				if _, err := w.WriteString("{}"); err != nil {
					t.Fatal(err)
				}
				w.Close()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					t.Fatalf("run %d: trainwrap still running after 30s\n%s", i, stderr.String())
				}
				ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if ws.Signaled() {
					t.Fatalf("run %d: trainwrap died of %v sent during start-up\n%s", i, ws.Signal(), stderr.String())
				}
				if code := ws.ExitStatus(); code != tc.want {
					t.Fatalf("run %d: exit %d, want %d\n%s", i, code, tc.want, stderr.String())
				}
			}
		})
	}
}
