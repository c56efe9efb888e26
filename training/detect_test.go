package training

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// series builds a synthetic run: one sample per metric per step, noise from a fixed
// seed.
type series struct {
	rng     *rand.Rand
	t0      time.Time
	samples []Sample
}

func newSeries(seed uint64) *series {
	return &series{rng: rand.New(rand.NewPCG(seed, 15)), t0: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
}

func (s *series) add(attempt int, step int64, name string, v float64) {
	s.samples = append(s.samples, Sample{Time: s.t0.Add(time.Duration(step) * time.Second), Attempt: attempt, Step: step, Name: name, Value: v})
}

// noisy is v with Gaussian noise of relative size rel.
func (s *series) noisy(v, rel float64) float64 { return v * (1 + rel*s.rng.NormFloat64()) }

// healthyLoss decreases as training losses do (a power law: still improving late).
func healthyLoss(step int64) float64 { return 0.4 + 3/math.Sqrt(1+float64(step)/20) }

// healthy writes steps [from, to) of a healthy attempt: a noisy decreasing loss, a
// warm-up learning rate, throughput with jitter (slow for the first steps of each
// attempt), and an fp16 scaler that halves twice at start and once after growing.
func (s *series) healthy(attempt int, from, to int64) {
	for st := from; st < to; st++ {
		s.add(attempt, st, Loss, s.noisy(healthyLoss(st), 0.04))
		s.add(attempt, st, LearningRate, 5e-5*math.Min(1, float64(st+1)/100))
		sps := 100.0
		if st-from < 3 {
			sps = 30 // compilation, cache warm-up
		}
		s.add(attempt, st, SamplesPerSecond, s.noisy(sps, 0.06))
		s.add(attempt, st, StepTime, s.noisy(8/sps, 0.06))
		switch st - from {
		case 2:
			s.add(attempt, st, LossScale, 32768)
		case 5:
			s.add(attempt, st, LossScale, 16384)
		case 900: // grown to 32768 by 1000 clean steps, overflows once
			s.add(attempt, st, LossScale, 16384)
		}
	}
}

func run(t *testing.T, samples []Sample, opt DetectorOptions) []Anomaly {
	t.Helper()
	d := NewDetector(opt)
	var got []Anomaly
	attempt := 1
	for _, s := range samples {
		if s.Attempt != attempt {
			attempt = s.Attempt
			d.StartAttempt(attempt)
		}
		got = append(got, d.Observe(s)...)
	}
	return got
}

func TestDetectorHealthyRuns(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		s := newSeries(seed)
		s.healthy(1, 0, 1500)
		s.healthy(2, 1200, 3000) // a restart from checkpoint 1200
		if got := run(t, s.samples, DetectorOptions{}); len(got) != 0 {
			t.Errorf("seed %d: healthy run raised %d anomalies, first: %+v", seed, len(got), got[0])
		}
	}
}

