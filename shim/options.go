// Package shim is trainwrap's supervisor: it starts the training command in a process
// group of its own under a thread-locked Pdeathsig, as a child subreaper; tees its
// output to the terminal, the rotating log and the line observers (the classifier);
// detects stalls; tears the whole job down on exit or stop; decides restarts with
// backoff; and keeps state.json and runs.jsonl.
package shim

import (
	"context"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/rundir"
)

// PtyMode says whether the child gets a pseudo-terminal.
type PtyMode string

// Pty modes.
const (
	PtyAuto   PtyMode = "auto" // a pty when our stdout is a terminal
	PtyAlways PtyMode = "always"
	PtyNever  PtyMode = "never"
)

// CheckpointResult is what the between-attempts checkpoint maintenance found and did.
type CheckpointResult struct {
	Seen           int
	Resume         string // path of the resume point, "" when there is none
	ResumeStep     int64
	ResumeTime     time.Time // when the resume point was written
	NewestComplete int64     // step of the newest complete checkpoint, -1 when none
	Pruned         []string
	Quarantined    []string
	Corrupt        []string
	BytesFreed     int64
	Notes          []string
	// Removed is what was deleted or quarantined, with why and how big; it goes
	// into runs.jsonl.
	Removed []rundir.Removal
}

// Options configure Run. Zero durations disable what they time, except StopTimeout
// (zero kills at once).
type Options struct {
	StateDir string
	Command  []string
	WorkDir  string

	Pty           PtyMode
	LogMaxSizeMB  int
	LogMaxBackups int

	StopTimeout    time.Duration
	AbortGrace     time.Duration // after SIGABRT on a stall, before the stop sequence [5s]
	StallTimeout   time.Duration
	StartupTimeout time.Duration
	ProgressRegex  *regexp.Regexp
	HeartbeatFile  string
	// After the job's last process is gone, what it wrote is read to the end; then
	// reading goes on until every writer has closed the pipes or pty, or nothing came
	// for OutputDrainIdle [1s], or OutputDrainMax [5s] has passed: a process that
	// escaped the job may hold them forever.
	OutputDrainIdle time.Duration
	OutputDrainMax  time.Duration

	// ResumeAllowance is added to StallTimeout for the first progress of an attempt
	// once an earlier attempt has made progress (time to load the checkpoint); such an
	// attempt never waits the full StartupTimeout.
	ResumeAllowance time.Duration

	Policy    Policy
	ResumeArg string
	Force     bool
	// Recovery is smart recovery: what to change in the job before a restart.
	Recovery RecoveryOptions

	// CheckpointRoot is recorded in state.json; maintenance itself is Checkpoints.
	CheckpointRoot string

	Stdout io.Writer
	Stderr io.Writer
	// Exe is the trainwrap binary, re-executed as the guard. Empty: os.Executable.
	Exe string

	// Cgroup is CgroupAuto (the zero value) or CgroupOff: whether the job gets a
	// cgroup v2 of its own, killed as a whole at teardown, where delegation allows.
	Cgroup string

	// Signals is the channel from NotifyEarly, holding whatever arrived before Run;
	// nil makes a new one. Run relays the rest of the signals it handles to it too.
	Signals chan os.Signal

	// Clock drives stall detection (see Clock); nil is real time.
	Clock Clock

	// TerminalPatience is how long the job's output waits for a stdout or stderr that
	// takes nothing at all before that copy starts dropping [2s]. A test that checks the
	// terminal copy byte for byte sets it long, so that a loaded machine's slow reader
	// cannot turn the check into a race.
	TerminalPatience time.Duration

	// Training reads metrics from the output and judges them (--metric, --on-anomaly).
	Training TrainingOptions

	// Observer receives the supervisor's events; nil publishes nothing.
	Observer *observe.Observer

	// Preflight runs once before the first attempt, after the lock is held and
	// leftovers are swept; an error blocks the start with exit 3.
	Preflight func(ctx context.Context) error
	// Checkpoints runs between attempts, once the job's processes are gone, and once
	// before the first attempt to find the resume point. before, when above zero, is
	// the step of the anomaly that stopped the attempt: checkpoints saved at or after
	// it must be moved aside (never deleted) and not resumed from.
	Checkpoints func(ctx context.Context, before int64) (CheckpointResult, error)
	// QuickCheck runs between attempts (GPU health, GPU memory released, disk).
	QuickCheck func(ctx context.Context) error
}

// Defaults fills zero fields with the documented defaults.
func (o *Options) Defaults() {
	if o.Pty == "" {
		o.Pty = PtyAuto
	}
	if o.LogMaxSizeMB == 0 {
		o.LogMaxSizeMB = 100
	}
	if o.LogMaxBackups == 0 {
		o.LogMaxBackups = 10
	}
	if o.AbortGrace == 0 {
		o.AbortGrace = 5 * time.Second
	}
	if o.OutputDrainIdle == 0 {
		o.OutputDrainIdle = time.Second
	}
	if o.OutputDrainMax == 0 {
		o.OutputDrainMax = 5 * time.Second
	}
}
