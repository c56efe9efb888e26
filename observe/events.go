// Package observe carries what the supervisor sees outward: Prometheus metrics (served
// over HTTP and written as a node_exporter textfile), alerts (a webhook and a local
// command), a self-contained status page, and a bounded history of host and GPU
// resource samples in the run directory.
//
// The supervisor publishes Events; nothing here ever blocks it. Deliveries that cannot
// keep up are dropped and counted, never queued without bound.
package observe

import (
	"fmt"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/training"
)

// Kind names what happened to the job.
type Kind string

// The kinds of event the supervisor publishes.
const (
	Started     Kind = "started"     // an attempt's child process started
	Progress    Kind = "progress"    // the job made progress (a line, a step, a heartbeat)
	Exited      Kind = "exited"      // the child exited; Class/ExitCode/Signal say how
	Restarting  Kind = "restarting"  // a restart is scheduled after Backoff
	GaveUp      Kind = "gave_up"     // trainwrap gave up; ExitCode is trainwrap's own code
	Succeeded   Kind = "succeeded"   // the job exited 0
	Stopped     Kind = "stopped"     // the user stopped trainwrap
	Hang        Kind = "hang"        // no progress for the stall timeout; the job is being torn down
	Checkpoints Kind = "checkpoints" // checkpoints pruned, verified and the resume point chosen
	LogError    Kind = "log_error"   // writing the job's log failed
	Metrics     Kind = "metrics"     // the job printed training metrics; Samples holds them
	Anomaly     Kind = "anomaly"     // the training went bad without crashing; Anomaly says how
)

// Event is one thing that happened to the supervised job. Only the fields that belong
// to its Kind are set; the rest are zero.
type Event struct {
	Kind    Kind
	Time    time.Time
	RunID   string
	Attempt int
	PID     int
	Command []string

	// Progress.
	Step         int64
	LastProgress time.Time

	// Exited, GaveUp, Hang.
	Class      string
	ExitCode   int // -1 when the child was killed by a signal
	Signal     string
	Evidence   []string
	Suggestion string
	Retryable  bool

	// Restarting.
	Backoff  time.Duration
	Restarts int

	// Checkpoints.
	CheckpointStep int64
	CheckpointTime time.Time
	CheckpointPath string
	Pruned         int
	BytesFreed     int64

	// Exited: the child exited because the user asked trainwrap to stop (SIGTERM,
	// SIGINT, ...). Such an exit is not a crash: no crash counted, no alert.
	StopRequested bool

	// Metrics: the samples read from one line of output (loss, lr, throughput, ...).
	Samples []training.Sample
	// Anomaly: what the detector found.
	Anomaly *training.Anomaly

	LogWriteErrors int64 // the running total of failed log writes
	StallTimeout   time.Duration
	Message        string
}

// crashed reports whether an Exited event is a failure of the job: a non-zero exit code
// or death by a signal, other than the end of a stop the user asked for.
func (e Event) crashed() bool {
	return e.Kind == Exited && !e.StopRequested && (e.ExitCode != 0 || e.Signal != "")
}

// alerting reports whether the event is one that people are notified of: a crash, a
// restart, a give-up, a hang or a success.
func (e Event) alerting() bool {
	switch e.Kind {
	case Exited:
		return e.crashed()
	case Restarting, GaveUp, Hang, Succeeded, Anomaly:
		return true
	}
	return false
}

// Payload is the JSON body of a notification: a `text` field that Slack and Mattermost
// incoming webhooks render, plus the event's fields for machines.
type Payload struct {
	Text       string   `json:"text"`
	Event      Kind     `json:"event"`
	Time       string   `json:"time"`
	Host       string   `json:"host,omitempty"`
	RunID      string   `json:"run_id,omitempty"`
	Attempt    int      `json:"attempt"`
	PID        int      `json:"pid,omitempty"`
	Command    []string `json:"command,omitempty"`
	Step       int64    `json:"step"`
	Class      string   `json:"class,omitempty"`
	ExitCode   *int     `json:"exit_code,omitempty"`
	Signal     string   `json:"signal,omitempty"`
	Evidence   []string `json:"evidence,omitempty"`
	Suggestion string   `json:"suggestion,omitempty"`
	Retryable  *bool    `json:"retryable,omitempty"`
	BackoffS   float64  `json:"backoff_s,omitempty"`
	Restarts   int      `json:"restarts,omitempty"`
	StallS     float64  `json:"stall_timeout_s,omitempty"`
	Message    string   `json:"message,omitempty"`
}

// NewPayload builds the notification body of e, as sent from host.
func NewPayload(e Event, host string) Payload {
	p := Payload{
		Text:       Summary(e, host),
		Event:      e.Kind,
		Time:       e.Time.UTC().Format(time.RFC3339),
		Host:       host,
		RunID:      e.RunID,
		Attempt:    e.Attempt,
		PID:        e.PID,
		Command:    e.Command,
		Step:       e.Step,
		Class:      e.Class,
		Signal:     e.Signal,
		Evidence:   e.Evidence,
		Suggestion: e.Suggestion,
		BackoffS:   e.Backoff.Seconds(),
		Restarts:   e.Restarts,
		StallS:     e.StallTimeout.Seconds(),
		Message:    e.Message,
	}
	switch e.Kind {
	case Exited, GaveUp, Stopped, Succeeded:
		code := e.ExitCode
		p.ExitCode = &code
	}
	if e.Kind == Exited || e.Kind == GaveUp {
		r := e.Retryable
		p.Retryable = &r
	}
	return p
}

// Summary is the one-paragraph human text of e: what happened, on which host, and
// what to do about it.
func Summary(e Event, host string) string {
	var b strings.Builder
	where := "trainwrap"
	if host != "" {
		where = "trainwrap@" + host
	}
	fmt.Fprintf(&b, "[%s] ", where)
	switch e.Kind {
	case Exited:
		if e.crashed() {
			fmt.Fprintf(&b, "job crashed (attempt %d): %s, %s", e.Attempt, orUnknown(e.Class), exitText(e))
		} else {
			fmt.Fprintf(&b, "job exited (attempt %d): %s", e.Attempt, exitText(e))
		}
	case Restarting:
		fmt.Fprintf(&b, "restarting the job in %s (restart %d, after %s)", e.Backoff.Round(time.Millisecond), e.Restarts, orUnknown(e.Class))
	case GaveUp:
		fmt.Fprintf(&b, "gave up after attempt %d: %s, exit code %d", e.Attempt, orUnknown(e.Class), e.ExitCode)
	case Hang:
		fmt.Fprintf(&b, "job hung (attempt %d): no progress for %s; its stacks go to the log", e.Attempt, e.StallTimeout)
	case Succeeded:
		fmt.Fprintf(&b, "job succeeded (attempt %d, step %d)", e.Attempt, e.Step)
	case Stopped:
		fmt.Fprintf(&b, "stopped by %s (attempt %d)", orUnknown(e.Signal), e.Attempt)
	default:
		fmt.Fprintf(&b, "%s (attempt %d)", e.Kind, e.Attempt)
	}
	if e.Step > 0 && e.Kind != Succeeded {
		fmt.Fprintf(&b, " at step %d", e.Step)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, "; %s", e.Message)
	}
	if len(e.Evidence) > 0 {
		fmt.Fprintf(&b, "\n> %s", e.Evidence[len(e.Evidence)-1])
	}
	if e.Suggestion != "" {
		fmt.Fprintf(&b, "\n%s", e.Suggestion)
	}
	return b.String()
}

func exitText(e Event) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return fmt.Sprintf("exit code %d", e.ExitCode)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
