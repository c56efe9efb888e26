package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/checkpoints"
	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/preflight"
	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/shim"
	"github.com/trainwrap/trainwrap/training"
)

// RunCmd supervises a training command: trainwrap [run] [flags] -- CMD ARGS...
type RunCmd struct {
	ConfigFlag

	Pty           string `help:"Give the job a pseudo-terminal: auto (when stdout is a terminal), always, never." enum:"auto,always,never" default:"auto"`
	LogMaxSize    int    `help:"Rotate logs/train.log at this size, in MB." default:"100"`
	LogMaxBackups int    `help:"Rotated logs to keep (gzip-compressed)." default:"10"`

	StopTimeout    time.Duration `help:"After forwarding a stop signal, wait this long before SIGKILL to every process of the job." default:"20s"`
	StallTimeout   time.Duration `help:"Restart the job after this long without progress, once it has made progress (0 = off)." default:"10m"`
	StartupTimeout time.Duration `help:"Restart the job when it makes no progress for this long after it starts (0 = use --stall-timeout)." default:"30m"`
	ProgressRegex  regexFlag     `help:"Only output lines matching this regular expression count as progress; its first group, if any, is the step." placeholder:"RE"`
	HeartbeatFile  string        `help:"A change of this file's mtime counts as progress." type:"path" placeholder:"FILE"`

	ResumeAllowance time.Duration `help:"Once an attempt has made progress, later attempts get --stall-timeout plus this long (loading the checkpoint) for their first progress, not --startup-timeout." default:"5m"`
	Cgroup          string        `help:"Put the job in a cgroup v2 of its own and kill it as a whole at the end, where delegation allows: auto, or off (the process sweep alone)." enum:"auto,off" default:"auto"`

	BackoffInitial             time.Duration `help:"First restart delay; doubles after each failure." default:"1s"`
	BackoffMax                 time.Duration `help:"Largest restart delay." default:"60s"`
	HealthyAfter               time.Duration `help:"An attempt that ran this long resets the backoff." default:"10m"`
	MaxRestartsInWindow        int           `help:"Give up after this many restarts within --restart-window (0 = no limit)." default:"3"`
	RestartWindow              time.Duration `help:"The window of --max-restarts-in-window." default:"5m"`
	MaxFailuresWithoutProgress int           `help:"Give up after this many failures in a row that got no further (0 = no limit)." default:"5"`
	MaxRestarts                int           `help:"Give up after this many restarts in all (0 = no limit)." default:"0"`

	ResumeArg        jobFlagName `help:"Pass the resume checkpoint to the job as FLAG PATH (replacing a FLAG already there)." placeholder:"FLAG"`
	DeleteIncomplete bool        `cmdline:"" help:"Delete incomplete checkpoints newer than the resume point instead of moving them to the quarantine (command line only)."`
	NoPrune          bool        `help:"Choose the resume point, but prune, quarantine, hash and rewrite nothing in the checkpoint root: for every node but one when nodes share a checkpoint directory."`
	Force            bool        `cmdline:"" help:"Start even when state.json is corrupt (it is moved aside, not deleted; command line only)."`
	SkipPreflight    bool        `help:"Start without the health checks (a failing check otherwise blocks the start with exit 3)."`

	SmartRecovery bool        `help:"Before a restart, change what caused the crash: PYTORCH_CUDA_ALLOC_CONF on cuda_oom, NCCL_DEBUG=INFO on nccl and timeout; on by itself with any of the flags below."`
	BatchArg      jobFlagName `help:"Smart recovery: the job's batch-size flag; halved on a repeated cuda_oom (then exit 71 under --min-batch) and on host_oom once the workers are 0." placeholder:"FLAG"`
	GradAccumArg  jobFlagName `help:"Smart recovery: the job's gradient-accumulation flag; doubled when the batch halves, so the effective batch stays (absent: 1)." placeholder:"FLAG"`
	WorkersArg    jobFlagName `help:"Smart recovery: the job's DataLoader-workers flag; halved down to 0 on dataloader crashes from shared memory or open files, and first on host_oom." placeholder:"FLAG"`
	BatchKey      string      `help:"Smart recovery: as --batch-arg, for a key (outer.inner) in a --job-config file; the next attempt gets a rewritten copy in the run dir." placeholder:"KEY"`
	GradAccumKey  string      `help:"Smart recovery: as --grad-accum-arg, for a key in a --job-config file." placeholder:"KEY"`
	WorkersKey    string      `help:"Smart recovery: as --workers-arg, for a key in a --job-config file." placeholder:"KEY"`
	MinBatch      int         `help:"Smart recovery never lowers the batch under this." default:"1" placeholder:"N"`

	MetricsAddr     string        `help:"Serve Prometheus /metrics and the status page at / on this address (a bare port binds 127.0.0.1)." placeholder:"ADDR"`
	MetricsTextfile string        `help:"Write metrics in node_exporter's textfile-collector format to this .prom file after every event." type:"path" placeholder:"FILE"`
	NotifyWebhook   string        `help:"POST JSON (with a Slack/Mattermost text field) here on crash, restart, give-up, hang, success and training anomaly." placeholder:"URL"`
	NotifyCommand   string        `help:"Run this shell command on the same events, with TRAINWRAP_* env vars and the JSON on stdin." placeholder:"CMD"`
	SampleInterval  time.Duration `help:"Sample host memory, disk free and GPU stats into the run dir this often (0 = off)." default:"30s"`

	Metric    []string `help:"Also read this metric from the output: NAME=REGEX, the regexp's first group (or its whole match) the number; repeat for more. Kept in the run dir's metrics.jsonl; a NAME of a built-in (loss, loss_scale, samples_per_second, step_time_seconds) feeds its anomaly checks." sep:"none" placeholder:"NAME=REGEX"`
	OnAnomaly string   `help:"When the training goes bad without crashing (loss spike, loss flat, loss scale collapse, throughput drop, straggler): warn (say it, record it, notify), or restart (also stop the attempt and resume from the newest checkpoint saved before the anomaly)." enum:"warn,restart" default:"warn"`
	// The detector's thresholds a user may need to move; 0 keeps the detector's own
	// default (training.DetectorOptions), so the two cannot disagree.
	SpikeZ              float64 `help:"A loss this many robust standard deviations (1.4826 x MAD) above the median of the recent losses is a loss spike (0 = the detector's default)." default:"0" placeholder:"Z"`
	LossFlatSteps       int64   `help:"A loss that made no new low for this many steps is flat (0 = the detector's default)." default:"0" placeholder:"N"`
	ThroughputDropRatio float64 `help:"Throughput (samples/s, or 1/step time) below this fraction of the attempt's own baseline, sustained, is a throughput drop (0 = the detector's default)." default:"0" placeholder:"R"`

	JobFlags

	// partial: an unknown flag before the command is a usage error, not the job.
	Command []string `arg:"" optional:"" passthrough:"partial" help:"The training command and its arguments, after --."`
}

