package observe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/trainwrap/trainwrap/rundir"
)

// Options configure an Observer. The zero value observes nothing and costs nothing.
type Options struct {
	// MetricsAddr serves /metrics and the status page at /. "" = no server. A bare
	// port ("9400" or ":9400") binds 127.0.0.1; name a host to listen elsewhere.
	MetricsAddr string
	// MetricsTextfile is a node_exporter textfile-collector path (must end in .prom),
	// rewritten atomically after every event; progress rewrites at most once a second.
	MetricsTextfile string
	// NotifyWebhook receives a JSON POST on a crash, restart, give-up, hang or success.
	NotifyWebhook string
	// NotifyCommand is run with `sh -c` on the same events, with TRAINWRAP_* env vars
	// and the JSON on stdin.
	NotifyCommand string
	// SampleInterval is how often host memory, disk free and GPU stats are appended to
	// the run dir's samples.jsonl. 0 = no sampling.
	SampleInterval time.Duration
	// StateDir is the run dir: the page reads state.json, runs.jsonl and
	// samples.jsonl from it, and the sampler writes samples.jsonl into it.
	StateDir string
	// DiskPaths are the paths whose filesystems' free space is sampled.
	DiskPaths []string
	// GPUCommand, when set, is the argv of a process that prints the GPUs as JSON
	// (what SampleGPUs writes); the sampler runs it each interval, so an NVML that
	// hangs or kills its caller costs one sample, not the supervisor. Unset, NVML is
	// read in this process, on a goroutine the sampler waits for a bounded time.
	GPUCommand []string
	// Stderr receives delivery failures. Webhook URLs appear as scheme://host only.
	// nil = io.Discard.
	Stderr io.Writer

	// NotifyTimeout bounds one webhook POST [10s].
	NotifyTimeout time.Duration
	// NotifyRetryFor bounds all the tries of one webhook notification [2m].
	NotifyRetryFor time.Duration
	// CommandTimeout bounds one run of NotifyCommand; its process group is killed
	// after it [30s].
	CommandTimeout time.Duration
	// CloseTimeout is how long Close waits for notifications still queued [10s].
	CloseTimeout time.Duration
	// Host names this machine in notifications [os.Hostname].
	Host string
	// Version is trainwrap's version for trainwrap_build_info [the main module's
	// version from the build info].
	Version string

	// webhookAfter replaces time.After for the webhook's backoff and NotifyRetryFor:
	// a test ends the tries on an event instead of a wall-clock margin.
	webhookAfter func(time.Duration) <-chan time.Time
}

// Observer turns the supervisor's events into metrics, alerts and resource history.
// All its methods are safe for concurrent use, and on a nil *Observer.
type Observer struct {
	opt    Options
	m      *metrics
	srv    *server
	tf     *textfile
	queues []*queue
	host   string

	ctx        context.Context // ends at Close: stops the sampler and textfile writer
	cancel     context.CancelFunc
	deliverCtx context.Context // ends when Close stops waiting for notifications
	stopDeliv  context.CancelFunc
	bg         sync.WaitGroup

	mu     sync.RWMutex // guards closed and job against Publish racing Close
	closed bool
	job    jobView

	errMu sync.Mutex
}

// New starts what opt configures: the HTTP server, the textfile writer, the notifiers
// and the resource sampler. Its errors name the flag and the bad value; ctx ending
// stops the sampler and the textfile writer (Close is still needed).
func New(ctx context.Context, opt Options) (*Observer, error) {
	if opt.Stderr == nil {
		opt.Stderr = io.Discard
	}
	opt.NotifyTimeout = orDefault(opt.NotifyTimeout, 10*time.Second)
	opt.NotifyRetryFor = orDefault(opt.NotifyRetryFor, 2*time.Minute)
	opt.CommandTimeout = orDefault(opt.CommandTimeout, 30*time.Second)
	opt.CloseTimeout = orDefault(opt.CloseTimeout, 10*time.Second)
	if opt.Host == "" {
		opt.Host, _ = os.Hostname()
	}
	if opt.SampleInterval > 0 && opt.StateDir == "" {
		return nil, errors.New("--sample-interval needs a run dir to write samples.jsonl into")
	}
	o := &Observer{opt: opt, m: newMetrics(opt.Version), host: opt.Host}
	o.ctx, o.cancel = context.WithCancel(ctx)
	o.deliverCtx, o.stopDeliv = context.WithCancel(context.WithoutCancel(ctx))
	// fail undoes what was started so far; Close copes with a half-built Observer.
	fail := func(err error) (*Observer, error) {
		o.Close()
		return nil, err
	}

	if opt.NotifyWebhook != "" {
		red, err := parseWebhook(opt.NotifyWebhook)
		if err != nil {
			return fail(err)
		}
		w := &webhook{url: opt.NotifyWebhook, redacted: red, client: &http.Client{}, perTry: opt.NotifyTimeout, total: opt.NotifyRetryFor, backoff: 500 * time.Millisecond, after: opt.webhookAfter}
		o.queues = append(o.queues, newQueue(w, o.m, o.report))
	}
	if opt.NotifyCommand != "" {
		o.queues = append(o.queues, newQueue(newCommand(opt.NotifyCommand, opt.CommandTimeout), o.m, o.report))
	}
	if opt.MetricsTextfile != "" {
		if err := checkTextfile(opt.MetricsTextfile); err != nil {
			return fail(err)
		}
		o.tf = newTextfile(opt.MetricsTextfile, o.m, o.report)
		// Written once now, so a bad directory is an error at start, not a warning
		// after the first crash.
		if err := o.tf.write(); err != nil {
			return fail(fmt.Errorf("--metrics-textfile: %w", err))
		}
	}
	if opt.MetricsAddr != "" {
		srv, err := startServer(opt.MetricsAddr, o.m, opt.StateDir, defaultServerLimits(), o.report)
		if err != nil {
			return fail(err)
		}
		o.srv = srv
		fmt.Fprintf(opt.Stderr, "trainwrap: status page at http://%s/ (metrics at /metrics)\n", srv.addr())
	}
	if opt.SampleInterval > 0 {
		o.startSampler(opt)
	}
	for _, q := range o.queues {
		q.start(o.deliverCtx)
	}
	if o.tf != nil {
		o.bg.Add(1)
		go func() { defer o.bg.Done(); o.tf.run(o.ctx) }()
	}
	return o, nil
}

