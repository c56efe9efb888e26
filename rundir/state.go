package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/trainwrap/trainwrap/training"
)

// MaxStateAnomalies bounds State.Anomalies: state.json is rewritten on every event, so
// a run that finds an anomaly every minute for a week must not make it grow.
const MaxStateAnomalies = 20

// AddAnomaly appends a to s.Anomalies, dropping the oldest past MaxStateAnomalies.
func (s *State) AddAnomaly(a training.Anomaly) {
	s.Anomalies = append(s.Anomalies, a)
	if n := len(s.Anomalies) - MaxStateAnomalies; n > 0 {
		s.Anomalies = append(s.Anomalies[:0:0], s.Anomalies[n:]...)
	}
}

// Status values of State.Status.
const (
	StatusStarting  = "starting"
	StatusRunning   = "running"
	StatusBackoff   = "backoff"
	StatusStopping  = "stopping"
	StatusSucceeded = "succeeded"
	StatusGaveUp    = "gave_up"
	StatusStopped   = "stopped"
)

// Proc names one process by pid and start time (clock ticks since boot, field 22 of
// /proc/PID/stat): a pid alone can be reused by an unrelated process.
type Proc struct {
	PID       int    `json:"pid"`
	PGID      int    `json:"pgid,omitempty"`
	StartTime uint64 `json:"start_time"`
}

// State is the content of state.json: what the supervisor is doing now, or did last.
type State struct {
	RunID          string     `json:"run_id"`
	Supervisor     Proc       `json:"supervisor"`
	Guard          *Proc      `json:"guard,omitempty"`
	Child          *Proc      `json:"child,omitempty"`
	Command        []string   `json:"command"`
	Attempt        int        `json:"attempt"`
	Status         string     `json:"status"`
	StartedAt      time.Time  `json:"started_at"`
	AttemptStarted time.Time  `json:"attempt_started_at,omitempty"`
	LastProgress   time.Time  `json:"last_progress,omitempty"`
	LastOutput     time.Time  `json:"last_output,omitempty"`
	Step           int64      `json:"step"`
	Restarts       int        `json:"restarts"`
	LastClass      string     `json:"last_class,omitempty"`
	ExitCode       *int       `json:"exit_code,omitempty"`
	NextStart      *time.Time `json:"next_start,omitempty"`
	CheckpointRoot string     `json:"checkpoint_root,omitempty"`
	ResumeFrom     string     `json:"resume_from,omitempty"`
	LogWriteErrors int64      `json:"log_write_errors,omitempty"`
	// MetricsWriteErrors counts failed writes of metrics.jsonl (the job goes on).
	MetricsWriteErrors int64  `json:"metrics_write_errors,omitempty"`
	StallTimeout       string `json:"stall_timeout,omitempty"`
	// AttemptCommand and AttemptEnv are what the current (or last) attempt runs with:
	// the command after --resume-arg and smart recovery, and the variables smart
	// recovery set. Adjustments are every change smart recovery made, in order.
	AttemptCommand []string          `json:"attempt_command,omitempty"`
	AttemptEnv     map[string]string `json:"attempt_env,omitempty"`
	Adjustments    []Adjustment      `json:"adjustments,omitempty"`
	// Anomalies are the newest findings of the training-metrics detector, at most
	// MaxStateAnomalies, oldest first; every one is also in its attempt's record.
	Anomalies []training.Anomaly `json:"anomalies,omitempty"`
	Updated   time.Time          `json:"updated"`
}

// ErrCorruptState is returned (wrapped) by ReadState when state.json exists but does
// not parse.
var ErrCorruptState = errors.New("state.json is corrupt")

// ReadState reads state.json. A missing file returns an error satisfying
// errors.Is(err, os.ErrNotExist); one that does not parse returns ErrCorruptState with
// a hint on how to get out of it.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w (%v); move it aside with `trainwrap preflight --fix` or start with --force", path, ErrCorruptState, err)
	}
	return s, nil
}

// WriteState writes state.json atomically: a temporary file in the same directory,
// fsync, then rename, so a reader never sees half a file.
func WriteState(path string, s State) error {
	return writeState(path, s, true)
}

// writeState is WriteState, with the fsyncs only when durable. A reader never sees
// half a file either way (the rename is atomic); what the fsyncs add is that the file
// survives a power loss. The supervisor rewrites state.json at every start, tick and
// exit, and an fsync there (2–9 ms measured) sat between a child's exit and its
// verdict; after a power loss no process of the run is alive, so only the final state
// needs to be durable.
func writeState(path string, s State, durable bool) error {
	s.Updated = time.Now()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644, durable)
}

// WriteFileAtomic writes data to path through a temporary sibling and a rename, with
// fsync of the file and of the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, true)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is already visible
		d.Close()
	}
	return nil
}
