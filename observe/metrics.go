package observe

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series of one supervisor, on a private registry so that
// nothing else in the process (or a second Observer in a test) can collide with them.
type metrics struct {
	reg *prometheus.Registry

	up            prometheus.Gauge
	attempt       prometheus.Gauge
	restarts      prometheus.Counter
	crashes       *prometheus.CounterVec
	lastExitCode  prometheus.Gauge
	step          prometheus.Gauge
	ckptStep      prometheus.Gauge
	ckptPruned    prometheus.Counter
	ckptFreed     prometheus.Counter
	logErrors     prometheus.Counter
	stallTimeout  prometheus.Gauge
	dropped       *prometheus.CounterVec
	notifyFailed  *prometheus.CounterVec
	hostMemTotal  prometheus.Gauge
	hostMemAvail  prometheus.Gauge
	diskFree      *prometheus.GaugeVec
	gpuTemp       *prometheus.GaugeVec
	gpuMemUsed    *prometheus.GaugeVec
	gpuMemTotal   *prometheus.GaugeVec
	gpuUtil       *prometheus.GaugeVec
	gpuECC        *prometheus.GaugeVec
	gpuPowerWatts *prometheus.GaugeVec

	// Unix nanoseconds; 0 = not known. Read by the GaugeFuncs at scrape time, so that
	// the age keeps growing between events, which is what a stall alert needs.
	lastProgress   atomic.Int64
	attemptStarted atomic.Int64
	ckptTime       atomic.Int64

	mu            sync.Mutex // guards logErrorsSeen
	logErrorsSeen int64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}
	m.up = f.gauge("trainwrap_job_up", "1 while the job's child process runs, 0 otherwise.")
	m.attempt = f.gauge("trainwrap_attempt", "The current attempt, from 1.")
	m.restarts = f.counter("trainwrap_restarts_total", "Restarts scheduled by the supervisor.")
	m.crashes = f.counterVec("trainwrap_crashes_total", "Attempts that exited non-zero or by a signal, by crash class.", "class")
	m.lastExitCode = f.gauge("trainwrap_last_exit_code", "Exit code of the last attempt; -1 when it was killed by a signal.")
	m.step = f.gauge("trainwrap_step", "The job's current training step (from --progress-regex).")
	m.ckptStep = f.gauge("trainwrap_last_checkpoint_step", "Step of the newest complete checkpoint chosen to resume from.")
	m.ckptPruned = f.counter("trainwrap_checkpoints_pruned_total", "Checkpoints pruned by retention.")
	m.ckptFreed = f.counter("trainwrap_checkpoint_bytes_freed_total", "Bytes freed by pruning checkpoints.")
	m.logErrors = f.counter("trainwrap_log_write_errors_total", "Writes to the job's log file that failed (the job keeps running).")
	m.stallTimeout = f.gauge("trainwrap_stall_timeout_seconds", "The stall timeout: no progress for this long is a hang.")
	m.dropped = f.counterVec("trainwrap_observe_dropped_total", "Events not delivered to a sink because its queue was full.", "sink")
	m.notifyFailed = f.counterVec("trainwrap_notify_failures_total", "Notifications that failed after every retry.", "sink")
	m.hostMemTotal = f.gauge("trainwrap_host_memory_total_bytes", "Host memory (MemTotal), from the last resource sample.")
	m.hostMemAvail = f.gauge("trainwrap_host_memory_available_bytes", "Host memory available (MemAvailable), from the last resource sample.")
	m.diskFree = f.gaugeVec("trainwrap_disk_free_bytes", "Free bytes, for unprivileged users, of the filesystem holding path.", "path")
	gpu := []string{"gpu", "uuid"}
	m.gpuTemp = f.gaugeVec("trainwrap_gpu_temperature_celsius", "GPU core temperature (NVML).", gpu...)
	m.gpuMemUsed = f.gaugeVec("trainwrap_gpu_memory_used_bytes", "GPU memory used (NVML).", gpu...)
	m.gpuMemTotal = f.gaugeVec("trainwrap_gpu_memory_total_bytes", "GPU memory in all (NVML).", gpu...)
	m.gpuUtil = f.gaugeVec("trainwrap_gpu_utilization_ratio", "GPU busy fraction over the last sample period (NVML).", gpu...)
	m.gpuECC = f.gaugeVec("trainwrap_gpu_ecc_uncorrected_errors", "Uncorrected ECC errors since the driver loaded (NVML, volatile counter).", gpu...)
	m.gpuPowerWatts = f.gaugeVec("trainwrap_gpu_power_watts", "GPU power draw (NVML).", gpu...)

	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trainwrap_seconds_since_progress",
		Help: "Seconds since the job last made progress, or since the attempt started when it has made none yet; 0 before the first attempt.",
	}, m.secondsSinceProgress))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trainwrap_last_checkpoint_age_seconds",
		Help: "Age of the newest complete checkpoint chosen to resume from; -1 while none is known.",
	}, m.checkpointAge))
	return m
}

