// Package rundir is the layout of trainwrap's run directory (--state-dir) and the
// formats of the files in it: the supervisor lock, state.json and runs.jsonl.
//
// It is shared by the supervisor (shim), preflight, observe and the CLI, so that none
// of them has to import the supervisor to read what it wrote.
package rundir

import (
	"path/filepath"

	"github.com/trainwrap/trainwrap/training"
)

// File names inside the run directory.
const (
	LockFile     = "lock"
	StateFile    = "state.json"
	RunsFile     = "runs.jsonl"
	LogsDir      = "logs"
	TrainLog     = "train.log"
	ManifestsDir = "checkpoints"
	SamplesFile  = "samples.jsonl"
	SeriesFile   = training.SeriesFile
	DefaultDir   = ".trainwrap"
	RunIDEnv     = "TRAINWRAP_RUN_ID"
	AttemptEnv   = "TRAINWRAP_ATTEMPT"
	ResumeEnv    = "TRAINWRAP_RESUME_CHECKPOINT"
	LastCrashEnv = "TRAINWRAP_LAST_CRASH"
	StateDirEnv  = "TRAINWRAP_STATE_DIR"
)

// Dir is a run directory. The zero value is not useful; use New.
type Dir struct {
	// Path is the run directory itself.
	Path string
}

// New returns the run directory at path, made absolute so that paths recorded in
// state.json stay valid when the working directory changes.
func New(path string) Dir {
	if path == "" {
		path = DefaultDir
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return Dir{Path: path}
}

// Lock is the path of the flock file held by the live supervisor.
func (d Dir) Lock() string { return filepath.Join(d.Path, LockFile) }

// State is the path of state.json.
func (d Dir) State() string { return filepath.Join(d.Path, StateFile) }

// Runs is the path of runs.jsonl.
func (d Dir) Runs() string { return filepath.Join(d.Path, RunsFile) }

// Logs is the directory of the job's logs.
func (d Dir) Logs() string { return filepath.Join(d.Path, LogsDir) }

// TrainLog is the path of the current (not rotated) job log.
func (d Dir) TrainLog() string { return filepath.Join(d.Path, LogsDir, TrainLog) }

// Manifests is the directory of checkpoint manifests (xxh64sum files and sidecars).
func (d Dir) Manifests() string { return filepath.Join(d.Path, ManifestsDir) }

// Samples is the path of the resource-history samples file.
func (d Dir) Samples() string { return filepath.Join(d.Path, SamplesFile) }

// Series is the path of the training-metrics file (loss, throughput, ... per step).
func (d Dir) Series() string { return filepath.Join(d.Path, SeriesFile) }