// Run supervises the command and exits with the code DESIGN.md names.
func (c *RunCmd) Run(g *Globals) error {
	cmd := c.Command
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return exitcode.New(2, errors.New("no command given: put it after --, as in trainwrap [run] [flags] -- CMD ARGS"))
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
		ResumeArg:      string(c.ResumeArg),
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
	opt.Recovery = shim.RecoveryOptions{
		On:       c.SmartRecovery,
		BatchArg: string(c.BatchArg), GradAccumArg: string(c.GradAccumArg), WorkersArg: string(c.WorkersArg),
		BatchKey: c.BatchKey, GradAccumKey: c.GradAccumKey, WorkersKey: c.WorkersKey,
		JobConfigs: c.JobConfig,
		MinBatch:   c.MinBatch,
	}
	if c.MinBatch < 1 {
		return exitcode.New(2, fmt.Errorf("--min-batch %d: must be at least 1", c.MinBatch))
	}
	tr, err := c.trainingOptions()
	if err != nil {
		return exitcode.New(2, err)
	}
	opt.Training = tr
	opt.ResumeAllowance = c.ResumeAllowance
	opt.Signals = g.Signals
	opt.Cgroup = c.Cgroup
	if c.ProgressRegex != "" {
		re, err := regexp.Compile(string(c.ProgressRegex))
		if err != nil {
			return exitcode.New(2, fmt.Errorf("--progress-regex: %v", err))
		}
		opt.ProgressRegex = re
	}
	if exe, err := os.Executable(); err == nil {
		opt.Exe = exe
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := c.checkpointRoot(g, cmd)
	opt.CheckpointRoot = root
	pcfg := c.preflightConfig(g.StateDir, root, cmd)
	// NVML runs in a child trainwrap: a driver that kills or hangs its caller costs
	// one check, not the supervisor. Without the library there is nothing to kill or
	// hang, and a child per check (every attempt, every sample) would only say so
	// again: the GPU check then runs in process and the sampler reads no GPUs.
	haveNVML := preflight.HaveNVML()
	if haveNVML {
		pcfg.GPUExec = preflight.GPUChildArgs(opt.Exe, pcfg)
	}
	if root != "" {
		opt.Checkpoints = c.maintainer(g, root)
	}
	if !c.SkipPreflight {
		opt.Preflight = func(ctx context.Context) error { return runPreflight(ctx, g, preflight.All(pcfg)) }
	}
	opt.QuickCheck = func(ctx context.Context) error {
		if err := preflight.WaitGPUMemoryReleased(ctx, c.GPUReclaimTimeout, preflight.GPUReleasedThreshold); err != nil {
			fmt.Fprintf(g.Stderr, "trainwrap: %v\n", err)
		}
		rep := preflight.Run(ctx, preflight.Quick(pcfg), preflight.RunOptions{})
		if rep.ExitCode() != 0 {
			rep.Write(g.Stderr, false)
		}
		return nil
	}
	// The sampler writes into the run dir from its first tick.
	if err := os.MkdirAll(g.StateDir, 0o755); err != nil {
		return exitcode.New(2, fmt.Errorf("create run directory %s: %w; choose a writable --state-dir", g.StateDir, err))
	}
	obs, err := observe.New(ctx, observe.Options{
		MetricsAddr:     c.MetricsAddr,
		MetricsTextfile: c.MetricsTextfile,
		NotifyWebhook:   c.NotifyWebhook,
		NotifyCommand:   c.NotifyCommand,
		SampleInterval:  c.SampleInterval,
		StateDir:        g.StateDir,
		DiskPaths:       nonEmpty(g.StateDir, root),
		GPUCommand:      gpuCommand(opt.Exe, haveNVML),
		Stderr:          g.Stderr,
	})
	if err != nil {
		return exitcode.New(2, err)
	}
	defer obs.Close()
	opt.Observer = obs
	code, err := shim.Run(ctx, opt)
	if err != nil {
		return exitcode.New(code, err)
	}
	if code != 0 {
		return exitcode.New(code, nil)
	}
	return nil
}

// trainingOptions are the metrics recognisers and the anomaly detector the flags ask
// for. A bad --metric is a usage error naming it.
func (c *RunCmd) trainingOptions() (shim.TrainingOptions, error) {
	var custom []training.Custom
	for _, spec := range c.Metric {
		m, err := training.ParseCustom(spec)
		if err != nil {
			return shim.TrainingOptions{}, err
		}
		custom = append(custom, m)
	}
	switch {
	case c.SpikeZ < 0:
		return shim.TrainingOptions{}, fmt.Errorf("--spike-z %g: must be above 0 (higher finds fewer spikes), or 0 for the default", c.SpikeZ)
	case c.LossFlatSteps < 0:
		return shim.TrainingOptions{}, fmt.Errorf("--loss-flat-steps %d: must be a number of steps, or 0 for the default", c.LossFlatSteps)
	case c.ThroughputDropRatio < 0 || c.ThroughputDropRatio >= 1:
		return shim.TrainingOptions{}, fmt.Errorf("--throughput-drop-ratio %g: must be a fraction between 0 and 1 (0.5: half the baseline), or 0 for the default", c.ThroughputDropRatio)
	}
	dopt := training.DetectorOptions{SpikeZ: c.SpikeZ, FlatSteps: c.LossFlatSteps, ThroughputRatio: c.ThroughputDropRatio}
	return shim.TrainingOptions{
		NewRecognizer: func() shim.LineRecognizer { return training.NewRecognizer(custom) },
		Detector:      training.NewDetector(dopt),
		OpenSeries:    func(path string) (shim.SeriesSink, error) { return training.OpenSeries(path) },
		OnAnomaly:     c.OnAnomaly,
	}, nil
}

// runPreflight runs the checks before the first attempt; warnings are shown and do not
// block, a failure blocks the start.
func runPreflight(ctx context.Context, g *Globals, checks []preflight.Check) error {
	rep := preflight.Run(ctx, checks, preflight.RunOptions{})
	if rep.ExitCode() == 0 {
		return nil
	}
	rep.Write(g.Stderr, colorOutput(g.Stderr))
	if failed := rep.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, r := range failed {
			names[i] = r.Check
		}
		return fmt.Errorf("%s", strings.Join(names, ", "))
	}
	return nil
}

