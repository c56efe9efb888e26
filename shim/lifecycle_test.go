package shim

import (
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/rundir"
)

// Exit 0 is success whatever timer fired: a job that stalls and whose handler for the
// stall's SIGABRT, or for the SIGTERM after it, exits 0 is done and not restarted. The
// stall is certain (the job never prints again), so the order of events is fixed.
func TestExitZeroAfterStallIsSuccess(t *testing.T) {
	cases := []struct {
		name string
		trap string
	}{
		{"SIGABRT handler exits 0", `trap 'exit 0' ABRT TERM`},
		{"SIGTERM handler exits 0", `trap '' ABRT; trap 'exit 0' TERM`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The supervisor's clock moves only when the test moves it: the stall is
			// declared after the job printed "started", so after its trap was set, at
			// any machine speed.
			clock := newClockControl(t)
			s := startSupervisor(t, testOptions{StallTimeout: 300 * time.Millisecond, AbortGrace: 100 * time.Millisecond, StopTimeout: 10 * time.Second,
				BackoffInitial: 10 * time.Millisecond, MaxRestarts: 3, ClockFIFO: clock.path},
				"sh", "-c", tc.trap+`; echo started; while :; do sleep 0.05; done`)
			s.waitChild()
			testkit.Eventually(t, time.Minute, "the job's line in the log", func() bool {
				return strings.Contains(s.log(), "started")
			})
			clock.advance(t, 300*time.Millisecond)
			// The rest (the abort grace, for the job that ignores SIGABRT) only has to happen.
			stop := make(chan struct{})
			go clock.run(t, 100*time.Millisecond, stop)
			code := s.wait(time.Minute)
			close(stop)
			stderr := s.stderr.String()
			if !strings.Contains(stderr, "no progress for 300ms") {
				t.Fatalf("the stall was never declared; the test did not exercise it\n%s", stderr)
			}
			if code != 0 {
				t.Fatalf("exit %d, want 0: the job exited 0\n%s", code, stderr)
			}
			recs := s.records()
			if len(recs) != 1 {
				t.Fatalf("%d attempts, want 1 (no restart after exit 0): %+v", len(recs), recs)
			}
			r := recs[0]
			if r.Decision != rundir.DecisionDone || r.ExitCode == nil || *r.ExitCode != 0 || r.Class != "none" {
				t.Errorf("record %+v, want decision done, exit 0, class none", r)
			}
			if st := s.state(); st.Status != rundir.StatusSucceeded {
				t.Errorf("state %q, want succeeded", st.Status)
			}
		})
	}
}

// Once an attempt has made progress, a resumed attempt that hangs before its first
// progress line is a hang after --stall-timeout plus --resume-allowance, never the
// whole --startup-timeout; without earlier progress the startup timeout still holds.
// The window the supervisor used is in its stall message.
func TestResumedAttemptGetsTheStallWindow(t *testing.T) {
	cases := []struct {
		name       string
		first      string // attempt 1
		startup    time.Duration
		allowance  time.Duration
		wantWindow string
	}{
		{"progress before: stall timeout plus allowance", `echo step=1; exit 3`, time.Hour, 200 * time.Millisecond, "no progress for 400ms"},
		{"progress before, startup timeout shorter", `echo step=1; exit 3`, 300 * time.Millisecond, time.Hour, "no progress for 300ms"},
		{"no progress before: startup timeout", `echo loading; exit 3`, 1500 * time.Millisecond, 200 * time.Millisecond, "no progress for 1.5s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			script := `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then ` + tc.first + `; fi; echo loading the checkpoint; exec sleep 300`
			s := startSupervisor(t, testOptions{StallTimeout: 200 * time.Millisecond, StartupTimeout: tc.startup, ResumeAllowance: tc.allowance,
				ProgressRegex: `step=(\d+)`, AbortGrace: 100 * time.Millisecond, StopTimeout: 2 * time.Second,
				BackoffInitial: 10 * time.Millisecond, MaxRestarts: 1},
				"sh", "-c", script)
			code := s.wait(time.Minute)
			stderr := s.stderr.String()
			if code != 76 {
				t.Fatalf("exit %d, want 76 (hang)\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.wantWindow) {
				t.Errorf("stall message does not say %q\n%s", tc.wantWindow, stderr)
			}
			recs := s.records()
			if len(recs) != 2 || recs[1].Class != "hang" {
				t.Fatalf("records %+v, want two attempts, the second a hang", recs)
			}
			assertNoRunProcs(t, s.state().RunID)
		})
	}
}
