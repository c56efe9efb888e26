package shim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// escapedHolder is the job of issue 11 item 7: the leader starts a process that clears
// the run id and leaves for a session of its own, so no sweep can prove it is the
// job's, and then exits. The holder keeps the job's stdout and stderr open until the
// test writes to the fifo "release" (or kills it): nothing but the test ends it.
func escapedHolder(exit int) []string {
	holder := `echo $$ > holder.pid; read x < release`
	return []string{"sh", "-c", fmt.Sprintf(`(env -u %s setsid sh -c '%s' &)
while [ ! -s holder.pid ]; do sleep 0.01; done
echo $$ > leader.pid; echo "leader done"; exit %d`, rundir.RunIDEnv, holder, exit)}
}

// holderOf starts the escaped holder's bookkeeping: the fifo it waits on, and a
// cleanup that kills it whatever the test's verdict.
func holderOf(t *testing.T, work string) func() proc.ID {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(work, "release"), 0o600); err != nil {
		t.Fatal(err)
	}
	var id proc.ID
	t.Cleanup(func() {
		if id.PID != 0 && id.Alive() {
			proc.Signal(id, syscall.SIGKILL)
		}
	})
	return func() proc.ID {
		t.Helper()
		waitLines(t, filepath.Join(work, "holder.pid"), 1)
		ids := readPids(t, filepath.Join(work, "holder.pid"))
		if len(ids) != 1 {
			t.Fatalf("holder already gone: %v", ids)
		}
		id = ids[0]
		return id
	}
}

// release lets the holder end, and waits until it has.
func release(t *testing.T, work string, holder proc.ID) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// Opening the fifo waits for the holder's open for reading, so the holder
		// cannot miss it.
		f, err := os.OpenFile(filepath.Join(work, "release"), os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString("go\n")
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the holder never opened its fifo")
	}
	assertGone(t, time.Minute, holder)
}

// A process that escaped the sweep and holds the job's output does not hold up
// trainwrap: it returns while the holder still runs, and the holder ends only when the
// test releases it after trainwrap's exit, so waiting for the holder would deadlock.
// Before the fix (Fd() took the pipe out of the poller) trainwrap hung until the
// holder ended, that is, forever here. The job runs without a cgroup of its own:
// where there is one, the holder dies with the job and nothing is left to hold the
// output, so only the sweep-only path can show the drain.
func TestEscapedOutputHolderDoesNotHoldUpTheExit(t *testing.T) {
	for _, mode := range []PtyMode{PtyNever, PtyAlways} {
		t.Run(string(mode), func(t *testing.T) {
			work := t.TempDir()
			holder := holderOf(t, work)
			s := startSupervisorIn(t, work, testOptions{StateDir: filepath.Join(work, ".trainwrap"), Pty: string(mode), Cgroup: CgroupOff}, escapedHolder(0)...)
			h := holder()
			if code := s.wait(60 * time.Second); code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
			}
			if !h.Alive() {
				t.Fatal("the holder ended before trainwrap did: nothing was held")
			}
			if !strings.Contains(s.log(), "leader done") {
				t.Errorf("the job's output is not in the log:\n%s", s.log())
			}
			if !strings.Contains(s.stderr.String(), "still holds its output") {
				t.Errorf("stderr does not say that a process still holds the output:\n%s", s.stderr.String())
			}
			release(t, work, h)
		})
	}
}

