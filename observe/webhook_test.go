package observe

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/training"
)

const secretPath = "/services/T000/B000/s3cr3tPath"

func TestWebhook(t *testing.T) {
	crash := Event{Kind: Exited, RunID: "r1", Attempt: 1, Class: "cuda_oom", ExitCode: 1, Step: 230,
		Evidence: []string{"torch.OutOfMemoryError: CUDA out of memory"}, Suggestion: "Lower the batch size.", Retryable: true}
	tests := []struct {
		name      string
		responses []int // status per try; past the end: 200; 0 = hang until the client gives up
		event     Event
		tries     int
		delivered bool
		stderr    string
		perTry    time.Duration // one try [a minute]
		// timeUpOnTry, when set, ends the time for all tries once the server has
		// seen that try: the backoff then takes no time, and the limit no margin.
		timeUpOnTry int
	}{
		{name: "delivered first time", responses: nil, event: crash, tries: 1, delivered: true},
		{name: "retried after a 500", responses: []int{500}, event: crash, tries: 2, delivered: true},
		{name: "retried after a 429 and a 503", responses: []int{429, 503}, event: Event{Kind: GaveUp, Attempt: 3, Class: "nccl", ExitCode: 73}, tries: 3, delivered: true},
		{name: "a 404 is not retried", responses: []int{404}, event: crash, tries: 1, stderr: "404 Not Found (not retried"},
		// Only here must a try time out: the server never answers it. The limit on
		// all tries runs out when the server has seen the third, so the count of
		// tries and the give-up do not depend on how fast the machine is.
		{name: "a hung server times out", responses: []int{0, 0, 0, 0, 0, 0, 0, 0}, event: crash, tries: 3, stderr: "gave up after 3 tries", perTry: 150 * time.Millisecond, timeUpOnTry: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			got := make(chan Payload, 4)
			done := make(chan struct{})
			// The server answers nothing until Publish has returned: a Publish that
			// waited for the delivery would never return.
			published := make(chan struct{})
			timeUp := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-published:
				case <-r.Context().Done():
					return
				}
				n := int(tries.Add(1))
				if n == tc.timeUpOnTry {
					close(timeUp)
				}
				// Read first: the server notices a client that hung up only once
				// the body is consumed.
				body, _ := io.ReadAll(r.Body)
				if r.URL.Path != secretPath || r.Header.Get("Content-Type") != "application/json" {
					http.Error(w, "bad request", 400)
					return
				}
				if n <= len(tc.responses) {
					if tc.responses[n-1] == 0 {
						select { // hang until the client gives up
						case <-r.Context().Done():
						case <-done:
						}
						return
					}
					http.Error(w, "no", tc.responses[n-1])
					return
				}
				var p Payload
				if err := json.Unmarshal(body, &p); err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				got <- p
			}))
			defer srv.Close()
			defer close(done)
			var stderr testkit.Buffer
			opt := Options{NotifyWebhook: srv.URL + secretPath + "?token=s3cr3tQuery", Stderr: &stderr,
				NotifyTimeout: cmp.Or(tc.perTry, time.Minute), NotifyRetryFor: time.Minute, Host: "node7"}
			if tc.timeUpOnTry > 0 {
				opt.webhookAfter = func(d time.Duration) <-chan time.Time {
					c := make(chan time.Time)
					if d != opt.NotifyRetryFor { // a backoff
						close(c)
						return c
					}
					go func() { <-timeUp; close(c) }()
					return c
				}
			}
			o, err := New(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			testkit.Returns(t, time.Minute, "Publish", func() { o.Publish(tc.event) })
			close(published)
			if tc.delivered {
				select {
				case p := <-got:
					if p.Event != tc.event.Kind || p.Class != tc.event.Class || p.ExitCode == nil || *p.ExitCode != tc.event.ExitCode || p.Host != "node7" {
						t.Errorf("payload fields: %+v", p)
					}
					if !strings.Contains(p.Text, tc.event.Class) || !strings.Contains(p.Text, "node7") {
						t.Errorf("text %q does not name the class and host", p.Text)
					}
				case <-time.After(time.Minute):
					t.Fatalf("not delivered; stderr: %s", stderr.String())
				}
			} else {
				testkit.Eventually(t, time.Minute, "the failure report", func() bool { return strings.Contains(stderr.String(), tc.stderr) })
				if v := testutil.ToFloat64(o.m.notifyFailed); v != 1 {
					t.Errorf("trainwrap_notify_failures_total = %v, want 1", v)
				}
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			if int(tries.Load()) != tc.tries {
				t.Errorf("%d tries, want %d", tries.Load(), tc.tries)
			}
			if s := stderr.String(); strings.Contains(s, "s3cr3t") {
				t.Errorf("stderr leaks the URL's secret: %s", s)
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), srv.URL) {
				t.Errorf("failure report does not name scheme://host %s: %s", srv.URL, stderr.String())
			}
		})
	}
}

