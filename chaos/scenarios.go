package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// Class names and exit codes the suite expects, as DESIGN.md's table gives them.
const (
	classNone = "none"
)

// Trainer geometry of every scenario: a failure at step 12 resumes from checkpoint-10.
const (
	suiteMaxSteps  = 20
	suiteSaveSteps = 5
	suiteFailAt    = 12
	suiteResume    = 10
	suiteStepTime  = 30 * time.Millisecond
	// suiteStall is --stall-timeout; --startup-timeout is suiteStartup, much longer,
	// so that a stall caught only at the startup limit shows.
	suiteStall   = 2 * time.Second
	suiteStartup = 20 * time.Second
	suiteStop    = time.Second
	// stallBound is the most a stall may take from the last progress to the end of the
	// attempt: --stall-timeout, the supervisor's 5s grace after SIGABRT, --stop-timeout,
	// and slack for a loaded machine.
	stallBound = suiteStall + 5*time.Second + suiteStop + 3*time.Second
)

// scenario is one row of the suite: how to run the job, and what the supervisor must
// make of it.
type scenario struct {
	name string
	// train are the trainer's flags beyond the common ones.
	train []string
	// run are the supervisor's flags beyond the common ones.
	run []string
	// class is the class the first attempt must be given ("none" for a success).
	class string
	// restart says whether the job must be restarted at least once.
	restart bool
	// resume is the step of the checkpoint the second attempt must resume from (0:
	// not checked).
	resume int
	// quarantine is the step of a partial checkpoint that must be quarantined (0: none).
	quarantine int
	// exit is trainwrap's expected exit code; -1 means killed by a signal.
	exit int
	// during runs while the supervisor runs (injections); nil for none.
	during func(ctx context.Context, r *scenarioRun) error
	// slow marks scenarios that wait for a stall, so they start first.
	slow bool
	// giveUp, when set, is a word the last record's give-up reason must hold.
	giveUp string
	// records, when set, checks the attempts beyond what every scenario checks.
	records func(recs []rundir.Record) error
	// anomaly, when set, is the anomaly kind the supervisor must find in attempt 1
	// (the class is then the anomaly kind, as the row shows it); every other row must
	// find none.
	anomaly string
	// failAt is the trainer's --fail-at, for the anomaly's detection latency.
	failAt int
}

// Geometry of the anomaly rows: the detector needs a baseline before it judges, so
// the job runs longer than the crash rows, with shorter steps.
const (
	anomalyMaxSteps  = 120
	anomalyFailAt    = 60
	anomalySaveSteps = 10
	anomalyStepTime  = 10 * time.Millisecond
	// anomalyWithin is how many steps after --fail-at the anomaly must be found.
	anomalyWithin = 50
)

// anomalous is a scenario whose job goes bad without crashing (mode) from step
// anomalyFailAt on, in attempt 1 only: under --on-anomaly restart the supervisor must
// find kind within anomalyWithin steps, stop the attempt, resume from a checkpoint
// saved before the anomaly, and the job must then complete. The sick attempt waits to
// be stopped (--hold-sick) rather than finish: however slow the stop, it cannot pass.
func anomalous(mode, kind string) scenario {
	return scenario{
		name: mode,
		train: []string{"--fail", mode, "--fail-at", strconv.Itoa(anomalyFailAt), "--fail-attempts", "1",
			"--max-steps", strconv.Itoa(anomalyMaxSteps), "--save-steps", strconv.Itoa(anomalySaveSteps), "--step-time", anomalyStepTime.String(), "--hold-sick"},
		run:   []string{"--on-anomaly", "restart"},
		class: kind, anomaly: kind, failAt: anomalyFailAt, restart: true,
	}
}

// failing is a scenario whose job fails once the way mode says, at step 12, and is
// then resumed from checkpoint-10 and completes.
func failing(mode, class string) scenario {
	return scenario{
		name: mode, train: []string{"--fail", mode, "--fail-at", strconv.Itoa(suiteFailAt), "--fail-attempts", "1"},
		class: class, restart: true, resume: suiteResume,
	}
}