// SIGTERM is honoured while trainwrap reads the last output of a job whose holder
// never lets go (drain limits of an hour): it exits 143 with the holder still alive.
// Before the fix the supervisor sat in a blocking read and never saw the signal. No
// cgroup, for the reason above.
func TestSIGTERMStopsTheDrainOfAHeldOutput(t *testing.T) {
	work := t.TempDir()
	holder := holderOf(t, work)
	to := testOptions{StateDir: filepath.Join(work, ".trainwrap"), OutputDrainIdle: time.Hour, OutputDrainMax: time.Hour, MaxRestarts: 1, Cgroup: CgroupOff}
	s := startSupervisorIn(t, work, to, escapedHolder(1)...)
	h := holder()
	waitLines(t, filepath.Join(work, "leader.pid"), 1)
	leader := readPids(t, filepath.Join(work, "leader.pid"))
	assertGone(t, time.Minute, leader...)
	// The leader is gone: trainwrap is in its sweep or its drain, or about to learn of
	// the exit. A stop is honoured in each.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(60 * time.Second); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, s.stderr.String())
	}
	if !h.Alive() {
		t.Fatal("the holder ended before trainwrap did: the drain was never held")
	}
	recs := s.records()
	if len(recs) != 1 || recs[0].Decision != rundir.DecisionStop {
		t.Errorf("records %+v: want one attempt, stopped", recs)
	}
	release(t, work, h)
}

// stuckStdout is a pipe for the supervisor's stdout that the test never reads while
// the supervisor runs; read returns what reached it once the supervisor is gone.
func stuckStdout(t *testing.T) (w *os.File, read func() []byte) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return w, func() []byte {
		t.Helper()
		w.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// logLines returns the content of each log line of attempt n, without the prefix and
// the pty's \r.
func logLines(t *testing.T, log string, attempt int) []string {
	t.Helper()
	tag := " [" + strconv.Itoa(attempt) + "] "
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), tag); ok {
			out = append(out, strings.TrimSuffix(rest, "\r"))
		}
	}
	return out
}

// checkNumbered says how lines differ from exactly "<prefix>1" .. "<prefix>n".
func checkNumbered(lines []string, prefix string, n int) error {
	if len(lines) != n {
		return fmt.Errorf("%d lines, want %d (last: %q)", len(lines), n, lines[max(0, len(lines)-1):])
	}
	for i, l := range lines {
		if want := prefix + strconv.Itoa(i+1); l != want {
			return fmt.Errorf("line %d is %q, want %q", i+1, l, want)
		}
	}
	return nil
}

// A reader of our stdout that takes nothing does not stop the job: the job prints far
// more than every buffer on the way holds and finishes, the log has every line, the
// terminal's loss is counted in the run record and reported on stderr, and every byte
// the job printed is either on that stdout or counted (give or take the one write
// that was under way). Before the fix the job blocked on its full pipe for good.
func TestStuckStdoutReaderLosesOnlyItsCopy(t *testing.T) {
	const n = 200000 // about 18 MB: 4 MiB of queue, 1 MiB of pipe, 64 KiB of stdout
	const pad = " padding padding padding padding padding padding padding padding padding"
	for _, mode := range []PtyMode{PtyNever, PtyAlways} {
		t.Run(string(mode), func(t *testing.T) {
			work := t.TempDir()
			out, read := stuckStdout(t)
			to := testOptions{StateDir: filepath.Join(work, ".trainwrap"), Pty: string(mode), LogMaxSizeMB: 1024}
			s := startSupervisorTo(t, work, to, out, "seq", "-f", "line %g"+pad, "1", strconv.Itoa(n))
			out.Close()
			if code := s.wait(120 * time.Second); code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
			}
			lines := paddedLogLines(t, s, pad)
			if err := checkNumbered(lines, "line ", n); err != nil {
				t.Fatalf("log: %v", err)
			}
			recs := s.records()
			if len(recs) != 1 || recs[0].TerminalDropped <= 0 {
				t.Fatalf("records %+v: want one, with the terminal's drops counted", recs)
			}
			if !strings.Contains(s.stderr.String(), "the terminal did not keep up: "+strconv.FormatInt(recs[0].TerminalDropped, 10)+" bytes") {
				t.Errorf("stderr does not report the %d dropped bytes:\n%s", recs[0].TerminalDropped, s.stderr.String())
			}
			total := int64(0)
			eol := int64(1)
			if mode == PtyAlways {
				eol = 2 // the pty's \r\n
			}
			for i := 1; i <= n; i++ {
				total += int64(len("line "+strconv.Itoa(i)+pad)) + eol
			}
			got := int64(len(read())) + recs[0].TerminalDropped
			if got > total || got < total-termWriteMax {
				t.Errorf("stdout got plus dropped = %d bytes; the job printed %d", got, total)
			}
		})
	}
}