// TestWebhookOnlyAlerts: people are told of crashes, restarts, give-ups, hangs and
// success, not of every start and progress line.
func TestWebhookOnlyAlerts(t *testing.T) {
	got := make(chan Kind, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err == nil {
			got <- p.Event
		}
	}))
	defer srv.Close()
	o, err := New(context.Background(), Options{NotifyWebhook: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	events := []Event{
		{Kind: Started, Attempt: 1},
		{Kind: Progress, Step: 5},
		{Kind: Metrics, Samples: []training.Sample{{Attempt: 1, Step: 5, Name: training.Loss, Value: 2.5}}},
		{Kind: Anomaly, Step: 5, Anomaly: &training.Anomaly{Attempt: 1, Kind: training.LossSpike, Metric: training.Loss, Step: 5, Value: 50, Baseline: 2.5}, Message: "loss spike at step 5"},
		{Kind: Hang, StallTimeout: time.Minute},
		{Kind: Exited, Class: "hang", ExitCode: -1, Signal: "SIGABRT"},
		{Kind: Checkpoints, CheckpointStep: 5},
		{Kind: Restarting, Backoff: time.Second, Restarts: 1},
		{Kind: Started, Attempt: 2},
		{Kind: Exited, ExitCode: 0},
		{Kind: Succeeded, Step: 10},
		{Kind: Started, Attempt: 3},
		{Kind: Exited, ExitCode: -1, Signal: "SIGTERM", StopRequested: true},
		{Kind: Stopped, Signal: "SIGTERM", ExitCode: 143},
	}
	for _, e := range events {
		o.Publish(e)
	}
	if err := o.Close(); err != nil { // waits for the queue to drain
		t.Fatal(err)
	}
	close(got)
	var kinds []string
	for k := range got {
		kinds = append(kinds, string(k))
	}
	if want := "anomaly hang exited restarting succeeded"; strings.Join(kinds, " ") != want {
		t.Errorf("notified of %v, want %s", kinds, want)
	}
}

// TestPublishNeverBlocks: with the webhook hung, a burst of events returns at once;
// what the queue cannot hold is dropped and counted, and Close gives up after its
// timeout.
func TestPublishNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	var stderr testkit.Buffer
	// The server holds every request until the test ends and a try may take an hour,
	// so Publish and Close return only if they never wait for it.
	o, err := New(context.Background(), Options{NotifyWebhook: srv.URL, Stderr: &stderr, NotifyTimeout: time.Hour, CloseTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Returns(t, time.Minute, fmt.Sprintf("%d Publish calls", 10*queueLen), func() {
		for i := 0; i < 10*queueLen; i++ {
			o.Publish(Event{Kind: Restarting, Restarts: i})
		}
	})
	if v := testutil.ToFloat64(o.m.dropped); v < float64(8*queueLen) {
		t.Errorf("trainwrap_observe_dropped_total = %v, want at least %d", v, 8*queueLen)
	}
	start := time.Now()
	testkit.Returns(t, time.Minute, "Close with CloseTimeout 300ms", func() {
		if err := o.Close(); err != nil {
			t.Error(err)
		}
	})
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Close returned after %s, before its CloseTimeout of 300ms", d)
	}
	if !strings.Contains(stderr.String(), "abandoned") {
		t.Errorf("Close did not report abandoned notifications: %s", stderr.String())
	}
}