// fatal is a scenario whose failure is not retryable: trainwrap must give up at once
// with the class's exit code.
func fatal(mode, class string, failAt, code int) scenario {
	return scenario{
		name: mode, train: []string{"--fail", mode, "--fail-at", strconv.Itoa(failAt)},
		class: class, exit: code,
	}
}

// scenarios is the whole suite, in the order rows are printed.
func scenarios() []scenario {
	hang := failing(FailHang, "hang")
	hang.slow = true
	ignore := failing(FailSigtermIgnore, "hang")
	ignore.slow = true
	partial := failing(FailPartialCheckpoint, "host_oom")
	partial.quarantine = 15
	disk := failing(FailDiskFull, "disk_full")
	return []scenario{
		{name: "success", class: classNone},
		failing(FailCUDAOOM, "cuda_oom"),
		failing(FailHostOOM, "host_oom"),
		hang,
		failing(FailNCCLTimeout, "nccl"),
		failing(FailCUDAError, "cuda_error"),
		failing(FailSegv, "segfault"),
		disk,
		fatal(FailNaN, "nan_divergence", suiteFailAt, 80),
		fatal(FailImportError, "import_error", 0, 81),
		fatal(FailFileNotFound, "file_not_found", 0, 82),
		fatal(FailConfigError, "config_error", 0, 84),
		failing(FailDataloader, "dataloader"),
		partial,
		ignore,
		failing(FailOrphan, "unknown"),
		{
			name: "flaky", train: []string{"--fail", "exit 3", "--fail-at", "3", "--fail-attempts", "2"},
			class: "unknown", restart: true, resume: 0,
		},
		{
			// Smart recovery: the job runs out of GPU memory above batch 4 (at step 12,
			// after checkpoint-10). The first restart adds PYTORCH_CUDA_ALLOC_CONF, which
			// does not help; the second halves the batch and doubles the accumulation,
			// and the job completes from checkpoint-10.
			name: "oom-smaller-batch",
			train: []string{"--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "1",
				"--fail", "cuda-oom-above-batch", "4", "--fail-at", strconv.Itoa(suiteFailAt)},
			run:   []string{"--batch-arg=--per_device_train_batch_size", "--grad-accum-arg=--gradient_accumulation_steps"},
			class: "cuda_oom", restart: true, resume: suiteResume,
			records: checkSmallerBatch,
		},
		anomalous(FailLossSpike, training.LossSpike),
		anomalous(FailLossScaleCollapse, training.LossScaleCollapse),
		anomalous(FailSlowdown, training.ThroughputDrop),
		{
			name: "crash-loop", train: []string{"--fail", "exit 3", "--fail-at", "0"},
			run:   []string{"--max-restarts-in-window", "2", "--max-failures-without-progress", "0"},
			class: "unknown", restart: true, exit: 85, giveUp: "--max-restarts-in-window",
		},
		{
			name: "inject-hang", train: []string{"--max-steps", "60"},
			class: "hang", restart: true, slow: true,
			during: func(ctx context.Context, r *scenarioRun) error {
				if err := r.waitStep(ctx, 5); err != nil {
					return err
				}
				_, err := Inject(r.stateDir, InjectHang, r.out)
				return err
			},
		},
		{
			name: "inject-kill", train: []string{"--max-steps", "40"},
			class: "host_oom", restart: true,
			during: func(ctx context.Context, r *scenarioRun) error {
				if err := r.waitStep(ctx, 5); err != nil {
					return err
				}
				_, err := Inject(r.stateDir, InjectKill, r.out)
				return err
			},
		},
		{
			name: "supervisor-kill", train: []string{"--max-steps", "400"},
			class: "", exit: -1,
			during: func(ctx context.Context, r *scenarioRun) error {
				if err := r.waitStep(ctx, 5); err != nil {
					return err
				}
				st, err := r.state()
				if err != nil {
					return err
				}
				r.runID = st.RunID
				id := proc.ID{PID: st.Supervisor.PID, StartTime: st.Supervisor.StartTime}
				if err := proc.Signal(id, syscall.SIGKILL); err != nil {
					return fmt.Errorf("SIGKILL the supervisor: %w", err)
				}
				return nil
			},
		},
	}
}

