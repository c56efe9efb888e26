package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// A crowd of idle keep-alive clients of the status page must not use up the
// supervisor's descriptors: under a 64-descriptor limit, with 200 of them connected,
// the job's second attempt still starts. (Before the server had a connection cap and
// an idle timeout, each of them held a descriptor for ever and the restart failed
// with "too many open files".)
func TestRestartUnderLowFDLimitWithIdleStatusClients(t *testing.T) {
	const limit, clients = 64, 200
	work := t.TempDir()
	fifo := filepath.Join(work, "release")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	job := `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then read x < release; exit 1; fi; echo attempt two started; exit 0`
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec trainwrap --state-dir sd --pty never --skip-preflight --metrics-addr 127.0.0.1:0 --backoff-initial 10ms -- sh -c '%s'`, limit, job))
	cmd.Dir = work
	var stdout, stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The guard and the job hold copies of the output pipes: Wait returns soon after
	// trainwrap does, whatever they do.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if st, err := rundir.ReadState(filepath.Join(work, "sd", rundir.StateFile)); err == nil && st.RunID != "" {
			proc.KillAllWithEnv(t.Context(), rundir.RunIDEnv, st.RunID)
		}
	})

	addrRE := regexp.MustCompile(`status page at http://([0-9.:]+)/`)
	var addr string
	testkit.Eventually(t, time.Minute, "the status page address on stderr", func() bool {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})

	// The first attempt runs (waiting on the fifo) before the crowd arrives.
	testkit.Eventually(t, time.Minute, "the first attempt running", func() bool {
		st, err := rundir.ReadState(filepath.Join(work, "sd", rundir.StateFile))
		return err == nil && st.Status == rundir.StatusRunning && st.Child != nil
	})

	// The crowd: each sends one keep-alive request and then idles.
	var answered atomic.Int64
	var err error
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatalf("client %d: %v", i+1, err)
		}
		go func() {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				io.Copy(io.Discard, resp.Body)
				answered.Add(1)
			}
		}()
	}
	// The server has let in all it will at once (8, an eighth of the limit) when that
	// many are answered; only then does the first attempt end.
	testkit.Eventually(t, time.Minute, "clients answered by the status server", func() bool { return answered.Load() >= limit/8 })
	// Non-blocking, so that a job that is not reading fails the test instead of
	// hanging it.
	var f *os.File
	testkit.Eventually(t, time.Minute, "the first attempt reading the fifo", func() bool {
		f, err = os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		return err == nil
	})
	f.WriteString("go\n")
	f.Close()

	select {
	case <-done:
		if waitErr != nil || !strings.Contains(stdout.String(), "attempt two started") {
			t.Fatalf("trainwrap: %v; the second attempt did not start\nstdout:\n%s\nstderr:\n%s", waitErr, stdout.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("trainwrap still running after 60s\nstderr:\n%s", stderr.String())
	}
	if n := answered.Load(); n > limit/8 {
		t.Logf("%d of %d clients answered while trainwrap ran", n, clients)
	}
}