// checkpointRoot is --checkpoint-dir, or the command's own output-dir argument, said
// aloud so that nobody wonders which directory trainwrap prunes.
func (c *RunCmd) checkpointRoot(g *Globals, cmd []string) string {
	if c.CheckpointDir != "" {
		return c.CheckpointDir
	}
	root, flag, ok := checkpoints.RootFromArgs(cmd)
	if !ok {
		return ""
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	fmt.Fprintf(g.Stderr, "trainwrap: checkpoints: using %s from the command's %s (set --checkpoint-dir to choose another)\n", root, flag)
	return root
}

func nonEmpty(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// maintainer is the between-attempts checkpoint maintenance: verify, hash, prune,
// quarantine, choose the resume point. It runs only once every process of the job is
// gone, so no quiet period is needed; files held open by any other live process still
// make their checkpoint in-progress.
func (c *RunCmd) maintainer(g *Globals, root string) func(context.Context, int64) (shim.CheckpointResult, error) {
	manifests := rundir.New(g.StateDir).Manifests()
	return func(ctx context.Context, before int64) (shim.CheckpointResult, error) {
		res := shim.CheckpointResult{NewestComplete: -1}
		if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
			return res, nil // the job has not written any yet
		}
		rep, err := checkpoints.Maintain(ctx, checkpoints.MaintainOptions{
			Root:             root,
			ManifestDir:      manifests,
			Keep:             c.Keep,
			DeleteIncomplete: c.DeleteIncomplete,
			MinFreeDisk:      uint64(c.MinFreeDisk),
			QuietPeriod:      -1,
			// Another node's job may be writing into a shared root while this node is
			// between attempts; only one node may judge and move checkpoints.
			DryRun: c.NoPrune,
			// After an anomaly, what was saved since holds the bad steps' weights.
			Before:       before,
			BeforeReason: fmt.Sprintf("saved at or after step %d, where the training went bad (--on-anomaly restart)", before),
		})
		if err != nil {
			return res, err
		}
		res.Seen = len(rep.Checkpoints)
		res.Corrupt, res.Notes = rep.Corrupt, rep.Notes
		if !c.NoPrune { // a dry run's notes say what it would do; it did nothing to record
			res.Pruned, res.Quarantined, res.BytesFreed = rep.Pruned, rep.Quarantined, rep.BytesFreed
			for _, a := range rep.Actions {
				res.Removed = append(res.Removed, rundir.Removal{Checkpoint: a.Checkpoint, Action: a.Action, Reason: a.Reason, Bytes: a.Bytes})
			}
		}
		if rep.Resume != nil {
			res.Resume, res.ResumeStep, res.NewestComplete, res.ResumeTime = rep.Resume.Path, rep.Resume.Step, rep.Resume.Step, rep.Resume.ModTime
		}
		return res, nil
	}
}

// gpuCommand runs the resource sampler's NVML reads in a child trainwrap, so a driver
// that lacks a function (go-nvml then exits 127) costs a sample, not the supervisor.
// Without the NVML library it is nil: the in-process reader then fails to load it once
// and samples no GPUs, with no process per sample.
func gpuCommand(exe string, haveNVML bool) []string {
	if exe == "" || !haveNVML {
		return nil
	}
	return []string{exe, "sample-gpus"}
}

// SampleGPUsCmd is the internal child of the resource sampler.
type SampleGPUsCmd struct{}

// Run prints GPU stats as JSON.
func (SampleGPUsCmd) Run(g *Globals) error { return observe.SampleGPUs(g.Stdout) }
