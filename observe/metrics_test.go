package observe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/training"
)

// trainingEvents are what a job that prints its loss and throughput, and goes bad
// twice, publishes after crashAndRestart's events.
func trainingEvents(t0 time.Time) []Event {
	s := func(dt time.Duration, step int64, name string, v float64) training.Sample {
		return training.Sample{Time: t0.Add(dt), Attempt: 2, Step: step, Name: name, Value: v}
	}
	return []Event{
		{Kind: Metrics, Time: t0.Add(5 * time.Second), Attempt: 2, Samples: []training.Sample{
			s(5*time.Second, 210, training.Loss, 2.5), s(5*time.Second, 210, training.LearningRate, 3e-4),
			s(5*time.Second, 210, training.SamplesPerSecond, 812), s(5*time.Second, 210, training.StepTime, 0.31),
		}},
		{Kind: Metrics, Time: t0.Add(6 * time.Second), Attempt: 2, Samples: []training.Sample{
			s(6*time.Second, 220, training.Loss, 2.25), s(6*time.Second, 220, training.GradNorm, 1.5),
			s(6*time.Second, 220, training.LossScale, 65536), s(6*time.Second, 220, "tokens_per_gpu", 4096),
		}},
		{Kind: Anomaly, Time: t0.Add(7 * time.Second), Attempt: 2, Anomaly: &training.Anomaly{Time: t0.Add(7 * time.Second), Attempt: 2,
			Kind: training.LossSpike, Metric: training.Loss, Step: 230, Value: 9, Baseline: 2.3, Message: "loss 9 is 12 MADs above the median 2.3"}},
		{Kind: Anomaly, Time: t0.Add(8 * time.Second), Attempt: 2, Anomaly: &training.Anomaly{Time: t0.Add(8 * time.Second), Attempt: 2,
			Kind: training.ThroughputDrop, Metric: training.SamplesPerSecond, Step: 240, Value: 390, Baseline: 810, Message: "throughput halved"}},
		{Kind: Anomaly, Time: t0.Add(9 * time.Second), Attempt: 2, Anomaly: &training.Anomaly{Time: t0.Add(9 * time.Second), Attempt: 2,
			Kind: training.LossSpike, Metric: training.Loss, Step: 250, Value: 8, Baseline: 2.3, Message: "again"}},
	}
}

// TestTrainingMetrics: the latest value of each training metric is a gauge of its own
// (a --metric NAME in trainwrap_training_custom_metric), anomalies are counted by kind,
// and both outputs carry them.
func TestTrainingMetrics(t *testing.T) {
	dir := t.TempDir()
	textfile := filepath.Join(dir, "trainwrap.prom")
	o, err := New(context.Background(), Options{MetricsAddr: "127.0.0.1:0", MetricsTextfile: textfile, Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, e := range append(crashAndRestart(t0, filepath.Join(dir, "checkpoint-200")), trainingEvents(t0)...) {
		o.Publish(e)
	}
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"trainwrap_training_loss", nil, 2.25},
		{"trainwrap_training_learning_rate", nil, 3e-4},
		{"trainwrap_training_grad_norm", nil, 1.5},
		{"trainwrap_training_loss_scale", nil, 65536},
		{"trainwrap_training_samples_per_second", nil, 812},
		{"trainwrap_training_step_time_seconds", nil, 0.31},
		{"trainwrap_training_custom_metric", map[string]string{"name": "tokens_per_gpu"}, 4096},
		{"trainwrap_training_last_sample_timestamp_seconds", nil, unixSeconds(t0.Add(6 * time.Second))},
		{"trainwrap_anomalies_total", map[string]string{"kind": training.LossSpike}, 2},
		{"trainwrap_anomalies_total", map[string]string{"kind": training.ThroughputDrop}, 1},
		{"trainwrap_last_anomaly_timestamp_seconds", nil, unixSeconds(t0.Add(9 * time.Second))},
		{"trainwrap_build_info", map[string]string{"version": "v1.2.3"}, 1},
	}
	if err := o.Close(); err != nil { // the textfile's last write holds every event
		t.Fatal(err)
	}
	b, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	for name, mfs := range map[string]map[string]*dto.MetricFamily{"registry": gather(t, o.m), "textfile": parseMetrics(t, string(b))} {
		for _, w := range want {
			if got, ok := value(mfs, w.name, w.labels); !ok || got != w.value {
				t.Errorf("%s: %s%v = %v (present %v), want %v", name, w.name, w.labels, got, ok, w.value)
			}
		}
		if _, ok := value(mfs, "trainwrap_training_custom_metric", map[string]string{"name": training.Loss}); ok {
			t.Errorf("%s: the loss is also in trainwrap_training_custom_metric", name)
		}
	}
	// A metric the job never printed is absent, not 0: a loss scale of 0 would read
	// as a collapsed one.
	o2, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	o2.Publish(Event{Kind: Metrics, Attempt: 1, Samples: []training.Sample{{Time: t0, Attempt: 1, Step: 1, Name: training.Loss, Value: 3}}})
	mfs := gather(t, o2.m)
	if v, ok := value(mfs, "trainwrap_training_loss", nil); !ok || v != 3 {
		t.Errorf("trainwrap_training_loss = %v (present %v), want 3", v, ok)
	}
	if _, ok := value(mfs, "trainwrap_training_loss_scale", nil); ok {
		t.Errorf("trainwrap_training_loss_scale is exported though no loss scale was printed")
	}
}

