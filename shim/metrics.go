package shim

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// What --on-anomaly does.
const (
	AnomalyWarn    = "warn"    // say it, record it, notify; the job runs on
	AnomalyRestart = "restart" // and stop the attempt, resuming from a checkpoint before it
)

// LineRecognizer reads training metrics (loss, learning rate, throughput, ...) from
// one line of output: training's Recognizer is one. It appends what it found to dst
// and returns it; step is the job's global step as the supervisor knows it, -1 when
// unknown. Calls are serialised; the line is valid only during the call.
type LineRecognizer interface {
	Recognize(dst []training.Sample, line []byte, step int64, attempt int, now time.Time) []training.Sample
}

// AnomalyDetector judges the samples of a run as they come: training's Detector is one.
// Only the lifecycle loop calls it.
type AnomalyDetector interface {
	// StartAttempt tells it that attempt n begins: baselines of the run stay, the
	// window of the last attempt does not.
	StartAttempt(n int)
	Observe(s training.Sample) []training.Anomaly
}

// SeriesSink keeps the samples in the run dir's metrics.jsonl, bounded: training's
// SeriesWriter is one. Only the lifecycle loop calls it.
type SeriesSink interface {
	Append(samples []training.Sample) error
	Close() error
}

// TrainingOptions wire the training metrics into the supervisor. The zero value reads
// no metrics and finds no anomalies.
type TrainingOptions struct {
	// NewRecognizer makes one attempt's recogniser; nil reads no metrics.
	NewRecognizer func() LineRecognizer
	// Detector judges the samples; nil finds no anomalies.
	Detector AnomalyDetector
	// OpenSeries opens the series file at path; nil keeps no series.
	OpenSeries func(path string) (SeriesSink, error)
	// OnAnomaly is AnomalyWarn ("" too) or AnomalyRestart.
	OnAnomaly string
}

// maxPendingSamples bounds the samples read from the output and not yet taken by the
// loop: a job that prints metrics faster than the loop runs loses the oldest, counted,
// never memory.
const maxPendingSamples = 4096

// metricsTap is the line observer that hands each line to the recogniser. It runs on
// the output path, under the tee's lock, so it only recognises and queues; writing,
// publishing and judging happen in the lifecycle loop, woken by ready.
type metricsTap struct {
	rec     LineRecognizer
	step    *atomic.Int64
	attempt int
	// read is when the tee read the output the line came in (unix nanos): the time of
	// the samples, with no clock read per line.
	read  *atomic.Int64
	ready chan struct{}

	mu      sync.Mutex
	pending []training.Sample
	dropped int64
	// last is the previous piece seen: a bar redrawn with \r reaches the segment
	// observer again, unchanged, when its line ends.
	last []byte
}

func newMetricsTap(rec LineRecognizer, step, read *atomic.Int64, attempt int) *metricsTap {
	return &metricsTap{rec: rec, step: step, read: read, attempt: attempt, ready: make(chan struct{}, 1)}
}

// ObserveLine recognises the metrics of one line (or one \r-redrawn piece of one).
func (m *metricsTap) ObserveLine(line []byte) {
	if len(line) == 0 || bytes.Equal(line, m.last) {
		return
	}
	m.last = append(m.last[:0], line...)
	m.mu.Lock()
	n := len(m.pending)
	m.pending = m.rec.Recognize(m.pending, line, m.step.Load(), m.attempt, time.Unix(0, m.read.Load()))
	added := len(m.pending) > n
	if len(m.pending) > maxPendingSamples {
		// The oldest half at once, so that a loop busy elsewhere (a teardown while
		// the job still prints) costs the output path one copy per half, not per line.
		over := len(m.pending) - maxPendingSamples/2
		m.dropped += int64(over)
		m.pending = append(m.pending[:0], m.pending[over:]...)
	}
	m.mu.Unlock()
	if added {
		select {
		case m.ready <- struct{}{}:
		default:
		}
	}
}

// take returns the pending samples and how many were dropped since the last take.
// The slice is the caller's: it goes out with an event.
func (m *metricsTap) take() ([]training.Sample, int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out, d := m.pending, m.dropped
	m.pending, m.dropped = nil, 0
	return out, d
}

// segmentTap runs the step observer first, so that a line naming its own step gives
// its samples that step, then the metrics tap.
type segmentTap struct {
	step, metrics LineObserver
}

// ObserveLine hands the line to both, in order.
func (t segmentTap) ObserveLine(line []byte) {
	t.step.ObserveLine(line)
	t.metrics.ObserveLine(line)
}

// metricsC is the channel that says samples wait; nil between attempts and without
// a recogniser.
func (a *attemptState) metricsC() <-chan struct{} {
	if a == nil || a.tap == nil {
		return nil
	}
	return a.tap.ready
}

