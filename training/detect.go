package training

import (
	"fmt"
	"math"
	"slices"
)

// DetectorOptions tune the Detector. The zero value of each field takes the default
// named in its comment; the defaults are set so that the healthy runs of the tests
// (noisy decreasing loss, warm-up learning rate, an fp16 scaler halving a few times
// at start, throughput with jitter) raise nothing.
type DetectorOptions struct {
	// LossWindow is W, how many recent losses the spike and flat checks judge by
	// (default 50).
	LossWindow int
	// SpikeZ is the robust z-score (deviation over 1.4826×MAD) at or above which a
	// loss is a spike (default 8).
	SpikeZ float64
	// SpikeMinSamples is how many losses the window must hold before a spike can be
	// called (default 20).
	SpikeMinSamples int
	// SpikeFloor is the least deviation, as a fraction of the window's median, that can
	// be a spike (default 0.25), so that a nearly constant loss (a tiny MAD) does not
	// turn noise into spikes.
	SpikeFloor float64
	// FlatSteps is N: the loss is flat or rising when the median of the window is not
	// below the window's median of N steps before by three standard errors (default
	// 1000; losses with no step count as one step each).
	FlatSteps int64
	// ScaleMin is the loss scale at or below which a scale that was higher has
	// collapsed (default 1, the min_scale of DeepSpeed and Megatron).
	ScaleMin float64
	// ScaleFall is the factor by which a scale must fall from a level the scaler had
	// grown back to, to be a collapse even above ScaleMin (default 1024 = 2^10).
	ScaleFall float64
	// ThroughputWarmup is how many throughput samples of each attempt are skipped
	// (compilation, cache warm-up) before the baseline (default 5).
	ThroughputWarmup int
	// ThroughputBaseline is how many samples after the warm-up make the attempt's
	// baseline median (default 20).
	ThroughputBaseline int
	// ThroughputRecent is how many newest samples make the recent median (default 5).
	ThroughputRecent int
	// ThroughputRatio: a drop is the recent median below this fraction of the baseline
	// (default 0.5).
	ThroughputRatio float64
	// ThroughputSustain is for how many samples in a row the recent median must stay
	// low (default 3).
	ThroughputSustain int
	// StragglerRatio: an attempt straggles when its median step time is above this
	// multiple of the earlier attempts' (default 1.5).
	StragglerRatio float64
	// StragglerMin is how many samples (after the warm-up) an attempt needs before it
	// is judged against the earlier ones (default 20).
	StragglerMin int
}

func (o DetectorOptions) withDefaults() DetectorOptions {
	set := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setf := func(p *float64, d float64) {
		if *p <= 0 {
			*p = d
		}
	}
	set(&o.LossWindow, 50)
	setf(&o.SpikeZ, 8)
	set(&o.SpikeMinSamples, 20)
	o.SpikeMinSamples = min(o.SpikeMinSamples, o.LossWindow)
	setf(&o.SpikeFloor, 0.25)
	if o.FlatSteps <= 0 {
		o.FlatSteps = 1000
	}
	setf(&o.ScaleMin, 1)
	setf(&o.ScaleFall, 1024)
	set(&o.ThroughputWarmup, 5)
	set(&o.ThroughputBaseline, 20)
	set(&o.ThroughputRecent, 5)
	setf(&o.ThroughputRatio, 0.5)
	set(&o.ThroughputSustain, 3)
	setf(&o.StragglerRatio, 1.5)
	set(&o.StragglerMin, 20)
	return o
}

// maxAttemptsKept bounds the per-attempt medians the straggler check keeps.
const maxAttemptsKept = 32

