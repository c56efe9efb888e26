package shim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is the restart policy of DESIGN.md. The zero value restarts at once and
// without limit; Defaults gives the documented defaults.
type Policy struct {
	BackoffInitial             time.Duration
	BackoffMax                 time.Duration
	Jitter                     float64 // fraction, 0.2 = ±20%
	HealthyAfter               time.Duration
	MaxRestartsInWindow        int // 0 = no rate limit
	RestartWindow              time.Duration
	MaxFailuresWithoutProgress int // 0 = no limit
	MaxRestarts                int // 0 = no total limit
}

// DefaultPolicy is the policy of DESIGN.md's defaults.
func DefaultPolicy() Policy {
	return Policy{
		BackoffInitial:             time.Second,
		BackoffMax:                 60 * time.Second,
		Jitter:                     0.2,
		HealthyAfter:               10 * time.Minute,
		MaxRestartsInWindow:        3,
		RestartWindow:              5 * time.Minute,
		MaxFailuresWithoutProgress: 5,
	}
}

// Outcome is what the policy needs to know of one failed attempt.
type Outcome struct {
	Start, End time.Time
	Retryable  bool
	Class      string
	// Progressed is true when the attempt got further than every earlier one: a
	// higher step or a new complete checkpoint.
	Progressed bool
}

// Decision is the policy's answer for one failed attempt.
type Decision struct {
	Restart bool
	Delay   time.Duration
	Reason  string
}

// restarter applies a Policy across attempts. It is owned by the supervisor loop.
type restarter struct {
	p            Policy
	rng          *rand.Rand
	restarts     []time.Time // when each restart was decided
	nextBackoff  time.Duration
	noProgressN  int
	totalRestart int
}

func newRestarter(p Policy, seed uint64) *restarter {
	return &restarter{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), nextBackoff: p.BackoffInitial}
}

// decide returns whether to restart after a failed attempt, and after how long.
func (r *restarter) decide(o Outcome) Decision {
	if !o.Retryable {
		return Decision{Reason: fmt.Sprintf("class %s is not retryable", o.Class)}
	}
	healthy := o.Progressed || (r.p.HealthyAfter > 0 && o.End.Sub(o.Start) >= r.p.HealthyAfter)
	if healthy {
		r.nextBackoff = r.p.BackoffInitial
	}
	if o.Progressed {
		r.noProgressN = 0
	} else {
		r.noProgressN++
	}
	if r.p.MaxFailuresWithoutProgress > 0 && r.noProgressN >= r.p.MaxFailuresWithoutProgress {
		return Decision{Reason: fmt.Sprintf("%d failures in a row without progress (--max-failures-without-progress %d)", r.noProgressN, r.p.MaxFailuresWithoutProgress)}
	}
	if r.p.MaxRestarts > 0 && r.totalRestart >= r.p.MaxRestarts {
		return Decision{Reason: fmt.Sprintf("%d restarts in all (--max-restarts %d)", r.totalRestart, r.p.MaxRestarts)}
	}
	if r.p.MaxRestartsInWindow > 0 && r.p.RestartWindow > 0 {
		cut := o.End.Add(-r.p.RestartWindow)
		n := 0
		for _, t := range r.restarts {
			if t.After(cut) {
				n++
			}
		}
		if n >= r.p.MaxRestartsInWindow {
			return Decision{Reason: fmt.Sprintf("%d restarts within %s (--max-restarts-in-window %d)", n, r.p.RestartWindow, r.p.MaxRestartsInWindow)}
		}
	}
	delay := r.jitter(r.nextBackoff)
	r.nextBackoff *= 2
	if r.p.BackoffMax > 0 && r.nextBackoff > r.p.BackoffMax {
		r.nextBackoff = r.p.BackoffMax
	}
	if r.nextBackoff == 0 {
		r.nextBackoff = r.p.BackoffInitial
	}
	r.restarts = append(r.restarts, o.End)
	r.totalRestart++
	return Decision{Restart: true, Delay: delay, Reason: fmt.Sprintf("retryable class %s", o.Class)}
}

func (r *restarter) jitter(d time.Duration) time.Duration {
	if r.p.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + r.p.Jitter*(2*r.rng.Float64()-1)
	return time.Duration(float64(d) * f)
}