// openSeries opens metrics.jsonl once per run; a failure is said once and the run
// goes on without it.
func (s *supervisor) openSeries() {
	if s.o.Training.OpenSeries == nil || s.o.Training.NewRecognizer == nil {
		return
	}
	w, err := s.o.Training.OpenSeries(s.dir.Series())
	if err != nil {
		s.logf("warning: metrics: %v; training metrics are not kept in the run dir, the job goes on", err)
		return
	}
	s.series = w
}

// closeSeries flushes and closes metrics.jsonl.
func (s *supervisor) closeSeries() {
	if s.series == nil {
		return
	}
	if err := s.series.Close(); err != nil {
		s.logf("warning: metrics: %v", err)
	}
}

// onMetrics takes the samples the output held: each goes to metrics.jsonl and the
// detector, all of them out as one event. An anomaly is said, recorded and published;
// under --on-anomaly restart the first one stops the attempt (act false: it is over
// already).
func (a *attemptState) onMetrics(act bool) {
	if a.tap == nil {
		return
	}
	s := a.s
	samples, dropped := a.tap.take()
	if dropped > 0 {
		a.metricsDropped += dropped
		if !a.warnedDropped {
			a.warnedDropped = true
			s.logf("warning: metrics: the job prints metrics faster than they can be kept; %d samples dropped so far (the log has every line)", a.metricsDropped)
		}
	}
	if len(samples) == 0 {
		return
	}
	if s.series != nil {
		if err := s.series.Append(samples); err != nil {
			s.seriesErrors++
			s.state.MetricsWriteErrors = s.seriesErrors
			if s.seriesErrors == 1 {
				s.logf("warning: metrics: %v; the job goes on, failed writes are counted", err)
			}
		}
	}
	if d := s.o.Training.Detector; d != nil {
		for _, smp := range samples {
			for _, an := range d.Observe(smp) {
				a.onAnomaly(an, act)
			}
		}
	}
	s.publish(observe.Event{Kind: observe.Metrics, Samples: samples, Step: s.step.Load()})
}

// onAnomaly handles one finding of the detector.
func (a *attemptState) onAnomaly(an training.Anomaly, act bool) {
	s := a.s
	if an.Attempt == 0 {
		an.Attempt = s.state.Attempt
	}
	if an.Time.IsZero() {
		an.Time = time.Now()
	}
	s.logf("anomaly: %s", anomalyText(an))
	if len(a.res.anomalies) < rundir.MaxRecordAnomalies {
		a.res.anomalies = append(a.res.anomalies, an)
	} else {
		a.res.anomaliesDropped++
	}
	s.state.AddAnomaly(an)
	s.writeState()
	ev := an
	s.publish(observe.Event{Kind: observe.Anomaly, Anomaly: &ev, Step: an.Step, Message: anomalyText(an)})
	if !act || s.o.Training.OnAnomaly != AnomalyRestart || a.stopping {
		return
	}
	a.res.anomalyStop = &ev
	s.logf("--on-anomaly restart: stopping attempt %d (SIGKILL in %s), to resume from a checkpoint saved before step %d", s.state.Attempt, s.o.StopTimeout, an.Step)
	s.state.Status = rundir.StatusStopping
	s.writeState()
	a.startStop(syscall.SIGTERM)
}

// anomalyText is the anomaly's sentence; the detector's names its kind and step.
func anomalyText(an training.Anomaly) string {
	if an.Message != "" {
		return an.Message
	}
	return fmt.Sprintf("%s at step %d: %s = %g, baseline %g", an.Kind, an.Step, an.Metric, an.Value, an.Baseline)
}

// anomalyVerdict classifies an attempt that --on-anomaly restart stopped. DESIGN's
// class table is fixed and has no row for a job that went bad without crashing, so
// unless the output names a crash of its own (root cause wins) it is unknown: exit
// code 85, retryable, the one class that claims no cause. The suggestion, the record's
// anomalies and the decision's reason name the anomaly.
func (a *attemptState) anomalyVerdict() {
	an := a.res.anomalyStop
	v := &a.res.verdict
	if an == nil || v.Class == classify.None {
		return // not stopped for an anomaly, or it exited 0 anyway: success
	}
	if v.Class != classify.Unknown && len(v.Evidence) > 0 {
		return
	}
	info := classify.Lookup(classify.Unknown)
	*v = classify.Verdict{
		Class:     classify.Unknown,
		Retryable: info.Retryable,
		ExitCode:  info.ExitCode,
		Suggestion: fmt.Sprintf("trainwrap stopped the job for an anomaly (--on-anomaly restart): %s. Look at the run dir's %s around step %d; if it comes back from the same checkpoint, lower the learning rate or skip the data near that step.",
			anomalyText(*an), training.SeriesFile, an.Step),
	}
}