// Detector watches a run's samples online for the anomalies of api.go. Each Observe
// costs a sort of a fixed window at most; memory is fixed windows plus one number per
// attempt (the last 32). It reads only the samples' own Step and Time, never the
// clock, so the same series always gives the same anomalies. Each kind reports once
// per episode and re-arms only after the metric recovers. Not safe for concurrent
// use: one goroutine feeds it.
type Detector struct {
	opt     DetectorOptions
	attempt int
	scratch []float64

	// loss
	loss       ring
	lossStep   int64 // steps of losses without one: a count
	spiking    bool
	spikeBase  float64 // median when the spike began
	spikeScale float64 // its robust scale
	spikeLen   int
	marks      []mark // medians every N/8 steps over the last N
	flat       bool
	flatAt     float64 // the median when flat was reported

	// loss scale
	scalePrev      float64
	scaleGrownPeak float64 // the highest scale the scaler grew back to
	scalePeak      float64
	collapsed      bool
	collapsedAt    float64

	// throughput, one tracker per metric; one drop or straggler at a time among them
	rates        [2]rateTracker
	dropBy       int // index+1 of the tracker whose drop is active, 0 if none
	straggledRun int // the attempt a straggler was reported for
}

// rateTracker follows one throughput metric as a rate (samples/s, or 1/step time).
type rateTracker struct {
	metric   string
	seen     int // samples this attempt
	baseline []float64
	base     float64 // baseline median, 0 until established
	recent   ring
	low      int // samples in a row with the recent median low
	attemptW ring
	earlier  []float64 // median rate of earlier attempts
}

// NewDetector returns a Detector for attempt 1.
func NewDetector(opt DetectorOptions) *Detector {
	o := opt.withDefaults()
	d := &Detector{opt: o, attempt: 1, scratch: make([]float64, 0, max(o.LossWindow, 64)), marks: make([]mark, 0, flatMarks+1)}
	d.loss = newRing(o.LossWindow)
	for i, m := range [...]string{SamplesPerSecond, StepTime} {
		d.rates[i] = rateTracker{metric: m, recent: newRing(o.ThroughputRecent), attemptW: newRing(64)}
	}
	return d
}

// StartAttempt tells the detector attempt n has begun: the throughput warm-up and
// baseline start over, the attempt's step times are judged against the earlier
// attempts', and the loss scaler (restarted with the process) is followed afresh.
// Observe calls it itself when a sample names a later attempt.
func (d *Detector) StartAttempt(n int) {
	if n == d.attempt {
		return
	}
	d.attempt = n
	for i := range d.rates {
		r := &d.rates[i]
		if r.attemptW.n >= d.opt.StragglerMin/2 && r.attemptW.n > 0 {
			r.earlier = append(r.earlier, r.attemptW.median(&d.scratch))
			if len(r.earlier) > maxAttemptsKept {
				r.earlier = r.earlier[1:]
			}
		}
		r.seen, r.base, r.low = 0, 0, 0
		r.baseline = r.baseline[:0]
		r.recent.reset()
		r.attemptW.reset()
	}
	d.dropBy = 0
	d.scalePrev, d.scaleGrownPeak, d.scalePeak, d.collapsed = 0, 0, 0, false
}

// Observe takes one sample and returns the anomalies it begins, usually none (nil).
func (d *Detector) Observe(s Sample) []Anomaly {
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return nil
	}
	if s.Attempt > d.attempt {
		d.StartAttempt(s.Attempt)
	}
	switch s.Name {
	case Loss:
		return d.observeLoss(s)
	case LossScale:
		return d.observeScale(s)
	case SamplesPerSecond:
		if s.Value > 0 {
			return d.observeRate(0, s, s.Value)
		}
	case StepTime:
		if s.Value > 0 {
			return d.observeRate(1, s, 1/s.Value)
		}
	}
	return nil
}

func (d *Detector) anomaly(s Sample, kind string, baseline float64, msg string) []Anomaly {
	return []Anomaly{{Time: s.Time, Attempt: s.Attempt, Kind: kind, Metric: s.Name, Step: s.Step, Value: s.Value, Baseline: baseline, Message: msg}}
}

func atStep(step int64) string {
	if step < 0 {
		return ""
	}
	return fmt.Sprintf(" at step %d", step)
}

