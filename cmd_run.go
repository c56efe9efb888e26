package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/trainwrap/trainwrap/shim"
)

// RunCmd supervises a training command: trainwrap [run] [flags] -- CMD ARGS...
type RunCmd struct {
	Config string `help:"trainwrap's own JSON config file; flags win over TRAINWRAP_* env vars, env vars over the file (default: trainwrap.json when present)." type:"path" placeholder:"FILE"`

	Pty           string `help:"Give the job a pseudo-terminal: auto (when stdout is a terminal), always, never." enum:"auto,always,never" default:"auto"`
	LogMaxSize    int    `help:"Rotate logs/train.log at this size, in MB." default:"100"`
	LogMaxBackups int    `help:"Rotated logs to keep (gzip-compressed)." default:"10"`

	StopTimeout    time.Duration `help:"After forwarding a stop signal, wait this long before SIGKILL to every process of the job." default:"20s"`
	StallTimeout   time.Duration `help:"Restart the job after this long without progress, once it has made progress (0 = off)." default:"10m"`
	StartupTimeout time.Duration `help:"Restart the job when it makes no progress for this long after it starts (0 = use --stall-timeout)." default:"30m"`
	ProgressRegex  string        `help:"Only output lines matching this regular expression count as progress; its first group, if any, is the step." placeholder:"RE"`
	HeartbeatFile  string        `help:"A change of this file's mtime counts as progress." type:"path" placeholder:"FILE"`

	BackoffInitial             time.Duration `help:"First restart delay; doubles after each failure." default:"1s"`
	BackoffMax                 time.Duration `help:"Largest restart delay." default:"60s"`
	HealthyAfter               time.Duration `help:"An attempt that ran this long resets the backoff." default:"10m"`
	MaxRestartsInWindow        int           `help:"Give up after this many restarts within --restart-window (0 = no limit)." default:"3"`
	RestartWindow              time.Duration `help:"The window of --max-restarts-in-window." default:"5m"`
	MaxFailuresWithoutProgress int           `help:"Give up after this many failures in a row that got no further (0 = no limit)." default:"5"`
	MaxRestarts                int           `help:"Give up after this many restarts in all (0 = no limit)." default:"0"`

	ResumeArg string `help:"Pass the resume checkpoint to the job as FLAG PATH (replacing a FLAG already there)." placeholder:"FLAG"`
	Force     bool   `help:"Start even when state.json is corrupt (it is moved aside, not deleted)."`

	Command []string `arg:"" optional:"" passthrough:"" help:"The training command and its arguments, after --."`
}

// Run supervises the command and exits with the code DESIGN.md names.
func (c *RunCmd) Run(g *Globals) error {
	cmd := c.Command
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return exitError{code: 2, err: errors.New("no command given: trainwrap [run] [flags] -- CMD ARGS...")}
	}
	opt := shim.Options{
		StateDir:       g.StateDir,
		Command:        cmd,
		Pty:            shim.PtyMode(c.Pty),
		LogMaxSizeMB:   c.LogMaxSize,
		LogMaxBackups:  c.LogMaxBackups,
		StopTimeout:    c.StopTimeout,
		StallTimeout:   c.StallTimeout,
		StartupTimeout: c.StartupTimeout,
		HeartbeatFile:  c.HeartbeatFile,
		ResumeArg:      c.ResumeArg,
		Force:          c.Force,
		Stdout:         g.Stdout,
		Stderr:         g.Stderr,
		Policy: shim.Policy{
			BackoffInitial:             c.BackoffInitial,
			BackoffMax:                 c.BackoffMax,
			Jitter:                     0.2,
			HealthyAfter:               c.HealthyAfter,
			MaxRestartsInWindow:        c.MaxRestartsInWindow,
			RestartWindow:              c.RestartWindow,
			MaxFailuresWithoutProgress: c.MaxFailuresWithoutProgress,
			MaxRestarts:                c.MaxRestarts,
		},
	}
	if c.ProgressRegex != "" {
		re, err := regexp.Compile(c.ProgressRegex)
		if err != nil {
			return exitError{code: 2, err: fmt.Errorf("--progress-regex: %v", err)}
		}
		opt.ProgressRegex = re
	}
	if exe, err := os.Executable(); err == nil {
		opt.Exe = exe
	}
	code, err := shim.Run(context.Background(), opt)
	if err != nil {
		return exitError{code: code, err: err}
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}
