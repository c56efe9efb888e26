package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/trainwrap/trainwrap/preflight"
	"golang.org/x/sys/unix"
)

// PreflightCmd runs the health checks: trainwrap preflight [--fix] [--json] [--only NAME,...] [-- CMD ARGS].
type PreflightCmd struct {
	Fix  bool     `help:"Repair what is safe to repair (create dirs, move a corrupt state.json aside, remove a stale lock, kill leftovers proven ours, prune checkpoints by policy) and print what changed."`
	JSON bool     `help:"Print the report as JSON." name:"json"`
	Only []string `help:"Run only these checks (comma-separated): dirs, disk, memory, shm, rlimits, gpu, lock, state, leftovers, job-config, require, command, checkpoint." sep:"," placeholder:"NAME"`

	CheckpointDir string             `help:"The directory the job writes checkpoints into." type:"path" placeholder:"DIR"`
	MinFreeDisk   preflight.ByteSize `help:"Warn when a run, log or checkpoint filesystem has less free space than this (or under 10%); fail under a tenth [50GB]." default:"50GB" placeholder:"SIZE"`
	MinFreeMemory preflight.ByteSize `help:"Warn when less memory than this is available to the job (MemAvailable, or the cgroup limit less usage) [4GB]." default:"4GB" placeholder:"SIZE"`
	ShmMin        preflight.ByteSize `help:"Warn when /dev/shm is smaller than this (DataLoader workers die with a bus error) [1GB]." default:"1GB" placeholder:"SIZE"`
	RequireGPU    bool               `help:"Fail, instead of skip, when NVML or the GPUs are missing." name:"require-gpu"`
	ExpectGPUs    int                `help:"Fail when fewer GPUs than this are visible (0 = any)." name:"expect-gpus" placeholder:"N"`
	JobConfig     []string           `help:"The job's config files (JSON or YAML) that must parse; repeat the flag for more." type:"path" sep:"none" placeholder:"FILE"`
	Require       []string           `help:"Paths the job needs (base model, dataset) that must be readable; repeat the flag for more." type:"path" sep:"none" placeholder:"PATH"`
	Keep          int                `help:"Complete checkpoints the disk fix keeps when it prunes [3]." default:"3" placeholder:"N"`
	QuietPeriod   time.Duration      `name:"quiet-period" default:"3s" help:"A checkpoint with a file changed this recently is in progress and left alone; 0 = none (use more than 60s on NFS) [3s]."`

	InProcess bool `help:"Run the GPU check in this process instead of a child." hidden:""`

	Command []string `arg:"" optional:"" passthrough:"" help:"The training command whose executable must resolve, after --."`
}

// Run runs the checks, prints the table (or JSON) and exits 0 when all are ok or
// skipped, 1 on warnings only, 3 on any failure.
func (c *PreflightCmd) Run(g *Globals) error {
	cmd := c.Command
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	cfg := preflight.Config{
		StateDir:       g.StateDir,
		CheckpointRoot: c.CheckpointDir,
		MinFreeDisk:    uint64(c.MinFreeDisk),
		MinFreeMemory:  uint64(c.MinFreeMemory),
		ShmMin:         uint64(c.ShmMin),
		RequireGPU:     c.RequireGPU,
		ExpectGPUs:     c.ExpectGPUs,
		JobConfigs:     c.JobConfig,
		Require:        c.Require,
		Command:        cmd,
		Keep:           c.Keep,
		QuietPeriod:    c.QuietPeriod,
	}
	if cfg.QuietPeriod == 0 {
		cfg.QuietPeriod = -1 // the flag's 0 means none; the option's 0 means the default
	}
	// The GPU check runs in a child trainwrap: an NVML call that kills or hangs the
	// process then costs one check, not the report.
	if exe, err := os.Executable(); err == nil && !c.InProcess {
		cfg.GPUExec = preflight.GPUChildArgs(exe, cfg)
	}
	checks, err := preflight.Select(preflight.All(cfg), c.Only)
	if err != nil {
		return exitError{code: 2, err: fmt.Errorf("--only: %w", err)}
	}
	rep := preflight.Run(context.Background(), checks, preflight.RunOptions{Fix: c.Fix})
	if c.JSON {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("preflight: write JSON: %w", err)
		}
	} else if err := rep.Write(g.Stdout, colorOutput(g.Stdout)); err != nil {
		return fmt.Errorf("preflight: write report: %w", err)
	}
	if code := rep.ExitCode(); code != 0 {
		return exitError{code: code}
	}
	return nil
}

// colorOutput reports whether w is a terminal, so the table may be coloured; NO_COLOR
// (https://no-color.org) turns colour off.
func colorOutput(w any) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
