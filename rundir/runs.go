package rundir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/training"
)

// Decision values of Record.Decision.
const (
	DecisionRestart = "restart"
	DecisionGiveUp  = "give_up"
	DecisionDone    = "done"
	DecisionStop    = "stop"
)

// Evidence is one log line that supports a verdict, with its line number in the
// attempt's output (1-based). The classifier produces it and runs.jsonl stores it: one
// type, so the two cannot drift apart.
type Evidence struct {
	Line int64  `json:"line"`
	Text string `json:"text"`
	// Rule names the classifier rule that matched the line, when one did.
	Rule string `json:"rule,omitempty"`
}

// Removal is one checkpoint that maintenance deleted or quarantined.
type Removal struct {
	Checkpoint string `json:"checkpoint"` // relative to the checkpoint root
	Action     string `json:"action"`     // "delete" or "quarantine"
	Reason     string `json:"reason"`
	Bytes      int64  `json:"bytes"`
	// Startup is set for what was done before attempt 1, to what an earlier run left.
	Startup bool `json:"startup,omitempty"`
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
	TerminalDropped int64      `json:"terminal_dropped,omitempty"` // output bytes nobody read from our stdout/stderr; all are in the log
	Decision        string     `json:"decision"`
	Reason          string     `json:"reason,omitempty"`
	BackoffMS       int64      `json:"backoff_ms,omitempty"`
	// Removed says, for every checkpoint in Pruned and Quarantined, why and how big;
	// attempt 1's record also holds what start-up maintenance did before it.
	Removed []Removal `json:"removed,omitempty"`
	// Env holds the variables smart recovery set for this attempt (not the whole
	// environment: that may hold secrets).
	Env map[string]string `json:"env,omitempty"`
	// Adjustments are the changes smart recovery made for the next attempt, part of
	// the decision to restart.
	Adjustments []Adjustment `json:"adjustments,omitempty"`
	// Anomalies are what the training-metrics detector found during this attempt (at
	// most MaxRecordAnomalies; AnomaliesDropped counts the rest).
	Anomalies        []training.Anomaly `json:"anomalies,omitempty"`
	AnomaliesDropped int                `json:"anomalies_dropped,omitempty"`
}

// MaxRecordAnomalies bounds Record.Anomalies: one record is one write of one line.
const MaxRecordAnomalies = 50

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
// the supervisor leaves at worst one truncated line. The record always starts on a
// line of its own: when the file does not end in a newline (a torn line left by a
// crash mid-append), one is written first, so the torn line cannot swallow this
// record. A write that fails (a full disk) is cut back off, leaving the file as it was.
func AppendRecord(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run record: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append %s: %w", path, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	line := make([]byte, 0, len(b)+2)
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			f.Close()
			return fmt.Errorf("append %s: read its last byte: %w", path, err)
		}
		if last[0] != '\n' {
			line = append(line, '\n')
		}
	}
	line = append(append(line, b...), '\n')
	if _, err := f.Write(line); err != nil {
		// A short write before ENOSPC leaves part of the record: cut it off, so
		// that the retry does not follow a torn line.
		_ = f.Truncate(size)
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("append %s: %w", path, err)
	}
	return f.Close()
}

// Torn lists the lines of runs.jsonl that ReadRecords skipped because they do not
// parse: records cut short by a crash of the supervisor mid-append.
type Torn struct {
	Path  string
	Lines []int // 1-based
}

// Warning is one line for a person naming the file and the skipped lines, "" when
// nothing was skipped.
func (t Torn) Warning() string {
	switch len(t.Lines) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("%s line %d: skipped a torn record (cut short by a crash mid-write); the other records are read", t.Path, t.Lines[0])
	}
	ns := make([]string, len(t.Lines))
	for i, n := range t.Lines {
		ns[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("%s lines %s: skipped %d torn records (cut short by a crash mid-write); the other records are read", t.Path, strings.Join(ns, ", "), len(t.Lines))
}

// recordStart begins every encoded Record (run_id is its first field). Inside a JSON
// string the quotes would be escaped, so it marks where a record glued onto a torn
// line (by a writer without the fresh-line rule) begins.
var recordStart = []byte(`{"run_id":`)

// ReadRecords reads every record of runs.jsonl. A missing file is no records and no
// error. A line that does not parse, anywhere in the file, is skipped and listed in
// Torn, so one crash mid-append does not hide the whole history; a whole record glued
// onto the end of a torn line is still read. Only a failure to read the file is an
// error.
func ReadRecords(path string) ([]Record, Torn, error) {
	torn := Torn{Path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, torn, nil
	}
	if err != nil {
		return nil, torn, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var out []Record
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var r Record
			if json.Unmarshal(line, &r) == nil {
				out = append(out, r)
			} else {
				torn.Lines = append(torn.Lines, n)
				if r, ok := gluedRecord(line); ok {
					out = append(out, r)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, torn, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return out, torn, nil
}

// gluedRecord finds a whole record after a torn prefix on a line that does not parse:
// `{"run_id":"a","atte{"run_id":"a","attempt":2,...}`.
func gluedRecord(line []byte) (Record, bool) {
	for i := 1; i < len(line); {
		j := bytes.Index(line[i:], recordStart)
		if j < 0 {
			break
		}
		var r Record
		if json.Unmarshal(line[i+j:], &r) == nil {
			return r, true
		}
		i += j + 1
	}
	return Record{}, false
}
