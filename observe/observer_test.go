package observe

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseMetrics parses the Prometheus text format with the ecosystem's own parser.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return mfs
}

// value is the value of the series name{labels} in mfs, and whether it exists.
func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// gather collects m's registry as scraped.
func gather(t *testing.T, m *metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// crashAndRestart is the event sequence of a job that ran, made progress, hit a CUDA
// OOM, was restarted and is running again.
func crashAndRestart(t0 time.Time, ckpt string) []Event {
	return []Event{
		{Kind: Started, Time: t0, RunID: "r1", Attempt: 1, PID: 100, StallTimeout: 10 * time.Minute},
		{Kind: Progress, Time: t0.Add(time.Second), Attempt: 1, Step: 100, LastProgress: t0.Add(time.Second)},
		{Kind: Progress, Time: t0.Add(2 * time.Second), Attempt: 1, Step: 200, LastProgress: t0.Add(2 * time.Second), LogWriteErrors: 3},
		{Kind: Exited, Time: t0.Add(3 * time.Second), Attempt: 1, PID: 100, Class: "cuda_oom", ExitCode: 1, Step: 230, Retryable: true,
			Evidence: []string{"torch.OutOfMemoryError: CUDA out of memory"}, Suggestion: "Lower the batch size.", LogWriteErrors: 5},
		{Kind: Checkpoints, Time: t0.Add(3 * time.Second), Attempt: 1, CheckpointStep: 200, CheckpointPath: ckpt, Pruned: 2, BytesFreed: 4096},
		{Kind: Restarting, Time: t0.Add(3 * time.Second), Attempt: 1, Backoff: time.Second, Restarts: 1, Class: "cuda_oom"},
		{Kind: Started, Time: t0.Add(4 * time.Second), Attempt: 2, PID: 101},
	}
}

func TestMetricsAfterCrashAndRestart(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoint-200")
	if err := os.Mkdir(ckpt, 0o755); err != nil {
		t.Fatal(err)
	}
	ckptTime := time.Now().Add(-time.Hour)
	if err := os.Chtimes(ckpt, ckptTime, ckptTime); err != nil {
		t.Fatal(err)
	}
	textfile := filepath.Join(dir, "trainwrap.prom")
	o, err := New(context.Background(), Options{MetricsAddr: "127.0.0.1:0", MetricsTextfile: textfile})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for _, e := range crashAndRestart(t0, ckpt) {
		o.Publish(e)
	}

	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"trainwrap_job_up", nil, 1},
		{"trainwrap_attempt", nil, 2},
		{"trainwrap_restarts_total", nil, 1},
		{"trainwrap_crashes_total", map[string]string{"class": "cuda_oom"}, 1},
		{"trainwrap_last_exit_code", nil, 1},
		{"trainwrap_step", nil, 230},
		{"trainwrap_last_checkpoint_step", nil, 200},
		{"trainwrap_checkpoints_pruned_total", nil, 2},
		{"trainwrap_checkpoint_freed_bytes_total", nil, 4096},
		{"trainwrap_log_write_errors_total", nil, 5},
		{"trainwrap_stall_timeout_seconds", nil, 600},
	}
	check := func(t *testing.T, mfs map[string]*dto.MetricFamily) {
		t.Helper()
		for _, w := range want {
			got, ok := value(mfs, w.name, w.labels)
			if !ok || got != w.value {
				t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
			}
		}
		// The attempt started at t0+4s and has made no progress yet: the stall
		// clock is the attempt's start, as a timestamp that a dead supervisor's file
		// keeps telling the truth with.
		for _, name := range []string{"trainwrap_last_progress_timestamp_seconds", "trainwrap_attempt_start_timestamp_seconds"} {
			if got, _ := value(mfs, name, nil); got != unixSeconds(t0.Add(4*time.Second)) {
				t.Errorf("%s = %v, want %v", name, got, unixSeconds(t0.Add(4*time.Second)))
			}
		}
		if got, _ := value(mfs, "trainwrap_last_update_timestamp_seconds", nil); math.Abs(got-unixSeconds(time.Now())) > 600 {
			t.Errorf("trainwrap_last_update_timestamp_seconds = %v, want about now", got)
		}
		if got, _ := value(mfs, "trainwrap_build_info", map[string]string{"goversion": runtime.Version()}); got != 1 {
			t.Errorf("trainwrap_build_info{goversion=%s} = %v, want 1", runtime.Version(), got)
		}
		if _, ok := mfs["trainwrap_gpu_temperature_celsius"]; ok {
			t.Errorf("GPU series without a GPU sampler")
		}
	}

	t.Run("/metrics", func(t *testing.T) {
		mfs := parseMetrics(t, scrape(t, o.Addr()))
		check(t, mfs)
		// The checkpoint's time comes from its mtime, read off the supervisor's path.
		deadline := time.Now().Add(time.Minute)
		for {
			ts, _ := value(parseMetrics(t, scrape(t, o.Addr())), "trainwrap_last_checkpoint_timestamp_seconds", nil)
			if math.Abs(ts-unixSeconds(ckptTime)) < 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("trainwrap_last_checkpoint_timestamp_seconds = %v, want %v", ts, unixSeconds(ckptTime))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("textfile", func(t *testing.T) {
		// Non-progress events are written at once, but on the writer's goroutine.
		deadline := time.Now().Add(time.Minute)
		for {
			b, err := os.ReadFile(textfile)
			if err == nil {
				mfs := parseMetrics(t, string(b))
				if v, _ := value(mfs, "trainwrap_attempt", nil); v == 2 {
					check(t, mfs)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("textfile never showed attempt 2: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Close writes the final state: the job is down after it gave up. A stop the
		// user asked for is not a crash.
		o.Publish(Event{Kind: Exited, Attempt: 2, Class: "unknown", ExitCode: -1, Signal: "SIGTERM", StopRequested: true})
		o.Publish(Event{Kind: Exited, Attempt: 2, Class: "nan_divergence", ExitCode: 1})
		o.Publish(Event{Kind: GaveUp, Attempt: 2, Class: "nan_divergence", ExitCode: 80})
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(textfile)
		if err != nil {
			t.Fatal(err)
		}
		mfs := parseMetrics(t, string(b))
		for _, w := range []struct {
			name   string
			labels map[string]string
			value  float64
		}{
			{"trainwrap_job_up", nil, 0},
			{"trainwrap_crashes_total", map[string]string{"class": "nan_divergence"}, 1},
			{"trainwrap_crashes_total", map[string]string{"class": "cuda_oom"}, 1},
			{"trainwrap_crashes_total", map[string]string{"class": "unknown"}, 0},
		} {
			// A series that was never touched is absent, which is how 0 looks here.
			if got, ok := value(mfs, w.name, w.labels); got != w.value || (!ok && w.value != 0) {
				t.Errorf("after Close: %s%v = %v, want %v", w.name, w.labels, got, w.value)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".trainwrap.prom.tmp-*")); len(left) > 0 {
			t.Errorf("temporary files left behind: %v", left)
		}
	})
}

func TestNewRejectsBadOptions(t *testing.T) {
	busy, err := New(context.Background(), Options{MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		opt  Options
		want string
	}{
		{"address in use", Options{MetricsAddr: busy.Addr()}, "--metrics-addr " + busy.Addr()},
		{"not an address", Options{MetricsAddr: "localhost"}, `--metrics-addr "localhost"`},
		{"textfile without .prom", Options{MetricsTextfile: filepath.Join(t.TempDir(), "metrics.txt")}, "ending in .prom"},
		{"textfile in a missing dir", Options{MetricsTextfile: filepath.Join(t.TempDir(), "no", "x.prom")}, "--metrics-textfile"},
		{"webhook not a URL", Options{NotifyWebhook: "hooks.example.com/T000/secret"}, "--notify-webhook"},
		{"samples without a run dir", Options{SampleInterval: time.Second}, "--sample-interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := New(context.Background(), tc.opt)
			if err == nil {
				o.Close()
				t.Fatalf("New(%+v) succeeded", tc.opt)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("err leaks the webhook secret: %v", err)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"9400", "127.0.0.1:9400"},
		{":9400", "127.0.0.1:9400"},
		{"0.0.0.0:9400", "0.0.0.0:9400"},
		{"[::1]:9400", "[::1]:9400"},
	}
	for _, tc := range tests {
		if got, err := listenAddr(tc.in); err != nil || got != tc.want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestNilAndEmptyObserver: the supervisor always holds an Observer; without options
// (or nil) it must accept every call and start nothing.
func TestNilAndEmptyObserver(t *testing.T) {
	var nilObs *Observer
	nilObs.Publish(Event{Kind: Started})
	if nilObs.Addr() != "" || nilObs.Close() != nil {
		t.Error("nil Observer is not inert")
	}
	o, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range crashAndRestart(time.Now(), "") {
		o.Publish(e)
	}
	if o.Addr() != "" {
		t.Errorf("server started without MetricsAddr: %s", o.Addr())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o.Publish(Event{Kind: Started}) // after Close: ignored, no panic
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServerPage(t *testing.T) {
	dir := fixtureDir(t, "crashed")
	o, err := New(context.Background(), Options{MetricsAddr: "127.0.0.1:0", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	tests := []struct {
		path, ctype, want string
		code              int
	}{
		{"/", "text/html; charset=utf-8", `http-equiv="refresh"`, 200},
		{"/healthz", "text/plain; charset=utf-8", "ok", 200},
		{"/metrics", "text/plain", "trainwrap_job_up", 200},
		{"/nope", "text/plain; charset=utf-8", "404", 404},
	}
	for _, tc := range tests {
		resp, err := http.Get("http://" + o.Addr() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.want, strings.Contains(body, tc.want))
		}
		if tc.path == "/" {
			all := svgs(body)
			if len(all) == 0 {
				t.Fatal("no SVG on the served page")
			}
			if err := wellFormed(all[0]); err != nil {
				t.Errorf("served timeline: %v", err)
			}
		}
	}
}