// TestPromtoolCheckMetrics runs Prometheus' own linter on both outputs, the live
// /metrics scrape and the textfile, with every series present: the training metrics,
// anomalies, GPU series, checkpoint counters.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testkit.NeedTool(t, "promtool", "prometheus")
	dir := t.TempDir()
	textfile := filepath.Join(dir, "trainwrap.prom")
	o, err := New(context.Background(), Options{MetricsAddr: "127.0.0.1:0", MetricsTextfile: textfile})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	t0 := time.Now().Add(-time.Minute)
	for _, e := range append(crashAndRestart(t0, filepath.Join(dir, "checkpoint-200")), trainingEvents(t0)...) {
		o.Publish(e)
	}
	o.m.applySample(Sample{Time: t0, MemTotal: 64 << 30, MemAvailable: 32 << 30, Disks: []Disk{{Path: dir, Free: 1 << 30}},
		GPUs: []GPU{{Index: 0, UUID: "GPU-a", TempC: 70, MemUsed: 1 << 30, MemTotal: 80 << 30, UtilPct: 97, ECCUncorrected: 1, PowerMW: 300000}}})
	live := scrape(t, o.Addr())
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, text string
	}{
		{"/metrics", live},
		{"textfile", string(file)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, must := range []string{"trainwrap_training_loss ", "trainwrap_anomalies_total{", "trainwrap_gpu_ecc_uncorrected_errors_total{",
				"trainwrap_checkpoint_freed_bytes_total ", "trainwrap_build_info{", "trainwrap_last_update_timestamp_seconds "} {
				if !strings.Contains(tc.text, must) {
					t.Errorf("no %q series to check", must)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
			cmd.Stdin = strings.NewReader(tc.text)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out.String())
			}
		})
	}
}

// TestTextfileHeartbeat: with no event at all, the textfile is still rewritten, so its
// trainwrap_last_update_timestamp_seconds keeps up while the supervisor lives.
func TestTextfileHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trainwrap.prom")
	m := newMetrics("")
	tf := newTextfile(path, m, func(msg string) { t.Errorf("report: %s", msg) })
	tf.heartbeat = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	go tf.run(ctx)
	defer func() { cancel(); <-tf.done }()
	start := unixSeconds(time.Now())
	testkit.Eventually(t, time.Minute, "a rewrite without events", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		v, _ := value(parseMetrics(t, string(b)), "trainwrap_last_update_timestamp_seconds", nil)
		return v > start
	})
}
