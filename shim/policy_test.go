package shim

import (
	"strings"
	"testing"
	"time"
)

func TestRestartPolicy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fail := func(at time.Duration, ran time.Duration, progressed bool) Outcome {
		return Outcome{Start: t0.Add(at - ran), End: t0.Add(at), Retryable: true, Class: "cuda_oom", Progressed: progressed}
	}
	base := Policy{BackoffInitial: time.Second, BackoffMax: 8 * time.Second, HealthyAfter: 10 * time.Minute}
	cases := []struct {
		name       string
		policy     func(Policy) Policy
		outcomes   []Outcome
		wantDelays []time.Duration // -1: give up
		wantReason string
	}{
		{"doubling up to the cap", nil,
			[]Outcome{fail(0, time.Second, false), fail(time.Minute, time.Second, false), fail(2*time.Minute, time.Second, false), fail(3*time.Minute, time.Second, false), fail(4*time.Minute, time.Second, false)},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, ""},
		{"progress resets the backoff", nil,
			[]Outcome{fail(0, time.Second, false), fail(time.Minute, time.Second, false), fail(2*time.Minute, time.Second, true)},
			[]time.Duration{time.Second, 2 * time.Second, time.Second}, ""},
		{"a long healthy run resets the backoff", nil,
			[]Outcome{fail(0, time.Second, false), fail(time.Hour, 11*time.Minute, false)},
			[]time.Duration{time.Second, time.Second}, ""},
		{"rate limit", func(p Policy) Policy { p.MaxRestartsInWindow, p.RestartWindow = 3, 5*time.Minute; return p },
			[]Outcome{fail(0, time.Second, true), fail(time.Minute, time.Second, true), fail(2*time.Minute, time.Second, true), fail(3*time.Minute, time.Second, true)},
			[]time.Duration{time.Second, time.Second, time.Second, -1}, "max-restarts-in-window"},
		{"rate limit window slides", func(p Policy) Policy { p.MaxRestartsInWindow, p.RestartWindow = 2, 5*time.Minute; return p },
			[]Outcome{fail(0, time.Second, true), fail(time.Minute, time.Second, true), fail(10*time.Minute, time.Second, true)},
			[]time.Duration{time.Second, time.Second, time.Second}, ""},
		{"failures without progress", func(p Policy) Policy { p.MaxFailuresWithoutProgress = 2; return p },
			[]Outcome{fail(0, time.Second, false), fail(time.Minute, time.Second, false)},
			[]time.Duration{time.Second, -1}, "without progress"},
		{"total restarts", func(p Policy) Policy { p.MaxRestarts = 2; return p },
			[]Outcome{fail(0, time.Second, true), fail(time.Hour, time.Second, true), fail(2*time.Hour, time.Second, true)},
			[]time.Duration{time.Second, time.Second, -1}, "max-restarts 2"},
		{"not retryable", nil,
			[]Outcome{{Start: t0, End: t0, Retryable: false, Class: "import_error"}},
			[]time.Duration{-1}, "not retryable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.policy != nil {
				p = tc.policy(p)
			}
			r := newRestarter(p, 1)
			var last Decision
			for i, o := range tc.outcomes {
				last = r.decide(o)
				want := tc.wantDelays[i]
				if want < 0 {
					if last.Restart {
						t.Fatalf("outcome %d: restart after %s, want give up", i, last.Delay)
					}
					continue
				}
				if !last.Restart || last.Delay != want {
					t.Fatalf("outcome %d: %+v, want restart after %s", i, last, want)
				}
			}
			if tc.wantReason != "" && !strings.Contains(last.Reason, tc.wantReason) {
				t.Errorf("reason %q, want it to mention %q", last.Reason, tc.wantReason)
			}
		})
	}
}

func TestJitterStaysWithinTwentyPercent(t *testing.T) {
	r := newRestarter(Policy{BackoffInitial: time.Second, Jitter: 0.2}, 42)
	lo, hi := time.Second, time.Second
	for i := 0; i < 1000; i++ {
		d := r.jitter(time.Second)
		lo, hi = min(lo, d), max(hi, d)
		if d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("jittered delay %s outside ±20%%", d)
		}
	}
	if hi-lo < 300*time.Millisecond {
		t.Errorf("jitter spread %s..%s: too narrow to be jitter", lo, hi)
	}
}

func TestReplaceArg(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"python", "train.py"}, "python train.py --resume ckpt-2"},
		{[]string{"python", "train.py", "--resume", "ckpt-1", "--lr", "1"}, "python train.py --resume ckpt-2 --lr 1"},
		{[]string{"python", "train.py", "--resume=ckpt-1"}, "python train.py --resume=ckpt-2"},
	}
	for _, tc := range cases {
		if got := strings.Join(ReplaceArg(tc.argv, "--resume", "ckpt-2"), " "); got != tc.want {
			t.Errorf("ReplaceArg(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}