// A writer under a pty that SIGKILLs itself right after its last line loses none of
// it, attempt after attempt: the pty master is read until EIO, not for a fixed time.
// With a reader of our stdout that stops (the second case), the old code hung on the
// terminal and then cut the pty off; now the log is complete either way.
func TestPtyWriterKilledAfterWritingLosesNoLine(t *testing.T) {
	cases := []struct {
		name     string
		attempts int
		stuck    bool
	}{
		{"terminal reading", 20, false},
		{"terminal stopped", 5, true},
	}
	const n = 20000 // 200 KB an attempt: more than our stdout's pipe holds
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attempts := tc.attempts
			if testing.Short() {
				attempts = min(attempts, 5)
			}
			work := t.TempDir()
			to := testOptions{StateDir: filepath.Join(work, ".trainwrap"), Pty: string(PtyAlways), LogMaxSizeMB: 1024,
				BackoffInitial: time.Millisecond, BackoffMax: time.Millisecond, MaxRestarts: attempts - 1}
			// printf is the shell's own: the process that writes is the one that dies.
			script := fmt.Sprintf(`printf 'out %%d\n' $(seq 1 %d); kill -KILL $$`, n)
			var s *supervised
			var read func() []byte
			if tc.stuck {
				var out *os.File
				out, read = stuckStdout(t)
				s = startSupervisorTo(t, work, to, out, "sh", "-c", script)
				out.Close()
			} else {
				s = startSupervisorIn(t, work, to, "sh", "-c", script)
			}
			code := s.wait(120 * time.Second)
			recs := s.records()
			if len(recs) != attempts {
				t.Fatalf("%d attempts, want %d (exit %d)\n%s", len(recs), attempts, code, s.stderr.String())
			}
			log := s.log()
			for a := 1; a <= attempts; a++ {
				if recs[a-1].Signal != "SIGKILL" {
					t.Errorf("attempt %d: signal %q, want SIGKILL", a, recs[a-1].Signal)
				}
				if err := checkNumbered(logLines(t, log, a), "out ", n); err != nil {
					t.Errorf("attempt %d: log: %v", a, err)
				}
			}
			if read != nil {
				read()
			}
		})
	}
}

// What the job wrote before it ended is read to the end whatever the drain's limits:
// here the terminal stops, the job's last megabyte waits in the pipe while the pump
// waits out the terminal's patience, and the drain allows 1 ms. Only output that comes
// after the job's end is held to the limits.
func TestDrainLimitsNeverCutTheJobsOwnOutput(t *testing.T) {
	// About 4.6 MiB: more than the terminal queue and our stdout's pipe hold, less
	// than that plus the job's 1 MiB pipe, so the writer finishes while the pump waits.
	const n = 53000
	const pad = " padding padding padding padding padding padding padding padding padding"
	work := t.TempDir()
	out, read := stuckStdout(t)
	to := testOptions{StateDir: filepath.Join(work, ".trainwrap"), OutputDrainIdle: time.Millisecond, OutputDrainMax: time.Millisecond, LogMaxSizeMB: 1024}
	s := startSupervisorTo(t, work, to, out, "seq", "-f", "line %g"+pad, "1", strconv.Itoa(n))
	out.Close()
	if code := s.wait(120 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, s.stderr.String())
	}
	lines := paddedLogLines(t, s, pad)
	if err := checkNumbered(lines, "line ", n); err != nil {
		t.Fatalf("log: %v\n%s", err, s.stderr.String())
	}
	read()
}

// paddedLogLines is attempt 1's log lines with pad cut off each; a line that lost its
// padding is marked so, for checkNumbered to report.
func paddedLogLines(t *testing.T, s *supervised, pad string) []string {
	t.Helper()
	var lines []string
	for _, l := range logLines(t, s.log(), 1) {
		c, ok := strings.CutSuffix(l, pad)
		if !ok {
			c = l + " (padding lost)"
		}
		lines = append(lines, c)
	}
	return lines
}
