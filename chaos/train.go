package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// learningRate is the constant learning rate the fake trainer reports.
const learningRate = 5e-05

// loggingSteps is how often a {'loss': ...} line is printed, as HF's logging_steps.
const loggingSteps = 5

// ProgressRegex is the --progress-regex that takes the step from the trainer's
// output: every step prints a line "global_step=N".
const ProgressRegex = `global_step=(\d+)`

// TrainOptions configure the fake trainer; the kong tags are the flags of
// `trainwrap chaos train`. The zero value is not useful: MaxSteps, SaveSteps and
// StepTime come from the flag defaults.
type TrainOptions struct {
	OutputDir            string        `name:"output_dir" aliases:"output-dir" help:"Where checkpoint-<step>/ directories are written." default:"chaos-output" type:"path" placeholder:"DIR"`
	MaxSteps             int           `name:"max-steps" aliases:"max_steps" help:"Exit 0 after this step." default:"60"`
	SaveSteps            int           `name:"save-steps" aliases:"save_steps" help:"Write a checkpoint every this many steps (0 = never)." default:"10"`
	StepTime             time.Duration `name:"step-time" help:"Time one step takes." default:"100ms"`
	Fail                 string        `name:"fail" help:"Die this way: cuda-oom, host-oom, hang, nccl-timeout, cuda-error, segv, disk-full, nan, import-error, file-not-found, config-error, dataloader, partial-checkpoint, sigterm-ignore, orphan, 'cuda-oom-above-batch B' (OOM while --per_device_train_batch_size is above B), 'exit N'; or keep running with sick metrics from --fail-at on: loss-spike, loss-scale-collapse, slowdown." placeholder:"MODE"`
	FailAt               int           `name:"fail-at" help:"Step at which to fail (0 = at start-up); partial-checkpoint dies in the first save at or after it." default:"0" placeholder:"STEP"`
	FailAttempts         int           `name:"fail-attempts" help:"Fail only while TRAINWRAP_ATTEMPT is at most this (0 = every attempt)." default:"0" placeholder:"K"`
	HoldSick             bool          `name:"hold-sick" help:"With loss-spike, loss-scale-collapse or slowdown: a sick attempt does not exit at --max-steps but waits, silent, until it is stopped, as a sick run that trains on for days does; a test of --on-anomaly restart then does not depend on how soon the stop lands."`
	ResumeFromCheckpoint string        `name:"resume_from_checkpoint" aliases:"resume-from-checkpoint" help:"Checkpoint to resume from ('true' = the newest in --output_dir); default: $TRAINWRAP_RESUME_CHECKPOINT." placeholder:"PATH"`
	Sleeper              bool          `name:"sleeper" hidden:"" help:"Internal: the orphan mode's grandchild."`

	// The batch geometry, under HF TrainingArguments' names, for smart recovery to
	// change: printed at start and saved in trainer_state.json.
	BatchSize    int `name:"per_device_train_batch_size" aliases:"per-device-train-batch-size" help:"Batch size per device; cuda-oom-above-batch fails above its B." default:"8" placeholder:"N"`
	GradAccum    int `name:"gradient_accumulation_steps" aliases:"gradient-accumulation-steps" help:"Gradient accumulation steps." default:"1" placeholder:"N"`
	LoaderWorker int `name:"dataloader_num_workers" aliases:"dataloader-num-workers" help:"DataLoader workers (printed; none are started)." default:"0" placeholder:"N"`

	// FailArg is the number of a --fail mode given as a word of its own, as in
	// --fail cuda-oom-above-batch 4.
	FailArg []string `arg:"" optional:"" name:"fail-arg" help:"The number of the --fail mode, when not quoted into it: --fail cuda-oom-above-batch 4."`
}