func (d *Detector) observeLoss(s Sample) []Anomaly {
	step := s.Step
	if step < 0 {
		d.lossStep++
		step = d.lossStep
	}
	x := s.Value
	var out []Anomaly
	if d.spiking {
		// The baseline stays frozen through the episode: the spike must not teach the
		// window that high is normal. Recovery is the loss back within half the
		// threshold; a new level held for a whole window is adopted instead.
		d.spikeLen++
		if x-d.spikeBase < d.opt.SpikeZ/2*d.spikeScale {
			d.spiking = false
		} else if d.spikeLen >= d.opt.LossWindow {
			d.spiking = false
			d.loss.reset()
			d.marks = d.marks[:0]
		} else {
			return nil
		}
	}
	if d.loss.n >= d.opt.SpikeMinSamples {
		med := d.loss.median(&d.scratch)
		mad := d.loss.mad(med, &d.scratch)
		scale := math.Max(1.4826*mad, d.opt.SpikeFloor*math.Abs(med)/d.opt.SpikeZ)
		if scale > 0 && x > med && (x-med)/scale >= d.opt.SpikeZ {
			d.spiking, d.spikeBase, d.spikeScale, d.spikeLen = true, med, scale, 0
			return d.anomaly(s, LossSpike, med, fmt.Sprintf("loss spike: loss %.4g%s is %.1f robust deviations above the median %.4g of the last %d losses",
				x, atStep(s.Step), (x-med)/scale, med, d.loss.n))
		}
	}
	d.loss.push(x)
	if d.loss.n < d.opt.SpikeMinSamples {
		return out
	}
	// Flat or rising: the median now is not below the median of N steps ago by more
	// than three standard errors of a median (1.253σ/√n, σ from the MAD), so that
	// noise on a plateau does not pass for progress.
	med := d.loss.median(&d.scratch)
	se := 3 * 1.253 * 1.4826 * d.loss.mad(med, &d.scratch) / math.Sqrt(float64(d.loss.n))
	// A resume from an earlier checkpoint goes back in steps: marks past it are of a
	// future that will be trained again.
	for len(d.marks) > 0 && d.marks[len(d.marks)-1].step > step {
		d.marks = d.marks[:len(d.marks)-1]
	}
	if n := len(d.marks); n == 0 || step >= d.marks[n-1].step+max(d.opt.FlatSteps/flatMarks, 1) {
		if n == flatMarks+1 {
			copy(d.marks, d.marks[1:])
			d.marks = d.marks[:n-1]
		}
		d.marks = append(d.marks, mark{step, med})
	}
	var old *mark
	for i := len(d.marks) - 1; i >= 0; i-- {
		if step-d.marks[i].step >= d.opt.FlatSteps {
			old = &d.marks[i]
			break
		}
	}
	if old == nil {
		return out
	}
	switch {
	case d.flat:
		// Recovery is progress since the report, not a wobble across the threshold.
		if med < min(d.flatAt, old.median)-2*se {
			d.flat = false
		}
	case med >= old.median-se:
		d.flat, d.flatAt = true, med
		return d.anomaly(s, LossFlat, old.median, fmt.Sprintf("loss flat or rising: the median loss %.4g of the last %d%s is not below its %.4g of %d steps before (step %d)",
			med, d.loss.n, atStep(s.Step), old.median, step-old.step, old.step))
	}
	return out
}

// flatMarks is how many medians the flat check keeps across its N steps.
const flatMarks = 8

// mark is the loss window's median at a step.
type mark struct {
	step   int64
	median float64
}

func (d *Detector) observeScale(s Sample) []Anomaly {
	x := s.Value
	prev := d.scalePrev
	d.scalePrev = x
	if prev > 0 && x > prev && x > d.scaleGrownPeak {
		d.scaleGrownPeak = x // the scaler grew: steps without overflow in between
	}
	d.scalePeak = math.Max(d.scalePeak, x)
	if d.collapsed {
		if x >= 16*d.collapsedAt && x > d.opt.ScaleMin {
			d.collapsed = false
			d.scalePeak, d.scaleGrownPeak = x, 0
		}
		return nil
	}
	switch {
	case x <= d.opt.ScaleMin && d.scalePeak > d.opt.ScaleMin:
		d.collapsed, d.collapsedAt = true, x
		return d.anomaly(s, LossScaleCollapse, d.scalePeak, fmt.Sprintf("loss scale collapse: the fp16 loss scale fell to %g%s, its minimum, from %g: gradients overflow at every step",
			x, atStep(s.Step), d.scalePeak))
	case d.scaleGrownPeak > 0 && x <= d.scaleGrownPeak/d.opt.ScaleFall:
		d.collapsed, d.collapsedAt = true, x
		return d.anomaly(s, LossScaleCollapse, d.scaleGrownPeak, fmt.Sprintf("loss scale collapse: the fp16 loss scale fell to %g%s from %g, a fall of 2^%.0f",
			x, atStep(s.Step), d.scaleGrownPeak, math.Log2(d.scaleGrownPeak/x)))
	}
	return nil
}