// factory registers each metric as it is made, so a name cannot be declared and then
// forgotten.
type factory struct{ reg *prometheus.Registry }

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (m *metrics) secondsSinceProgress() float64 {
	t := m.lastProgress.Load()
	if t == 0 {
		t = m.attemptStarted.Load()
	}
	if t == 0 {
		return 0
	}
	return time.Since(time.Unix(0, t)).Seconds()
}

func (m *metrics) checkpointAge() float64 {
	t := m.ckptTime.Load()
	if t == 0 {
		return -1
	}
	return time.Since(time.Unix(0, t)).Seconds()
}

// apply updates the series from one event. It only touches atomics and the client
// library's lock-free or briefly locked values, so Publish can call it inline.
func (m *metrics) apply(e Event) {
	if e.Attempt > 0 {
		m.attempt.Set(float64(e.Attempt))
	}
	if e.StallTimeout > 0 {
		m.stallTimeout.Set(e.StallTimeout.Seconds())
	}
	m.addLogErrors(e.LogWriteErrors)
	switch e.Kind {
	case Started:
		m.up.Set(1)
		m.attemptStarted.Store(e.Time.UnixNano())
		m.lastProgress.Store(0)
	case Progress:
		t := e.LastProgress
		if t.IsZero() {
			t = e.Time
		}
		m.lastProgress.Store(t.UnixNano())
		if e.Step > 0 {
			m.step.Set(float64(e.Step))
		}
	case Exited:
		m.up.Set(0)
		m.lastExitCode.Set(float64(e.ExitCode))
		if e.crashed() {
			m.crashes.WithLabelValues(orUnknown(e.Class)).Inc()
		}
		if e.Step > 0 {
			m.step.Set(float64(e.Step))
		}
	case Restarting:
		m.restarts.Inc()
	case Succeeded, GaveUp, Stopped:
		m.up.Set(0)
		if e.Step > 0 {
			m.step.Set(float64(e.Step))
		}
	case Checkpoints:
		if e.CheckpointPath != "" {
			m.ckptStep.Set(float64(e.CheckpointStep))
			if !e.CheckpointTime.IsZero() {
				m.ckptTime.Store(e.CheckpointTime.UnixNano())
			}
		}
		if e.Pruned > 0 {
			m.ckptPruned.Add(float64(e.Pruned))
		}
		if e.BytesFreed > 0 {
			m.ckptFreed.Add(float64(e.BytesFreed))
		}
	}
}

// addLogErrors turns the running total that events carry into counter increments.
func (m *metrics) addLogErrors(total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if total > m.logErrorsSeen {
		m.logErrors.Add(float64(total - m.logErrorsSeen))
		m.logErrorsSeen = total
	}
}

// applySample sets the resource gauges from one sample.
func (m *metrics) applySample(s Sample) {
	if s.MemTotal > 0 {
		m.hostMemTotal.Set(float64(s.MemTotal))
		m.hostMemAvail.Set(float64(s.MemAvailable))
	}
	for _, d := range s.Disks {
		m.diskFree.WithLabelValues(d.Path).Set(float64(d.Free))
	}
	for _, g := range s.GPUs {
		l := prometheus.Labels{"gpu": itoa(g.Index), "uuid": g.UUID}
		m.gpuTemp.With(l).Set(float64(g.TempC))
		m.gpuMemUsed.With(l).Set(float64(g.MemUsed))
		m.gpuMemTotal.With(l).Set(float64(g.MemTotal))
		m.gpuUtil.With(l).Set(float64(g.UtilPct) / 100)
		m.gpuECC.With(l).Set(float64(g.ECCUncorrected))
		m.gpuPowerWatts.With(l).Set(float64(g.PowerMW) / 1000)
	}
}