// checkSmallerBatch checks the oom-smaller-batch scenario's attempts: three, the
// second with the allocator setting, the third with half the batch and twice the
// accumulation, each change recorded with the restart that made it.
func checkSmallerBatch(recs []rundir.Record) error {
	if len(recs) != 3 {
		return fmt.Errorf("%d attempts, want 3 (OOM, OOM with the allocator setting, success with batch 4)", len(recs))
	}
	want := []string{"PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
		"--per_device_train_batch_size 8 → 4, --gradient_accumulation_steps 1 → 2", ""}
	for i, r := range recs {
		var got []string
		for _, a := range r.Adjustments {
			got = append(got, a.String())
		}
		if g := strings.Join(got, ", "); g != want[i] {
			return fmt.Errorf("attempt %d recorded changes %q, want %q", r.Attempt, g, want[i])
		}
	}
	if v := recs[1].Env["PYTORCH_CUDA_ALLOC_CONF"]; v != "expandable_segments:True" {
		return fmt.Errorf("attempt 2 ran with PYTORCH_CUDA_ALLOC_CONF %q, want expandable_segments:True", v)
	}
	last := recs[2]
	if !hasArg(last.Command, "--per_device_train_batch_size", "4") || !hasArg(last.Command, "--gradient_accumulation_steps", "2") {
		return fmt.Errorf("attempt 3 ran %q, want batch 4 and accumulation 2", strings.Join(last.Command, " "))
	}
	if last.Decision != rundir.DecisionDone {
		return fmt.Errorf("attempt 3: decision %q, want %s", last.Decision, rundir.DecisionDone)
	}
	return nil
}

// hasArg reports whether argv holds flag followed by value.
func hasArg(argv []string, flag, value string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && argv[i+1] == value {
			return true
		}
	}
	return false
}

// checkAnomaly judges an anomaly row: attempt 1 found the kind within anomalyWithin
// steps of --fail-at (never before it), was stopped for it (class unknown: the
// supervisor names no crash), and attempt 2 resumed from a checkpoint saved before the
// anomaly's step and found none. It returns the anomaly found, if any.
func checkAnomaly(s scenario, recs []rundir.Record, res *Result, fail func(string, ...any)) {
	first := recs[0]
	var found *training.Anomaly
	for i, a := range first.Anomalies {
		if a.Kind == s.anomaly {
			found = &first.Anomalies[i]
			break
		}
	}
	res.DetectedClass = classNone
	if found == nil {
		fail("attempt 1: no %s anomaly found (found: %s)", s.anomaly, anomalyKinds(first.Anomalies))
		return
	}
	res.DetectedClass = found.Kind
	res.AnomalyStep = found.Step
	if found.Step < int64(s.failAt) || found.Step > int64(s.failAt+anomalyWithin) {
		fail("%s found at step %d, want within %d steps of --fail-at %d", s.anomaly, found.Step, anomalyWithin, s.failAt)
	}
	if first.Class != "unknown" || first.Decision != rundir.DecisionRestart || !strings.Contains(first.Reason, "--on-anomaly restart") {
		fail("attempt 1: class %q, decision %q (%s); want unknown, restart on the anomaly", first.Class, first.Decision, first.Reason)
	}
	if len(recs) < 2 {
		return
	}
	ok := false
	res.Resumed = filepath.Base(recs[1].ResumedFrom)
	if step, err := strconv.ParseInt(strings.TrimPrefix(res.Resumed, "checkpoint-"), 10, 64); err == nil && step < found.Step {
		ok = true
	}
	res.ResumeOK = &ok
	if !ok {
		fail("attempt 2 resumed from %q, want a checkpoint saved before step %d", res.Resumed, found.Step)
	}
	for _, r := range recs[1:] {
		if len(r.Anomalies) > 0 {
			fail("attempt %d (healthy) found %s", r.Attempt, anomalyKinds(r.Anomalies))
		}
	}
	if last := recs[len(recs)-1]; last.Decision != rundir.DecisionDone {
		fail("last attempt: decision %q, want %s", last.Decision, rundir.DecisionDone)
	}
}

// anomalyKinds lists anomalies as kind@step words, "none" for none.
func anomalyKinds(as []training.Anomaly) string {
	if len(as) == 0 {
		return classNone
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s@%d", a.Kind, a.Step)
	}
	return strings.Join(out, ", ")
}