// Validate names the first bad option.
func (o TrainOptions) Validate() error {
	switch {
	case o.MaxSteps < 1:
		return fmt.Errorf("--max-steps %d: must be at least 1", o.MaxSteps)
	case o.SaveSteps < 0:
		return fmt.Errorf("--save-steps %d: must be 0 (never) or more", o.SaveSteps)
	case o.StepTime < 0:
		return fmt.Errorf("--step-time %s: must not be negative", o.StepTime)
	case o.FailAt < 0:
		return fmt.Errorf("--fail-at %d: must not be negative", o.FailAt)
	case o.FailAttempts < 0:
		return fmt.Errorf("--fail-attempts %d: must not be negative", o.FailAttempts)
	case o.OutputDir == "":
		return errors.New("--output_dir: give the directory checkpoints go to")
	case o.BatchSize < 1:
		return fmt.Errorf("--per_device_train_batch_size %d: must be at least 1", o.BatchSize)
	case o.GradAccum < 1:
		return fmt.Errorf("--gradient_accumulation_steps %d: must be at least 1", o.GradAccum)
	case o.LoaderWorker < 0:
		return fmt.Errorf("--dataloader_num_workers %d: must not be negative", o.LoaderWorker)
	}
	spec, err := o.failSpec()
	if err != nil {
		return err
	}
	mode, _, err := ParseMode(spec)
	if err != nil {
		return err
	}
	if o.HoldSick && !IsAnomalyMode(mode) {
		return fmt.Errorf("--hold-sick: only with --fail %s, not %q", strings.Join(AnomalyModes, ", "), spec)
	}
	return nil
}

// failSpec is --fail with its number, when that came as a word of its own.
func (o TrainOptions) failSpec() (string, error) {
	switch {
	case len(o.FailArg) == 0:
		return o.Fail, nil
	case len(o.FailArg) == 1 && o.Fail != "":
		return o.Fail + " " + o.FailArg[0], nil
	}
	return "", fmt.Errorf("unexpected argument %q: chaos train takes only flags (and the number of --fail MODE N)", strings.Join(o.FailArg, " "))
}

// trainer is one run of the fake training job.
type trainer struct {
	opt      TrainOptions
	mode     string
	exitCode int
	failing  bool
	stdout   io.Writer
	stderr   io.Writer
	exe      string
	history  []logEntry
	start    time.Time
	barLen   int     // runes of the tqdm bar on screen, to blank it
	scale    float64 // the fp16 loss scale of loss-scale-collapse
}

// spikeSteps is how long the loss of loss-spike stays high.
const spikeSteps = 20

// slowdownFactor is how much longer the steps of slowdown take.
const slowdownFactor = 3

// Train runs the fake training job: it resumes from the checkpoint the options or
// TRAINWRAP_RESUME_CHECKPOINT name, steps to MaxSteps printing HF-Trainer-like output,
// writes a checkpoint every SaveSteps, and fails as opt.Fail says. Modes that end the
// process by a signal (host-oom, segv, nccl-timeout, partial-checkpoint) do not return;
// the Python-like crashes return an *ExitError after printing their traceback. exe is
// this program, re-executed as the orphan mode's grandchild.
func Train(ctx context.Context, opt TrainOptions, exe string, stdout, stderr io.Writer) error {
	if opt.Sleeper {
		return Sleep(ctx)
	}
	if err := opt.Validate(); err != nil {
		return err
	}
	spec, _ := opt.failSpec()
	mode, code, _ := ParseMode(spec)
	t := &trainer{
		opt: opt, mode: mode, exitCode: code, stdout: stdout, stderr: stderr, exe: exe, start: time.Now(),
		failing: mode != FailNone && (opt.FailAttempts == 0 || envAttempt() <= opt.FailAttempts),
	}
	if mode != FailNone && !t.failing {
		fmt.Fprintf(stderr, "[chaos] attempt %d > --fail-attempts %d: not failing (%s) this time\n", envAttempt(), opt.FailAttempts, spec)
	}
	if t.failing && mode == FailCUDAOOMAboveBatch && opt.BatchSize <= code {
		t.failing = false
		fmt.Fprintf(stderr, "[chaos] batch %d fits in GPU memory (--fail %s): not failing\n", opt.BatchSize, spec)
	}
	return t.run(ctx)
}

