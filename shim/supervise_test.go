package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// A supervisor killed with SIGKILL leaves nothing of its job behind: the direct child
// dies by Pdeathsig, the rest by the guard's sweep.
func TestKill9OfSupervisorLeavesNoOrphan(t *testing.T) {
	cases := []struct {
		name   string
		script string
		pids   int
	}{
		{"direct child", `echo $$ >> pids; exec sleep 300`, 1},
		{"grandchild in the group", `sleep 300 & echo $! >> pids; echo $$ >> pids; wait`, 2},
		{"setsid grandchild ignoring SIGTERM", `setsid sh -c 'trap "" TERM; echo $$ >> pids; exec sleep 300' & echo $$ >> pids; wait`, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSupervisor(t, testOptions{StopTimeout: 5 * time.Second}, "sh", "-c", tc.script)
			st := s.waitChild()
			pidFile := filepath.Join(s.work, "pids")
			waitLines(t, pidFile, tc.pids)
			ids := readPids(t, pidFile)
			if len(ids) != tc.pids {
				t.Fatalf("job processes: got %d alive, want %d", len(ids), tc.pids)
			}
			s.cmd.Process.Signal(syscall.SIGKILL)
			s.wait(time.Minute)
			assertGone(t, time.Minute, ids...)
			testkit.Eventually(t, time.Minute, "no process with the run id", func() bool {
				left, _ := proc.WithEnv(rundir.RunIDEnv, st.RunID)
				return len(left) == 0
			})
		})
	}
}

// However the job ends, nothing of it is left when trainwrap returns, and the exit
// code says how it ended.
func TestEndingsLeaveNothingBehind(t *testing.T) {
	cases := []struct {
		name   string
		script string
		opts   testOptions
		signal syscall.Signal // sent to the supervisor once the child runs
		want   int
		class  string
	}{
		{"normal exit", `sleep 300 & echo done`, testOptions{}, 0, 0, "none"},
		{"crash", `sleep 300 & echo oops; exit 3`, testOptions{MaxFailuresWithoutProgress: 1}, 0, 85, "unknown"},
		{"stop by SIGTERM", `sleep 300 & echo running; sleep 300`, testOptions{}, syscall.SIGTERM, 143, ""},
		{"stall", `sleep 300 & echo running; sleep 300`, testOptions{StallTimeout: 500 * time.Millisecond, AbortGrace: 200 * time.Millisecond, MaxFailuresWithoutProgress: 1}, 0, 76, "hang"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.StopTimeout = 2 * time.Second
			s := startSupervisor(t, tc.opts, "sh", "-c", tc.script)
			// A job that ends by itself may be gone before a poll of state.json sees
			// it run: only the test that signals it waits for that.
			if tc.signal != 0 {
				s.waitChild()
				s.cmd.Process.Signal(tc.signal)
			}
			code := s.wait(time.Minute)
			if code != tc.want {
				t.Fatalf("exit code %d, want %d\nstderr:\n%s", code, tc.want, s.stderr.String())
			}
			recs := s.records()
			if len(recs) != 1 {
				t.Fatalf("%d run records, want 1", len(recs))
			}
			if recs[0].RunID == "" || recs[0].PID == 0 {
				t.Fatalf("record %+v names no run or child: the job never started", recs[0])
			}
			assertNoRunProcs(t, recs[0].RunID)
			if tc.class != "" && recs[0].Class != tc.class {
				t.Errorf("class %q, want %q", recs[0].Class, tc.class)
			}
		})
	}
}