func (o *Observer) startSampler(opt Options) {
	var gpus gpuSource
	if len(opt.GPUCommand) > 0 {
		gpus = newChildGPUs(opt.GPUCommand, min(gpuTimeout, max(opt.SampleInterval, 5*time.Second)))
	} else {
		gpus = startInProcessGPUs(openGPUs, gpuTimeout)
	}
	s := &sampler{
		path:     rundir.New(opt.StateDir).Samples(),
		disks:    opt.DiskPaths,
		gpus:     gpus,
		job:      o.jobView,
		onSample: o.m.applySample,
		errOut:   func(err error) { o.report(err.Error()) },
		maxBytes: MaxSamplesBytes,
	}
	if fs, err := procfs.NewDefaultFS(); err == nil {
		s.fs, s.hasFS = fs, true
	}
	o.bg.Add(1)
	go func() {
		defer o.bg.Done()
		defer s.gpus.Close()
		s.run(o.ctx, opt.SampleInterval)
	}()
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Publish records e. It never blocks the caller: metrics are updated in place, and the
// textfile and the notifiers are handed the event through bounded queues that drop
// (and count) what they cannot take. A zero e.Time is set to now.
func (o *Observer) Publish(e Event) {
	if o == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var p *Payload
	if len(o.queues) > 0 && e.alerting() {
		pl := NewPayload(e, o.host)
		p = &pl
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.updateJob(e)
	if p != nil {
		for _, q := range o.queues {
			q.offer(*p)
		}
	}
	if e.Kind == Checkpoints && e.CheckpointPath != "" && e.CheckpointTime.IsZero() {
		// Under o.mu, so that Close cannot be waiting on o.bg while it grows.
		o.checkpointTimeFromDisk(e.CheckpointPath)
	}
	o.mu.Unlock()

	o.m.apply(e)
	if o.tf != nil {
		o.tf.poke(e.Kind != Progress)
	}
}

// updateJob must be called with o.mu held.
func (o *Observer) updateJob(e Event) {
	if e.Attempt > 0 {
		o.job.Attempt = e.Attempt
	}
	if e.Step > 0 {
		o.job.Step = e.Step
	}
	switch e.Kind {
	case Started:
		// A new attempt has reached no step yet (or the one it resumes from, when
		// the event says): the last attempt's step would draw a false point.
		o.job.Step = e.Step
		o.job.Up = true
	case Exited, Succeeded, GaveUp, Stopped:
		o.job.Up = false
	}
}

func (o *Observer) jobView() jobView {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.job
}

// checkpointTimeFromDisk dates the resume checkpoint by its mtime when the event did
// not, off the caller's goroutine: a stat on a network filesystem can hang.
func (o *Observer) checkpointTimeFromDisk(path string) {
	o.bg.Add(1)
	go func() {
		defer o.bg.Done()
		if fi, err := os.Stat(path); err == nil {
			setTime(o.m.ckptTime, fi.ModTime())
		}
	}()
}

// report writes one line about a delivery problem; it never holds a webhook secret.
func (o *Observer) report(msg string) {
	o.errMu.Lock()
	defer o.errMu.Unlock()
	fmt.Fprintf(o.opt.Stderr, "trainwrap: observe: %s\n", msg)
}

// Addr is the address the HTTP server listens on ("" without one), e.g. the port
// chosen for MetricsAddr ":0".
func (o *Observer) Addr() string {
	if o == nil || o.srv == nil {
		return ""
	}
	return o.srv.addr()
}

// Close stops the server and the sampler, writes the textfile a last time, and waits
// up to CloseTimeout for notifications still queued (the give-up alert is published
// just before Close); after that, deliveries in flight are abandoned and their hook
// processes killed. It is safe to call more than once.
func (o *Observer) Close() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	for _, q := range o.queues {
		close(q.ch)
	}
	o.mu.Unlock()

	var err error
	if o.srv != nil {
		err = o.srv.close()
	}
	o.cancel()
	o.bg.Wait()

	drained := make(chan struct{})
	go func() {
		for _, q := range o.queues {
			q.wg.Wait()
		}
		close(drained)
	}()
	t := time.NewTimer(o.opt.CloseTimeout)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		o.report(fmt.Sprintf("notifications still pending after %s were abandoned", o.opt.CloseTimeout))
		o.stopDeliv()
		<-drained
	}
	o.stopDeliv()
	return err
}
