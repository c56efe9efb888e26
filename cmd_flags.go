package main

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/alecthomas/kong"
	"github.com/trainwrap/trainwrap/preflight"
)

// JobFlags describe the job's surroundings: where it writes checkpoints, what it
// needs, and the health thresholds. `run` and `preflight` share them, so that
// `trainwrap preflight` checks exactly what `trainwrap run` will check.
type JobFlags struct {
	CheckpointDir     string             `help:"The directory the job writes checkpoints into (default: the command's own --output_dir, --output-dir, --save_dir, --checkpoint_dir or --default_root_dir)." type:"path" placeholder:"DIR"`
	MinFreeDisk       preflight.ByteSize `help:"Warn when a run, log or checkpoint filesystem has less free space than this (or under 10%); fail under a tenth. Pruning keeps only the newest checkpoint while below it [50GB]." default:"50GB" placeholder:"SIZE"`
	MinFreeMemory     preflight.ByteSize `help:"Warn when less memory than this is available to the job (MemAvailable, or the cgroup limit less usage) [4GB]." default:"4GB" placeholder:"SIZE"`
	ShmMin            preflight.ByteSize `help:"Warn when /dev/shm is smaller than this (DataLoader workers die with a bus error) [1GB]." default:"1GB" placeholder:"SIZE"`
	RequireGPU        bool               `help:"Fail, instead of skip, when NVML or the GPUs are missing." name:"require-gpu"`
	ExpectGPUs        int                `help:"Fail when fewer GPUs than this are visible (0 = any)." name:"expect-gpus" placeholder:"N"`
	JobConfig         []string           `help:"The job's config files (JSON or YAML) that must parse; repeat the flag for more." type:"path" sep:"none" placeholder:"FILE"`
	Require           []string           `help:"Paths the job needs (base model, dataset) that must be readable; repeat the flag for more." type:"path" sep:"none" placeholder:"PATH"`
	Keep              int                `help:"Complete checkpoints to keep when pruning; the newest, the best and pointer targets are always kept [3]." default:"3" placeholder:"N"`
	GPUReclaimTimeout time.Duration      `help:"Between attempts, wait up to this long for the dead job's GPU memory to be released (under 512 MB per GPU)." default:"50s"`
}

// preflightConfig is the preflight configuration these flags describe.
func (f JobFlags) preflightConfig(stateDir, checkpointRoot string, command []string) preflight.Config {
	return preflight.Config{
		StateDir:          stateDir,
		CheckpointRoot:    checkpointRoot,
		MinFreeDisk:       uint64(f.MinFreeDisk),
		MinFreeMemory:     uint64(f.MinFreeMemory),
		ShmMin:            uint64(f.ShmMin),
		RequireGPU:        f.RequireGPU,
		ExpectGPUs:        f.ExpectGPUs,
		JobConfigs:        f.JobConfig,
		Require:           f.Require,
		Command:           command,
		Keep:              f.Keep,
		GPUReclaimTimeout: f.GPUReclaimTimeout,
	}
}

// ConfigFlag is --config, which run and preflight share, so that `trainwrap
// preflight` checks the thresholds the file gives `trainwrap run`.
type ConfigFlag struct {
	Config string `help:"trainwrap's own JSON config file for run and preflight; flags win over TRAINWRAP_* env vars, env vars over the file (default: trainwrap.json when present)." placeholder:"FILE"`
}

// BeforeResolve reads the config file, after the command line and before kong asks
// resolvers for the flags it left unset. Only run and preflight embed ConfigFlag,
// so only they ever open the file.
func (ConfigFlag) BeforeResolve(ctx *kong.Context) error { return loadConfigHook(ctx) }

// jobFlagName is a flag of the job's own command line, such as
// --resume_from_checkpoint or --per_device_train_batch_size: its value is the next
// argument whatever it looks like, so `--resume-arg --resume_from_checkpoint` and
// `--batch-arg --per_device_train_batch_size` work as the README shows, not only the
// `=` forms.
type jobFlagName string

// Decode takes the next argument as it is. Only "--" (the start of the job's
// command) and a missing argument are refused.
func (f *jobFlagName) Decode(ctx *kong.DecodeContext) error {
	t := ctx.Scan.Pop()
	if t.IsEOL() || (t.Type == kong.UntypedToken && t.String() == "--") {
		return errors.New("give the job's own flag as the value, e.g. --resume-arg --resume_from_checkpoint")
	}
	s, ok := t.Value.(string)
	if !ok {
		return fmt.Errorf("expected a flag name but got %v", t.Value)
	}
	*f = jobFlagName(s)
	return nil
}

// regexFlag is a regular expression, compiled while the flags are parsed, so that a
// bad one is a usage error naming where it came from (flag, env var or config key).
type regexFlag string

// Decode compiles the expression.
func (r *regexFlag) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("regular expression", &s); err != nil {
		return err
	}
	if _, err := regexp.Compile(s); err != nil {
		return err
	}
	*r = regexFlag(s)
	return nil
}
