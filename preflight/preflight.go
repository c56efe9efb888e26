// Package preflight holds trainwrap's health checks: disk, memory, /dev/shm, resource
// limits, GPUs, the run directory, the job's inputs and its newest checkpoint. Each
// check is a small type in a file of its own with a name, a Run that measures and
// judges, and, where a repair is provably safe, a Fix. Run executes checks
// concurrently, each under its own timeout, so one check that hangs (a dead NFS
// mount, an NVML Init that never returns) costs that check and not the whole preflight.
//
// The package knows nothing of the supervisor: the supervisor calls All before the
// first attempt and Quick plus WaitGPUMemoryReleased between attempts.
package preflight

import (
	"context"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// Status is the verdict of one check.
type Status string

// The verdicts, from best to worst; skip means the check does not apply here (no GPU
// library, no command given) and never blocks a start.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// rank orders statuses for "worst of": skip < ok < warn < fail.
func (s Status) rank() int {
	switch s {
	case OK:
		return 1
	case Warn:
		return 2
	case Fail:
		return 3
	}
	return 0
}

// worse returns the worse of a and b.
func worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Result is what one check found. Value is the measurement ("41.2 GB free"), Reason a
// one-line explanation a person can act on, Fixed what --fix changed (empty when
// nothing), Details extra lines (one per GPU, one per leftover process).
type Result struct {
	Check    string        `json:"check"`
	Status   Status        `json:"status"`
	Value    string        `json:"value,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	Fixed    string        `json:"fixed,omitempty"`
	Details  []string      `json:"details,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Check is one health check. Run must honour ctx; Run registers the check under
// Name, which --only selects by.
type Check interface {
	Name() string
	Run(ctx context.Context) Result
}

// Fixer is implemented by checks that can repair what they find. Fix is called only
// after Run reported warn or fail, and only with --fix; it returns a one-line account
// of what it changed ("" when it changed nothing). A Fix never deletes user data.
type Fixer interface {
	Fix(ctx context.Context) (changed string, err error)
}

// Defaults of Config, as the seed's health check used them.
const (
	DefaultMinFreeDisk       = 50 * GB
	DefaultMinFreeMemory     = 4 * GB
	DefaultShmMin            = 1 * GB
	DefaultKeep              = 3
	DefaultGPUReclaimTimeout = 50 * time.Second
	// GPUReleasedThreshold is the used memory under which a GPU counts as released
	// by a dead job (NVRx uses the same figure).
	GPUReleasedThreshold = 512 * MB
)

// Config is what the checks look at. The zero value of each threshold means its
// default; StateDir "" means rundir.DefaultDir.
type Config struct {
	// StateDir is the run directory (lock, state.json, runs.jsonl).
	StateDir string
	// LogDir is where the job's logs go; "" means StateDir/logs.
	LogDir string
	// CheckpointRoot is the directory the job writes checkpoints into; "" means none.
	CheckpointRoot string
	// MinFreeDisk: warn under it (or under 10% free), fail under a tenth of it.
	MinFreeDisk uint64
	// MinFreeMemory: warn when less memory than this is available to the job.
	MinFreeMemory uint64
	// ShmMin: warn when /dev/shm is smaller than this.
	ShmMin uint64
	// RequireGPU turns "no NVML library" from skip into fail.
	RequireGPU bool
	// ExpectGPUs fails the GPU check when fewer GPUs are visible (0 = any number).
	ExpectGPUs int
	// JobConfigs are the job's config files (JSON or YAML) that must parse.
	JobConfigs []string
	// Require are paths the job needs (a base model, a dataset) that must be readable.
	Require []string
	// Command is the job's command line; its executable must resolve on PATH.
	Command []string
	// Keep is how many complete checkpoints the disk fix keeps when it prunes.
	Keep int
	// QuietPeriod is how long a checkpoint's files must have been left alone before
	// it is judged or touched (checkpoints.ScanOptions.QuietPeriod: 0 means its
	// default, negative none).
	QuietPeriod time.Duration
	// GPUReclaimTimeout bounds WaitGPUMemoryReleased between attempts.
	GPUReclaimTimeout time.Duration
	// GPUExec, when set, runs the GPU check in this child command (see ChildCheck and
	// GPUChildArgs) instead of in this process.
	GPUExec []string
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	dir := rundir.New(c.StateDir)
	c.StateDir = dir.Path
	if c.LogDir == "" {
		c.LogDir = dir.Logs()
	}
	if c.MinFreeDisk == 0 {
		c.MinFreeDisk = DefaultMinFreeDisk
	}
	if c.MinFreeMemory == 0 {
		c.MinFreeMemory = DefaultMinFreeMemory
	}
	if c.ShmMin == 0 {
		c.ShmMin = DefaultShmMin
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.GPUReclaimTimeout == 0 {
		c.GPUReclaimTimeout = DefaultGPUReclaimTimeout
	}
	return c
}
