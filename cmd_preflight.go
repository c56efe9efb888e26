package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/preflight"
	"golang.org/x/sys/unix"
)

// PreflightCmd runs the health checks: trainwrap preflight [--fix] [--json] [--only NAME,...] [-- CMD ARGS].
type PreflightCmd struct {
	Fix  bool     `cmdline:"" help:"Repair what is safe to repair (create dirs, move a corrupt state.json aside, remove a stale lock, kill leftovers proven ours, prune checkpoints by policy) and print what changed."`
	JSON bool     `cmdline:"" help:"Print the report as JSON." name:"json"`
	Only []string `cmdline:"" help:"Run only these checks (comma-separated): dirs, disk, memory, shm, rlimits, gpu, lock, state, leftovers, job-config, require, command, checkpoint." sep:"," placeholder:"NAME"`

	ConfigFlag
	JobFlags
	QuietPeriod time.Duration `name:"quiet-period" default:"3s" help:"A checkpoint with a file changed this recently is in progress and left alone; 0 = none (use more than 60s on NFS) [3s]."`

	InProcess bool `cmdline:"" help:"Run the GPU check in this process instead of a child." hidden:""`

	Command []string `arg:"" optional:"" passthrough:"partial" help:"The training command whose executable must resolve, after --."`
}

// Run runs the checks, prints the table (or JSON) and exits 0 when all are ok or
// skipped, 1 on warnings only, 3 on any failure.
func (c *PreflightCmd) Run(g *Globals) error {
	cmd := c.Command
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	cfg := c.preflightConfig(g.StateDir, c.CheckpointDir, cmd)
	cfg.QuietPeriod = c.QuietPeriod
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
		return exitcode.New(2, fmt.Errorf("--only: %w", err))
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
		return exitcode.New(code, nil)
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