func (d *Detector) observeRate(i int, s Sample, rate float64) []Anomaly {
	r := &d.rates[i]
	r.seen++
	if r.seen <= d.opt.ThroughputWarmup {
		return nil
	}
	r.attemptW.push(rate)
	r.recent.push(rate)
	var out []Anomaly
	if r.base == 0 {
		r.baseline = append(r.baseline, rate)
		if len(r.baseline) >= d.opt.ThroughputBaseline {
			r.base = medianOf(r.baseline, &d.scratch)
		}
	} else {
		recent := r.recent.median(&d.scratch)
		switch {
		case d.dropBy == i+1 && recent >= (1+d.opt.ThroughputRatio)/2*r.base:
			d.dropBy, r.low = 0, 0 // recovered
		case d.dropBy == 0 && recent < d.opt.ThroughputRatio*r.base:
			r.low++
			if r.low >= d.opt.ThroughputSustain {
				d.dropBy = i + 1
				out = d.anomaly(s, ThroughputDrop, d.shown(i, r.base), fmt.Sprintf("throughput drop: %s%s, %.0f%% of this attempt's baseline %s",
					d.rateText(i, recent), atStep(s.Step), 100*recent/r.base, d.rateText(i, r.base)))
				out[0].Value = d.shown(i, recent)
			}
		default:
			r.low = 0
		}
	}
	if len(r.earlier) > 0 && d.straggledRun != d.attempt && r.attemptW.n >= d.opt.StragglerMin {
		before := medianOf(r.earlier, &d.scratch)
		now := r.attemptW.median(&d.scratch)
		if now*d.opt.StragglerRatio < before {
			d.straggledRun = d.attempt
			a := d.anomaly(s, Straggler, d.shown(i, before), fmt.Sprintf("straggler: attempt %d runs at %s%s against %s in earlier attempts, %.1fx slower",
				s.Attempt, d.rateText(i, now), atStep(s.Step), d.rateText(i, before), before/now))
			a[0].Value = d.shown(i, now)
			out = append(out, a...)
		}
	}
	return out
}

// shown is a rate in the tracker's own unit: samples/s, or seconds per step.
func (d *Detector) shown(i int, rate float64) float64 {
	if d.rates[i].metric == StepTime {
		return 1 / rate
	}
	return rate
}

func (d *Detector) rateText(i int, rate float64) string {
	if d.rates[i].metric == StepTime {
		return fmt.Sprintf("%.3gs/step", 1/rate)
	}
	return fmt.Sprintf("%.4g samples/s", rate)
}

// ring is a fixed window of the newest values.
type ring struct {
	buf  []float64
	next int
	n    int
}

func newRing(size int) ring { return ring{buf: make([]float64, size)} }

func (r *ring) push(x float64) {
	r.buf[r.next] = x
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

func (r *ring) reset() { r.next, r.n = 0, 0 }

func (r *ring) values() []float64 {
	if r.n < len(r.buf) {
		return r.buf[:r.n]
	}
	return r.buf
}

func (r *ring) median(scratch *[]float64) float64 { return medianOf(r.values(), scratch) }

// mad is the median absolute deviation from med.
func (r *ring) mad(med float64, scratch *[]float64) float64 {
	s := (*scratch)[:0]
	for _, v := range r.values() {
		s = append(s, math.Abs(v-med))
	}
	*scratch = s
	return sortedMedian(s)
}

// medianOf sorts a copy of xs in scratch, so that callers' windows keep their order.
func medianOf(xs []float64, scratch *[]float64) float64 {
	s := append((*scratch)[:0], xs...)
	*scratch = s
	return sortedMedian(s)
}

func sortedMedian(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