func (t *trainer) run(ctx context.Context) error {
	if t.failing && t.opt.FailAt == 0 {
		if err := t.failStartup(ctx); err != nil {
			return err
		}
	}
	step := 0
	resume := t.opt.ResumeFromCheckpoint
	if resume == "" {
		resume = os.Getenv("TRAINWRAP_RESUME_CHECKPOINT")
	}
	if resume != "" {
		rp, err := loadResume(resume, t.opt.OutputDir)
		if err != nil {
			fmt.Fprintln(t.stderr, err)
			return &ExitError{Code: 1, Mode: "resume"}
		}
		step = rp.state.GlobalStep
		t.history = rp.state.LogHistory
		fmt.Fprintf(t.stdout, "[chaos] resuming from %s at step %d\n", rp.path, step)
	}
	t.banner(step)
	if t.failing && t.mode == FailOrphan {
		if err := t.spawnOrphan(); err != nil {
			return err
		}
		if t.opt.FailAt == 0 {
			return t.failAt(ctx, 0)
		}
	}
	if t.failing && t.mode == FailSigtermIgnore {
		// Like a job stuck in the driver: from the start nothing but SIGKILL ends it.
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGABRT)
		fmt.Fprintln(t.stderr, "[chaos] SIGTERM, SIGINT and SIGABRT are ignored from now on")
	}
	// SIGUSR1 is SLURM's time-limit warning (--signal=USR1@N): save at the end of this
	// step and keep going, as the training script in docs/slurm.md does.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	saveNow := false
	tick := time.NewTicker(max(t.opt.StepTime, time.Microsecond))
	defer tick.Stop()
	for step < t.opt.MaxSteps {
		select {
		case <-ctx.Done():
			fmt.Fprintln(t.stderr)
			return ctx.Err()
		case <-usr1:
			saveNow = true
			continue
		case <-tick.C:
		}
		step++
		if t.failing && step == max(t.opt.FailAt, 1) && t.mode == FailSlowdown {
			t.clearBar()
			fmt.Fprintf(t.stderr, "[chaos] from step %d, steps take %dx longer (--fail %s)\n", step, slowdownFactor, t.mode)
			tick.Reset(slowdownFactor * max(t.opt.StepTime, time.Microsecond))
		}
		if t.failing && step == t.opt.FailAt && t.mode != FailPartialCheckpoint && t.mode != FailDiskFull && !IsAnomalyMode(t.mode) {
			if err := t.failAt(ctx, step); err != nil {
				return err
			}
		}
		t.printStep(step)
		due := t.opt.SaveSteps > 0 && step%t.opt.SaveSteps == 0
		if saveNow {
			t.clearBar()
			fmt.Fprintf(t.stdout, "[chaos] got SIGUSR1: saving a checkpoint at step %d\n", step)
			saveNow, due = false, true
		}
		if due {
			if err := t.save(step); err != nil {
				return err
			}
		}
	}
	if t.opt.HoldSick && t.failing && IsAnomalyMode(t.mode) {
		t.clearBar()
		fmt.Fprintf(t.stderr, "[chaos] step %d with sick metrics: waiting to be stopped (--hold-sick)\n", step)
		return t.hang(ctx, false)
	}
	fmt.Fprintf(t.stderr, "\n\nTraining completed. Do not forget to share your model on huggingface.co/models =)\n\n")
	fmt.Fprintf(t.stdout, "{'train_runtime': %.4f, 'train_samples_per_second': %.3f, 'train_steps_per_second': %.3f, 'train_loss': %.4f, 'epoch': 1.0}\n",
		time.Since(t.start).Seconds(), float64(t.opt.MaxSteps*8)/max(time.Since(t.start).Seconds(), 1e-3),
		float64(t.opt.MaxSteps)/max(time.Since(t.start).Seconds(), 1e-3), lossAt(t.opt.MaxSteps))
	return nil
}

// banner prints what HF Trainer prints before the first step.
func (t *trainer) banner(step int) {
	w := t.stdout
	fmt.Fprintln(w, "***** Running training *****")
	fmt.Fprintf(w, "  Num examples = %d\n", t.opt.MaxSteps*t.opt.BatchSize*t.opt.GradAccum)
	fmt.Fprintln(w, "  Num Epochs = 1")
	fmt.Fprintf(w, "  Instantaneous batch size per device = %d\n", t.opt.BatchSize)
	fmt.Fprintf(w, "  Total train batch size (w. parallel, distributed & accumulation) = %d\n", t.opt.BatchSize*t.opt.GradAccum)
	fmt.Fprintf(w, "  Gradient Accumulation steps = %d\n", t.opt.GradAccum)
	fmt.Fprintf(w, "  Total optimization steps = %d\n", t.opt.MaxSteps)
	if step > 0 {
		fmt.Fprintln(w, "  Continuing training from checkpoint, will skip to saved global_step")
		fmt.Fprintln(w, "  Continuing training from epoch 0")
		fmt.Fprintf(w, "  Continuing training from global step %d\n", step)
	}
}

// sick tells whether an anomaly mode is making the metrics bad at step.
func (t *trainer) sick(mode string, step int) bool {
	return t.failing && t.mode == mode && step >= max(t.opt.FailAt, 1)
}

// lossOf is the loss printed at step: the curve, or 20 times it during loss-spike.
func (t *trainer) lossOf(step int) float64 {
	if t.sick(FailLossSpike, step) && step < max(t.opt.FailAt, 1)+spikeSteps {
		return 20 * lossAt(step)
	}
	return lossAt(step)
}

