package observe

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trainwrap/trainwrap/training"
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
	gpuECC        *eccCounters
	gpuPowerWatts *prometheus.GaugeVec

	// Times are exported as Unix timestamps, never as ages: a textfile that a dead
	// supervisor left behind then still tells how long ago things happened, where an
	// age would stay frozen at its last value (Prometheus' instrumentation guide: "export
	// the Unix timestamp at which it happened, not the time since").
	lastProgress   *prometheus.GaugeVec // no labels: absent until known
	attemptStarted *prometheus.GaugeVec
	ckptTime       *prometheus.GaugeVec
	lastAnomaly    *prometheus.GaugeVec
	lastSample     *prometheus.GaugeVec

	// The training's own metrics, latest value each: one gauge per standard metric
	// (each has one unit, so sum and avg stay meaningful), --metric NAMEs in one vec.
	training  map[string]*prometheus.GaugeVec // no labels: absent until the job prints it
	custom    *prometheus.GaugeVec
	anomalies *prometheus.CounterVec

	mu            sync.Mutex // guards logErrorsSeen
	logErrorsSeen int64
}

// trainingGauges names the gauge of each standard training metric and says what it is.
var trainingGauges = []struct{ metric, name, help string }{
	{training.Loss, "trainwrap_training_loss", "The training loss the job printed last."},
	{training.LearningRate, "trainwrap_training_learning_rate", "The learning rate the job printed last."},
	{training.GradNorm, "trainwrap_training_grad_norm", "The gradient norm the job printed last."},
	{training.LossScale, "trainwrap_training_loss_scale", "The fp16 dynamic loss scale the job printed last."},
	{training.SamplesPerSecond, "trainwrap_training_samples_per_second", "The throughput the job printed last, in samples per second."},
	{training.StepTime, "trainwrap_training_step_time_seconds", "The time per step the job printed last."},
	{training.TotalSteps, "trainwrap_training_total_steps", "The number of steps the job said it will run (HF Trainer's banner, Megatron's iteration N/TOTAL)."},
}

// newMetrics makes the series of one supervisor; version is trainwrap's own ("" = the
// main module's version from the build info).
func newMetrics(version string) *metrics {
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
	m.ckptFreed = f.counter("trainwrap_checkpoint_freed_bytes_total", "Bytes freed by pruning checkpoints.")
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
	m.gpuECC = newECCCounters()
	m.reg.MustRegister(m.gpuECC)
	m.gpuPowerWatts = f.gaugeVec("trainwrap_gpu_power_watts", "GPU power draw (NVML).", gpu...)

	m.lastProgress = f.gaugeVec("trainwrap_last_progress_timestamp_seconds", "When the job last made progress, or when the attempt started while it has made none yet (Unix time).")
	m.attemptStarted = f.gaugeVec("trainwrap_attempt_start_timestamp_seconds", "When the current attempt's child process started (Unix time).")
	m.ckptTime = f.gaugeVec("trainwrap_last_checkpoint_timestamp_seconds", "When the newest complete checkpoint chosen to resume from was written (Unix time).")
	m.lastAnomaly = f.gaugeVec("trainwrap_last_anomaly_timestamp_seconds", "When the training-metrics detector last found an anomaly (Unix time).")
	m.lastSample = f.gaugeVec("trainwrap_training_last_sample_timestamp_seconds", "When the job last printed a training metric that trainwrap read (Unix time).")
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trainwrap_last_update_timestamp_seconds",
		Help: "When the supervisor last wrote these series (the textfile's write, or the scrape); the textfile is rewritten at least every " + textfileHeartbeat.String() + " while trainwrap lives, so an old value means a dead supervisor.",
	}, func() float64 { return unixSeconds(time.Now()) }))

	m.training = map[string]*prometheus.GaugeVec{}
	for _, g := range trainingGauges {
		m.training[g.metric] = f.gaugeVec(g.name, g.help)
	}
	m.custom = f.gaugeVec("trainwrap_training_custom_metric", "The value a --metric NAME=REGEX read last, by NAME (in the job's own unit).", "name")
	m.anomalies = f.counterVec("trainwrap_anomalies_total", "Anomalies the training-metrics detector found, by kind.", "kind")

	v, goVersion := buildVersion(version)
	f.gaugeVec("trainwrap_build_info", "Always 1; the labels say which trainwrap this is.", "version", "goversion").WithLabelValues(v, goVersion).Set(1)
	return m
}

// buildVersion is version, or the main module's version from the build info, and the
// Go release it was built with.
func buildVersion(version string) (string, string) {
	if version == "" {
		version = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	return version, runtime.Version()
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

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

// setTime sets a label-less timestamp gauge, which is absent until first set: 0 would
// read as 1970 to a rule like time() - x > 600.
func setTime(g *prometheus.GaugeVec, t time.Time) {
	g.WithLabelValues().Set(unixSeconds(t))
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
		setTime(m.attemptStarted, e.Time)
		// The stall clock starts with the attempt.
		setTime(m.lastProgress, e.Time)
	case Progress:
		t := e.LastProgress
		if t.IsZero() {
			t = e.Time
		}
		setTime(m.lastProgress, t)
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
				setTime(m.ckptTime, e.CheckpointTime)
			}
		}
		if e.Pruned > 0 {
			m.ckptPruned.Add(float64(e.Pruned))
		}
		if e.BytesFreed > 0 {
			m.ckptFreed.Add(float64(e.BytesFreed))
		}
	case Metrics:
		m.applyTraining(e.Samples)
	case Anomaly:
		if a := e.Anomaly; a != nil {
			m.anomalies.WithLabelValues(orUnknown(a.Kind)).Inc()
			t := a.Time
			if t.IsZero() {
				t = e.Time
			}
			setTime(m.lastAnomaly, t)
		}
	}
}

// applyTraining sets the training gauges to the latest sample of each metric. The
// samples of one event come from one line, so the last one of a name wins.
func (m *metrics) applyTraining(ss []training.Sample) {
	var newest time.Time
	for _, s := range ss {
		if g, ok := m.training[s.Name]; ok {
			g.WithLabelValues().Set(s.Value)
		} else if s.Name != "" {
			m.custom.WithLabelValues(s.Name).Set(s.Value)
		}
		if s.Time.After(newest) {
			newest = s.Time
		}
	}
	if !newest.IsZero() {
		setTime(m.lastSample, newest)
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
		m.gpuECC.set(itoa(g.Index), g.UUID, g.ECCUncorrected)
		m.gpuPowerWatts.With(l).Set(float64(g.PowerMW) / 1000)
	}
}

// eccCounters exports NVML's volatile uncorrected-ECC count as the counter it is
// (trainwrap_gpu_ecc_uncorrected_errors_total): NVML gives the running total, which
// client_golang's Counter cannot be set to, and a driver reload resets it, which is
// what counters may do.
type eccCounters struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	vals map[[2]string]float64 // {gpu, uuid} → count
}

func newECCCounters() *eccCounters {
	return &eccCounters{
		desc: prometheus.NewDesc("trainwrap_gpu_ecc_uncorrected_errors_total",
			"Uncorrected ECC errors since the driver loaded (NVML's volatile counter; it resets when the driver reloads).",
			[]string{"gpu", "uuid"}, nil),
		vals: map[[2]string]float64{},
	}
}

func (c *eccCounters) set(gpu, uuid string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vals[[2]string{gpu, uuid}] = float64(n)
}

// Describe implements prometheus.Collector.
func (c *eccCounters) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *eccCounters) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.vals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, v, k[0], k[1])
	}
}