func TestDetectorFindsEachKind(t *testing.T) {
	const onset = 600
	cases := []struct {
		name  string
		kind  string
		build func(s *series)
		late  int64 // how far past onset detection may come
	}{
		{"loss spike x20 for 30 steps", LossSpike, func(s *series) {
			for st := int64(0); st < 1200; st++ {
				v := s.noisy(healthyLoss(st), 0.04)
				if st >= onset && st < onset+30 {
					v *= 20
				}
				s.add(1, st, Loss, v)
			}
		}, 50},
		{"loss spike x3 that stays", LossSpike, func(s *series) {
			for st := int64(0); st < onset+400; st++ { // past a window: the new level is adopted, not re-reported
				v := s.noisy(healthyLoss(st), 0.04)
				if st >= onset {
					v = s.noisy(3*healthyLoss(onset), 0.04)
				}
				s.add(1, st, Loss, v)
			}
		}, 50},
		{"loss flat from onset", LossFlat, func(s *series) {
			for st := int64(0); st < 2000; st++ {
				s.add(1, st, Loss, s.noisy(healthyLoss(min(st, onset)), 0.04))
			}
		}, 1000 + 200}, // no new low for N steps: reported N steps after the last low, which the window's lag and chance put up to 200 steps past the onset
		{"loss rising from onset", LossFlat, func(s *series) {
			for st := int64(0); st < 2000; st++ {
				v := healthyLoss(min(st, onset))
				if st > onset {
					v *= 1 + float64(st-onset)/2000
				}
				s.add(1, st, Loss, s.noisy(v, 0.04))
			}
		}, 1000 + 200}, // no new low for N steps: reported N steps after the last low, which the window's lag and chance put up to 200 steps past the onset
		{"loss scale halving every step to 1", LossScaleCollapse, func(s *series) {
			s.healthy(1, 0, onset)
			for st, v := int64(onset), 32768.0; st < 700; st++ {
				v = math.Max(v/2, 1)
				s.add(1, st, LossScale, v)
			}
		}, 50},
		{"loss scale falls by 2^10 after growing", LossScaleCollapse, func(s *series) {
			s.add(1, 10, LossScale, 32768)
			s.add(1, 20, LossScale, 16384)
			s.add(1, 400, LossScale, 65536) // grown back: attempted 131072, reduced to 65536
			for st, v := int64(onset), 65536.0; st < 700; st += 2 {
				v /= 2
				if v < 16 {
					break
				}
				s.add(1, st, LossScale, v)
			}
		}, 50},
		{"throughput drops to a third", ThroughputDrop, func(s *series) {
			for st := int64(0); st < 1000; st++ {
				sps := 100.0
				if st >= onset {
					sps = 33
				}
				s.add(1, st, SamplesPerSecond, s.noisy(sps, 0.06))
				s.add(1, st, StepTime, s.noisy(8/sps, 0.06))
			}
		}, 50},
		{"step time triples (tqdm bar only)", ThroughputDrop, func(s *series) {
			for st := int64(0); st < 1000; st++ {
				tm := 0.1
				if st >= onset {
					tm = 0.3
				}
				s.add(1, st, StepTime, s.noisy(tm, 0.06))
			}
		}, 50},
		{"second attempt twice as slow", Straggler, func(s *series) {
			for st := int64(0); st < onset; st++ {
				s.add(1, st, StepTime, s.noisy(0.1, 0.06))
			}
			for st := int64(onset); st < 1000; st++ {
				s.add(2, st, StepTime, s.noisy(0.2, 0.06))
			}
		}, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 10; seed++ {
				s := newSeries(seed)
				c.build(s)
				got := run(t, s.samples, DetectorOptions{})
				if len(got) != 1 {
					t.Fatalf("seed %d: %d anomalies, want one %s: %+v", seed, len(got), c.kind, got)
				}
				a := got[0]
				if a.Kind != c.kind || a.Step < onset || a.Step > onset+c.late {
					t.Fatalf("seed %d: %+v, want %s within %d steps of %d", seed, a, c.kind, c.late, onset)
				}
				if a.Message == "" || !strings.Contains(a.Message, "step") || a.Baseline == 0 {
					t.Errorf("seed %d: message %q, baseline %v: want what, value, baseline and step", seed, a.Message, a.Baseline)
				}
				if seed == 1 {
					t.Logf("%s", a.Message)
				}
			}
		})
	}
}

// TestDetectorEpisodes: one anomaly per episode; a second episode after recovery is
// reported again.
func TestDetectorEpisodes(t *testing.T) {
	s := newSeries(7)
	for st := int64(0); st < 1000; st++ {
		v := s.noisy(healthyLoss(st), 0.04)
		if st >= 300 && st < 310 || st >= 700 && st < 705 {
			v *= 10
		}
		s.add(1, st, Loss, v)
		sps := 100.0
		if st >= 400 && st < 450 || st >= 800 && st < 900 {
			sps = 20
		}
		s.add(1, st, SamplesPerSecond, s.noisy(sps, 0.05))
	}
	got := run(t, s.samples, DetectorOptions{})
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, a.Kind)
	}
	want := []string{LossSpike, ThroughputDrop, LossSpike, ThroughputDrop}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Fatalf("anomalies %v, want %v: %+v", kinds, want, got)
	}
}

// TestDetectorDeterministic: the same series gives the same anomalies, whatever the
// clock says.
func TestDetectorDeterministic(t *testing.T) {
	s := newSeries(3)
	s.healthy(1, 0, 300)
	for st := int64(300); st < 400; st++ {
		s.add(1, st, StepTime, 0.5)
	}
	a, b := run(t, s.samples, DetectorOptions{}), run(t, s.samples, DetectorOptions{})
	if len(a) == 0 || len(a) != len(b) || a[0] != b[0] {
		t.Fatalf("two runs differ or found nothing: %+v vs %+v", a, b)
	}
}