// samplesPerSecond is the throughput printed at step: the batch over the step time
// the trainer is set to (a third of it in slowdown), with a small fixed wobble. It is
// the nominal rate, not a measured one, so that a loaded test machine does not look
// like a throughput drop to the detectors that read it.
func (t *trainer) samplesPerSecond(step int) float64 {
	d := max(t.opt.StepTime, time.Microsecond).Seconds()
	if t.sick(FailSlowdown, step) {
		d *= slowdownFactor
	}
	return float64(t.opt.BatchSize*t.opt.GradAccum) / d * (1 + 0.03*math.Sin(1.7*float64(step)))
}

// lossAt is the fake loss curve: decaying, with a little wobble.
func lossAt(step int) float64 {
	return 0.35 + 0.5*math.Exp(-float64(step)/40) + 0.02*math.Sin(float64(step))
}

func (t *trainer) epoch(step int) float64 { return float64(step) / float64(t.opt.MaxSteps) }

// printStep prints the step line the progress regex reads (with the loss and the
// samples/s), a loss dict every loggingSteps, DeepSpeed's overflow line in
// loss-scale-collapse, and a tqdm bar on stderr.
func (t *trainer) printStep(step int) {
	t.clearBar()
	// The step line first, so that a reader taking the step from it (the progress
	// regex) files the step's other lines under this step.
	fmt.Fprintf(t.stdout, "global_step=%d loss=%.4f samples_per_second=%.1f\n", step, t.lossOf(step), t.samplesPerSecond(step))
	if step%loggingSteps == 0 {
		e := logEntry{Loss: math.Round(t.lossOf(step)*1e4) / 1e4, GradNorm: 1.2 + 0.1*math.Cos(float64(step)), LearningRate: learningRate, Epoch: math.Round(t.epoch(step)*100) / 100, Step: step}
		t.history = append(t.history, e)
		fmt.Fprintf(t.stdout, "{'loss': %.4f, 'grad_norm': %.4f, 'learning_rate': %g, 'epoch': %.2f}\n", e.Loss, e.GradNorm, e.LearningRate, e.Epoch)
	}
	if t.sick(FailLossScaleCollapse, step) {
		if t.scale == 0 {
			t.scale = 65536
		}
		next := max(t.scale/2, 1)
		overflowLine(t.stdout, time.Now(), t.scale, next)
		t.scale = next
	}
	pct := step * 100 / t.opt.MaxSteps
	filled := pct / 10
	elapsed := time.Since(t.start)
	// The nominal rate, like the samples/s above, not step/elapsed: the anomaly
	// detectors read it, and a stall of a loaded test machine is not the job's.
	rate := t.samplesPerSecond(step) / float64(t.opt.BatchSize*t.opt.GradAccum)
	bar := fmt.Sprintf("%3d%%|%s%s| %d/%d [%s<%s, %5.2fit/s]", pct,
		strings.Repeat("█", filled), strings.Repeat(" ", 10-filled), step, t.opt.MaxSteps,
		clock(elapsed), clock(time.Duration(float64(t.opt.MaxSteps-step)/max(rate, 1e-3)*float64(time.Second))), rate)
	fmt.Fprint(t.stderr, "\r"+bar)
	t.barLen = utf8.RuneCountInString(bar)
}

// clearBar blanks the tqdm bar before other output, as tqdm.write does, so that log
// lines do not start in the middle of the bar on a terminal.
func (t *trainer) clearBar() {
	if t.barLen > 0 {
		fmt.Fprint(t.stderr, "\r"+strings.Repeat(" ", t.barLen)+"\r")
	}
}

