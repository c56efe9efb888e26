package rundir

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Decision values of Record.Decision.
const (
	DecisionRestart = "restart"
	DecisionGiveUp  = "give_up"
	DecisionDone    = "done"
	DecisionStop    = "stop"
)

// Evidence is one log line that supports a verdict, with its line number in the
// attempt's output (1-based).
type Evidence struct {
	Line int64  `json:"line"`
	Text string `json:"text"`
}

// Record is one line of runs.jsonl: one attempt of the job, from start to decision.
type Record struct {
	RunID           string     `json:"run_id"`
	Attempt         int        `json:"attempt"`
	Command         []string   `json:"command,omitempty"`
	PID             int        `json:"pid"`
	Start           time.Time  `json:"start"`
	End             time.Time  `json:"end"`
	DurationS       float64    `json:"duration_s"`
	ExitCode        *int       `json:"exit_code,omitempty"`
	Signal          string     `json:"signal,omitempty"`
	Class           string     `json:"class"`
	Evidence        []Evidence `json:"evidence,omitempty"`
	Suggestion      string     `json:"suggestion,omitempty"`
	Retryable       bool       `json:"retryable"`
	ClassExitCode   int        `json:"class_exit_code"`
	Rank            *int       `json:"rank,omitempty"`
	StepStart       int64      `json:"step_start"`
	StepEnd         int64      `json:"step_end"`
	Progressed      bool       `json:"progressed"`
	ResumedFrom     string     `json:"resumed_from,omitempty"`
	CheckpointsSeen int        `json:"checkpoints_seen,omitempty"`
	NewestComplete  string     `json:"newest_complete,omitempty"`
	Pruned          []string   `json:"pruned,omitempty"`
	Quarantined     []string   `json:"quarantined,omitempty"`
	Corrupt         []string   `json:"corrupt,omitempty"`
	BytesFreed      int64      `json:"bytes_freed,omitempty"`
	Lines           int64      `json:"lines"`
	LogWriteErrors  int64      `json:"log_write_errors,omitempty"`
	Decision        string     `json:"decision"`
	Reason          string     `json:"reason,omitempty"`
	BackoffMS       int64      `json:"backoff_ms,omitempty"`
	// Env holds the variables smart recovery set for this attempt (not the whole
	// environment: that may hold secrets).
	Env map[string]string `json:"env,omitempty"`
	// Adjustments are the changes smart recovery made for the next attempt, part of
	// the decision to restart.
	Adjustments []Adjustment `json:"adjustments,omitempty"`
}

// Adjustment kinds: what smart recovery changed.
const (
	AdjustEnv    = "env"    // an environment variable of the job
	AdjustArg    = "arg"    // the value of a flag in the job's command
	AdjustConfig = "config" // a key in a copy of the job's config file
)

// Adjustment is one change smart recovery made to the job before a restart. From and
// To are the old and the new value, so the change can be undone by hand: the user's
// command and files are never changed, only what trainwrap passes to the next attempt.
type Adjustment struct {
	Attempt int    `json:"attempt"` // the attempt that runs with the change
	Class   string `json:"class"`   // the crash it answers
	Kind    string `json:"kind"`
	Name    string `json:"name"`           // the variable, flag or config key
	File    string `json:"file,omitempty"` // config: the user's file; the copy is in the command
	From    string `json:"from,omitempty"` // "" when it was not set
	To      string `json:"to"`
}

// String is the change as a person reads it: "--batch 8 → 4".
func (a Adjustment) String() string {
	name := a.Name
	if a.Kind == AdjustConfig && a.File != "" {
		name = a.Name + " (in " + a.File + ")"
	}
	if a.Kind == AdjustEnv && a.From == "" {
		return name + "=" + a.To
	}
	from := a.From
	if from == "" {
		from = "unset"
	}
	return name + " " + from + " → " + a.To
}

// AppendRecord appends one record to runs.jsonl as a single write, so that a crash of
// the supervisor leaves at worst one truncated last line.
func AppendRecord(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run record: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	return f.Close()
}

// ReadRecords reads every record of runs.jsonl. A missing file is no records and no
// error. A last line cut short by a crash is skipped; any other bad line is an error
// that names the line.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var out []Record
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var r Record
			if jerr := json.Unmarshal(line, &r); jerr != nil {
				if err == io.EOF { // torn last line
					break
				}
				return out, fmt.Errorf("%s line %d: %v; move the file aside to start a fresh history", path, n, jerr)
			}
			out = append(out, r)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return out, nil
}