// A job that ignores SIGTERM is SIGKILLed once --stop-timeout has passed.
func TestStopTimeoutKillsAJobIgnoringSIGTERM(t *testing.T) {
	s := startSupervisor(t, testOptions{StopTimeout: time.Second}, "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	st := s.waitChild()
	testkit.Eventually(t, time.Minute, "ready", func() bool { return strings.Contains(s.stdout.String(), "ready") })
	t0 := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	// The job ignores SIGTERM for good: that trainwrap ends at all proves the SIGKILL,
	// and not before the stop timeout; how soon after it depends on the machine.
	code := s.wait(time.Minute)
	took := time.Since(t0)
	if code != 143 {
		t.Fatalf("exit code %d, want 143", code)
	}
	if took < time.Second {
		t.Errorf("stopped after %s, before the 1s stop timeout", took)
	}
	assertNoRunProcs(t, st.RunID)
	if recs := s.records(); len(recs) != 1 || recs[0].Signal != "SIGKILL" || recs[0].Decision != rundir.DecisionStop {
		t.Errorf("records: %+v, want one attempt killed by SIGKILL with decision stop", recs)
	}
}

// A crash loop restarts with doubling delays until the rate limit gives up, and
// trainwrap exits with the class's code. The supervisor's clock moves only when the
// test moves it: each backoff is the recorded one, and the next attempt starts when
// that much time has passed, not a millisecond before.
func TestCrashLoopBacksOffAndGivesUp(t *testing.T) {
	initial := 200 * time.Millisecond
	clock := newClockControl(t)
	s := startSupervisor(t, testOptions{
		BackoffInitial: initial, BackoffMax: 10 * time.Second,
		MaxRestartsInWindow: 3, RestartWindow: time.Minute, ClockFIFO: clock.path,
	}, "sh", "-c", `echo crashing; exit 3`)
	fired := 0
	for i := range 3 {
		var st rundir.State
		testkit.Eventually(t, time.Minute, fmt.Sprintf("backoff %d in state.json", i+1), func() bool {
			var err error
			st, err = rundir.ReadState(s.dir.State())
			return err == nil && st.Status == rundir.StatusBackoff && st.Restarts == i+1 && st.NextStart != nil
		})
		recs := s.records()
		if len(recs) != i+1 || recs[i].Decision != rundir.DecisionRestart {
			t.Fatalf("records %+v, want %d, the last one a restart", recs, i+1)
		}
		want := initial << i
		backoff := time.Duration(recs[i].BackoffMS) * time.Millisecond
		if lo, hi := time.Duration(float64(want)*0.8)-time.Millisecond, time.Duration(float64(want)*1.2); backoff < lo || backoff > hi {
			t.Errorf("attempt %d recorded backoff %s, want %s ±20%%", i+1, backoff, want)
		}
		a := clock.armed(t, 1)
		fired = a.fired
		// The record keeps whole milliseconds of the delay.
		if left := st.NextStart.Sub(a.now); a.next != left || left < backoff || left >= backoff+time.Millisecond {
			t.Fatalf("backoff %d: timer in %s, NextStart in %s, want both the recorded %s", i+1, a.next, left, backoff)
		}
		if a = clock.advance(t, a.next-time.Millisecond); a.fired != fired {
			t.Fatalf("backoff %d ended a millisecond before its %s", i+1, backoff)
		}
		if a = clock.advance(t, time.Millisecond); a.fired != fired+1 {
			t.Fatalf("backoff %d did not end after its %s", i+1, backoff)
		}
	}
	code := s.wait(time.Minute)
	if code != 85 {
		t.Fatalf("exit code %d, want 85 (unknown)\nstderr:\n%s", code, s.stderr.String())
	}
	recs := s.records()
	if len(recs) != 4 {
		t.Fatalf("%d attempts, want 4 (3 restarts, then the rate limit)", len(recs))
	}
	last := recs[3]
	if last.Decision != rundir.DecisionGiveUp || !strings.Contains(last.Reason, "max-restarts-in-window") {
		t.Errorf("last attempt: decision %q reason %q, want give_up by the rate limit", last.Decision, last.Reason)
	}
}

// A silent job is caught exactly one stall timeout after its last progress; a Python
// job dumps its stacks into the log first. The supervisor's clock moves only when the
// test moves it, so the check holds at any machine speed.
func TestStallIsDetectedAndStacksDumped(t *testing.T) {
	script := `echo started; exec sleep 300`
	py := testkit.WantTool(t, "python3", "python3") != ""
	if py {
		script = `exec python3 -c "import time; print('started', flush=True); time.sleep(300)"`
	}
	clock := newClockControl(t)
	s := startSupervisor(t, testOptions{StallTimeout: 2 * time.Second, StopTimeout: 2 * time.Second, AbortGrace: 200 * time.Millisecond,
		ProgressRegex: `^started$`, MaxFailuresWithoutProgress: 1, ClockFIFO: clock.path}, "sh", "-c", script)
	st := s.waitChild()
	// The tee observes a line before it writes it to the log: once it is there, the
	// progress was taken, at the clock's unmoved time.
	testkit.Eventually(t, time.Minute, "the job's line in the log", func() bool {
		return strings.Contains(s.log(), "started")
	})
	a := clock.armed(t, 1)
	fired := a.fired
	if a.next != 2*time.Second {
		t.Fatalf("stall timer armed for %s after the last progress, want the 2s stall timeout", a.next)
	}
	// The tick a second later may bring the deadline forward; the progress it writes
	// to state.json says it has been handled.
	clock.advance(t, time.Second)
	testkit.Eventually(t, time.Minute, "the progress time in state.json", func() bool {
		st, err := rundir.ReadState(s.dir.State())
		return err == nil && !st.LastProgress.IsZero()
	})
	if a = clock.armed(t, 1); a.next != time.Second || a.fired != fired {
		t.Fatalf("stall timer armed for %s after the tick (%d fired), want the 1s left of the 2s stall timeout", a.next, a.fired-fired)
	}
	if a = clock.advance(t, time.Second-time.Millisecond); a.fired != fired || strings.Contains(s.stderr.String(), "no progress for") {
		t.Fatalf("stall declared a millisecond before the stall timeout\nstderr:\n%s", s.stderr.String())
	}
	if a = clock.advance(t, time.Millisecond); a.fired != fired+1 {
		t.Fatal("the stall timer did not fire at the stall timeout")
	}
	testkit.Eventually(t, time.Minute, "the stall message", func() bool {
		return strings.Contains(s.stderr.String(), "no progress for 2s")
	})
	// The clock stays put: the SIGABRT grace never ends, and the job, dead of the
	// SIGABRT after its stack dump, ends the attempt by itself.
	code := s.wait(time.Minute)
	if code != 76 {
		t.Fatalf("exit code %d, want 76 (hang)\nstderr:\n%s", code, s.stderr.String())
	}
	assertNoRunProcs(t, st.RunID)
	if py {
		log := s.log()
		if !strings.Contains(log, "Fatal Python error: Aborted") || !strings.Contains(log, "most recent call first") {
			t.Errorf("no Python stack dump in the log:\n%s", log)
		}
	}
}

// The last line a job prints right before it is SIGKILLed reaches the log.
func TestLastLineBeforeSIGKILLIsLogged(t *testing.T) {
	s := startSupervisor(t, testOptions{MaxFailuresWithoutProgress: 1}, "sh", "-c", `echo "last words before the end"; kill -9 $$`)
	code := s.wait(time.Minute)
	if code == 0 {
		t.Fatalf("exit code 0 for a job killed by SIGKILL")
	}
	if !strings.Contains(s.log(), "[1] last words before the end\n") {
		t.Fatalf("last line missing from the log:\n%s", s.log())
	}
	if recs := s.records(); len(recs) != 1 || recs[0].Signal != "SIGKILL" {
		t.Fatalf("records %+v, want one attempt killed by SIGKILL", recs)
	}
}

// A second supervisor on the same run dir refuses to start and leaves the first alone.
func TestSecondSupervisorRefuses(t *testing.T) {
	first := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", `echo one; exec sleep 300`)
	st := first.waitChild()
	second := startSupervisorIn(t, t.TempDir(), testOptions{StateDir: first.dir.Path}, "sh", "-c", `echo two`)
	if code := second.wait(time.Minute); code != ExitUsage {
		t.Fatalf("second supervisor: exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(second.stderr.String(), "in use by another trainwrap") {
		t.Errorf("second supervisor's message: %q", second.stderr.String())
	}
	after := first.state()
	if after.RunID != st.RunID || after.Child == nil || after.Child.PID != st.Child.PID {
		t.Fatalf("first supervisor's state changed: %+v", after)
	}
	if !(proc.ID{PID: st.Child.PID, StartTime: st.Child.StartTime}).Alive() {
		t.Fatal("first supervisor's job died")
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	if code := first.wait(time.Minute); code != 143 {
		t.Fatalf("first supervisor: exit %d, want 143", code)
	}
}

// A state.json that names a live process with another start time (the pid was reused)
// never gets that process signalled.
func TestReusedPidInStateIsNotSignalled(t *testing.T) {
	work := t.TempDir()
	dir := rundir.New(filepath.Join(work, ".trainwrap"))
	if err := os.MkdirAll(dir.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	bystander := startBystander(t)
	st := rundir.State{
		RunID:      "0123456789abcdef",
		Supervisor: rundir.Proc{PID: bystander.PID, StartTime: bystander.StartTime + 1},
		Child:      &rundir.Proc{PID: bystander.PID, PGID: bystander.PID, StartTime: bystander.StartTime + 7},
		Status:     rundir.StatusRunning,
	}
	if err := rundir.WriteState(dir.State(), st); err != nil {
		t.Fatal(err)
	}
	s := startSupervisorIn(t, work, testOptions{StateDir: dir.Path}, "sh", "-c", "echo hi")
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d\n%s", code, s.stderr.String())
	}
	if !bystander.Alive() {
		t.Fatal("the process whose pid state.json named was signalled")
	}
}

// startBystander starts a process that is not ours (no run id) and kills it at cleanup.
func startBystander(t *testing.T) proc.ID {
	t.Helper()
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "300"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	id, err := proc.Identify(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A corrupt state.json stops the start with a clear error, and --force moves it aside.
func TestCorruptStateNeedsForce(t *testing.T) {
	work := t.TempDir()
	dir := rundir.New(filepath.Join(work, ".trainwrap"))
	os.MkdirAll(dir.Path, 0o755)
	os.WriteFile(dir.State(), []byte(`{"run_id": "abc", "supervisor": {`), 0o644)
	s := startSupervisorIn(t, work, testOptions{StateDir: dir.Path}, "sh", "-c", "echo hi")
	if code := s.wait(time.Minute); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	if msg := s.stderr.String(); !strings.Contains(msg, "state.json is corrupt") || !strings.Contains(msg, "--force") {
		t.Fatalf("message %q does not name the file and the way out", msg)
	}
	forced := startSupervisorIn(t, work, testOptions{StateDir: dir.Path, Force: true}, "sh", "-c", "echo hi")
	if code := forced.wait(time.Minute); code != 0 {
		t.Fatalf("--force: exit %d\n%s", code, forced.stderr.String())
	}
	aside, _ := filepath.Glob(dir.State() + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("corrupt state.json not kept aside: %v", aside)
	}
}

// The job gets the documented environment.
func TestJobEnvironment(t *testing.T) {
	s := startSupervisor(t, testOptions{}, "sh", "-c", `echo "id=$TRAINWRAP_RUN_ID attempt=$TRAINWRAP_ATTEMPT unbuf=$PYTHONUNBUFFERED fh=$PYTHONFAULTHANDLER"`)
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d", code)
	}
	st := s.state()
	want := fmt.Sprintf("id=%s attempt=1 unbuf=1 fh=1", st.RunID)
	if !strings.Contains(s.stdout.String(), want) {
		t.Fatalf("job printed %q, want %q", s.stdout.String(), want)
	}
}

// SIGUSR1 and SIGUSR2 (SLURM's warning before the time limit) reach every process of
// the job that handles them, in whatever group, spare those that would die of them,
// and are not failures.
func TestUSR1IsForwardedToEveryProcessThatHandlesIt(t *testing.T) {
	// A rank in a session of its own, a rank in the leader's group, and a worker
	// without a handler, which USR1 would kill: the job fails (exit 5) if it died.
	script := `trap 'echo "leader got USR1"' USR1
setsid sh -c 'trap "echo rank got USR1" USR1; echo rank ready; while :; do sleep 0.05; done' &
sh -c 'trap "echo same-group rank got USR1" USR1; echo group ready; while :; do sleep 0.05; done' &
sleep 300 & worker=$!
echo leader ready; n=0; while [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); if grep -q go flag 2>/dev/null; then kill -0 $worker || exit 5; exit 0; fi; done; exit 1`
	s := startSupervisor(t, testOptions{StopTimeout: 2 * time.Second}, "sh", "-c", script)
	st := s.waitChild()
	testkit.Eventually(t, time.Minute, "all ready", func() bool {
		o := s.stdout.String()
		return strings.Contains(o, "leader ready") && strings.Contains(o, "rank ready") && strings.Contains(o, "group ready")
	})
	s.cmd.Process.Signal(syscall.SIGUSR1)
	testkit.Eventually(t, time.Minute, "USR1 at every handler", func() bool {
		o := s.stdout.String()
		return strings.Contains(o, "leader got USR1") && strings.Contains(o, "\nrank got USR1") && strings.Contains(o, "same-group rank got USR1")
	})
	os.WriteFile(filepath.Join(s.work, "flag"), []byte("go"), 0o644)
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d after USR1, want 0: USR1 is not a failure, and the worker must live\n%s", code, s.stderr.String())
	}
	if recs := s.records(); len(recs) != 1 {
		t.Fatalf("%d attempts, want 1", len(recs))
	}
	assertNoRunProcs(t, st.RunID)
}

// Once the job has made progress, --stall-timeout applies, not the longer
// --startup-timeout that was armed at the start. The supervisor's clock moves only
// when the test moves it, so the check holds at any machine speed: one stall timeout
// after the last progress, and not a moment of the startup timeout more, the stall is
// declared.
func TestStallAfterProgressUsesTheStallTimeout(t *testing.T) {
	clock := newClockControl(t)
	s := startSupervisor(t, testOptions{StallTimeout: time.Second, StartupTimeout: 30 * time.Second, ProgressRegex: `step=(\d+)`,
		StopTimeout: time.Second, AbortGrace: 200 * time.Millisecond, MaxFailuresWithoutProgress: 1, ClockFIFO: clock.path},
		"sh", "-c", `echo step=1; echo step=2; echo "not progress"; exec sleep 300`)
	s.waitChild()
	// The tee observes lines in order before it writes them to the log: once the last
	// line is there, both progress lines were taken, at the clock's unmoved time.
	testkit.Eventually(t, time.Minute, "the job's last line in the log", func() bool {
		return strings.Contains(s.log(), "not progress")
	})
	clock.advance(t, time.Second)
	testkit.Eventually(t, time.Minute, "the stall message after one --stall-timeout", func() bool {
		return strings.Contains(s.stderr.String(), "no progress for 1s")
	})
	// The rest (SIGABRT grace, the second attempt's stall) only has to happen.
	stop := make(chan struct{})
	go clock.run(t, 100*time.Millisecond, stop)
	code := s.wait(time.Minute)
	close(stop)
	if code != 76 {
		t.Fatalf("exit %d, want 76 (hang)\n%s", code, s.stderr.String())
	}
	// The first attempt got to step 2 (progress: one restart); the second got no
	// further, and the budget of one failure without progress ends it.
	recs := s.records()
	if len(recs) != 2 || recs[0].StepEnd != 2 || !recs[0].Progressed || recs[1].Progressed {
		t.Fatalf("records %+v, want two attempts, the first reaching step 2", recs)
	}
}

// A progress bar that rewrites itself with \r and prints no newline for a long time is
// progress, and its step is the bar's newest. The job draws each state of the bar once
// the test has moved the supervisor's clock a second past the one before: twelve
// seconds without a newline against a stall timeout of two.
func TestCarriageReturnProgressBarIsProgress(t *testing.T) {
	script := `i=1; while [ $i -le 12 ]; do printf '\r%3d%%|####| %d/12 [00:01<00:01]' $((i*100/12)) $i; while [ ! -e go$i ]; do sleep 0.01; done; i=$((i+1)); done; echo; echo done`
	clock := newClockControl(t)
	s := startSupervisor(t, testOptions{StallTimeout: 2 * time.Second, StartupTimeout: 2 * time.Second, ProgressRegex: `(\d+)/12 \[`,
		MaxFailuresWithoutProgress: 1, ClockFIFO: clock.path}, "sh", "-c", script)
	s.waitChild()
	for i := 1; i <= 12; i++ {
		// The tee observes a segment before it writes it to the log.
		testkit.Eventually(t, time.Minute, fmt.Sprintf("bar state %d/12 in the log", i), func() bool {
			return strings.Contains(s.log(), fmt.Sprintf("| %d/12 [", i))
		})
		clock.advance(t, time.Second)
		if err := os.WriteFile(filepath.Join(s.work, fmt.Sprintf("go%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code := s.wait(time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0: a bar updated every second is not a stall\n%s", code, s.stderr.String())
	}
	if strings.Contains(s.stderr.String(), "no progress for") {
		t.Fatalf("stall declared:\n%s", s.stderr.String())
	}
	recs := s.records()
	if len(recs) != 1 || recs[0].StepEnd != 12 {
		t.Fatalf("records %+v, want one attempt that reached step 12", recs)
	}
}