// clock formats a duration as tqdm does: MM:SS.
func clock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// save writes checkpoint-<step>, or dies halfway in the partial-checkpoint mode, or
// fails with ENOSPC in the disk-full mode.
func (t *trainer) save(step int) error {
	dir := filepath.Join(t.opt.OutputDir, checkpointName(step))
	if t.failing && step >= t.opt.FailAt && t.mode == FailDiskFull {
		fmt.Fprintln(t.stderr)
		diskFull(t.stderr, filepath.Join(dir, "optimizer.pt"))
		return &ExitError{Code: 1, Mode: t.mode}
	}
	fmt.Fprintf(t.stderr, "\nSaving model checkpoint to %s\n", dir)
	cw := checkpointWriter{
		dir:  dir,
		step: step,
		state: trainerState{
			Epoch: t.epoch(step), EvalSteps: 500, GlobalStep: step, IsLocalProcessZero: true, IsWorldProcessZero: true,
			LogHistory: append([]logEntry{}, t.history...), LoggingSteps: loggingSteps, MaxSteps: t.opt.MaxSteps,
			NumTrainEpochs: 1, SaveSteps: t.opt.SaveSteps, TrainBatchSize: t.opt.BatchSize,
		},
	}
	if t.failing && step >= t.opt.FailAt && t.mode == FailPartialCheckpoint {
		cw.killAfterWeights = func() {
			fmt.Fprintf(t.stderr, "[chaos] killing myself (SIGKILL) halfway through %s\n", dir)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL cannot be caught; wait for it to land.
		}
	}
	if err := cw.write(); err != nil {
		fmt.Fprintf(t.stderr, "OSError: %v\n", err)
		return &ExitError{Code: 1, Mode: "save"}
	}
	return nil
}

// failStartup fails before the first step, where import, file and config errors
// happen in real jobs; modes that need a running loop wait for step 1.
func (t *trainer) failStartup(ctx context.Context) error {
	switch t.mode {
	case FailImportError, FailFileNotFound, FailConfigError, FailExit, FailCUDAOOM, FailCUDAOOMAboveBatch, FailCUDAError,
		FailSegv, FailHostOOM, FailNCCLTimeout, FailNaN, FailDataloader, FailHang:
		return t.failAt(ctx, 0)
	}
	return nil
}

// failAt dies the way opt.Fail says, at step.
func (t *trainer) failAt(ctx context.Context, step int) error {
	if t.mode != FailHang && t.mode != FailSigtermIgnore {
		fmt.Fprintln(t.stderr) // ends the tqdm bar's line; a hung job prints nothing
	}
	switch t.mode {
	case FailCUDAOOM, FailCUDAOOMAboveBatch:
		// A step's activations grow with the batch: a quarter GiB per sample.
		cudaOOM(t.stderr, os.Getpid(), 0.25*float64(t.opt.BatchSize))
	case FailHostOOM:
		// The OOM killer sends SIGKILL and the job prints nothing.
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	case FailHang:
		return t.hang(ctx, false)
	case FailSigtermIgnore:
		return t.hang(ctx, true)
	case FailNCCLTimeout:
		ncclTimeout(t.stderr, time.Now(), 1000+step)
		faulthandler(t.stderr, "Aborted")
		dieBySignal(syscall.SIGABRT)
		return &ExitError{Code: 134, Mode: t.mode}
	case FailCUDAError:
		cudaError(t.stderr)
	case FailSegv:
		faulthandler(t.stderr, "Segmentation fault")
		segfault()
		return &ExitError{Code: 139, Mode: t.mode}
	case FailNaN:
		nanLoss(t.stdout, step, t.epoch(step))
	case FailImportError:
		importError(t.stderr)
	case FailFileNotFound:
		fileNotFound(t.stderr, filepath.Join(t.opt.OutputDir, "..", "data", "train-00000-of-00004.jsonl"))
	case FailConfigError:
		configError(t.stderr)
		return &ExitError{Code: 2, Mode: t.mode}
	case FailDataloader:
		dataloaderDied(t.stderr, os.Getpid()+1)
	case FailOrphan:
		fmt.Fprintf(t.stderr, "RuntimeError: rank 0 lost contact with its agent at step %d\n", step)
	case FailExit:
		fmt.Fprintf(t.stderr, "[chaos] exiting with status %d at step %d\n", t.exitCode, step)
		return &ExitError{Code: t.exitCode, Mode: t.mode}
	}
	return &ExitError{Code: 1, Mode: t.mode}
}

// hang stops stepping and printing and stays alive. On SIGABRT (the supervisor's
// stall handling) it prints Python's faulthandler dump and dies by SIGABRT, as a
// Python job with PYTHONFAULTHANDLER=1 does, unless ignoreSignals (sigterm-ignore,
// which ignores them since start-up): then only SIGKILL ends it.
func (t *trainer) hang(ctx context.Context, ignoreSignals bool) error {
	if ignoreSignals {
		<-ctx.Done()
		return ctx.Err()
	}
	abrt := make(chan os.Signal, 1)
	signal.Notify(abrt, syscall.SIGABRT)
	defer signal.Stop(abrt)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-abrt:
		faulthandler(t.stderr, "Aborted")
		dieBySignal(syscall.SIGABRT)
		return &ExitError{Code: 134, Mode: t.mode}
	}
}
