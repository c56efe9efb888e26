package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// The SLURM recipes in docs/slurm run here under a real cluster on this host
// (scripts/slurm-ci.sh: munged, slurmctld, slurmd for nodes n1 and n2), with the chaos
// trainer as the job. Signal and time-limit timing falls on slurmctld's 30 s tick and a
// requeued job waits cred_expire (10 s) before it runs again, so the waits here are
// deadlines of minutes, on events (job states, log lines), never on elapsed time.

// slurmWait bounds every wait for the cluster: a launch, a 30 s tick, a requeue's hold.
const slurmWait = 4 * time.Minute

// slurmCluster is the cluster scripts/slurm-ci.sh started for TestSLURM.
type slurmCluster struct {
	dir string   // SLURM_CI_DIR: config, state, logs
	env []string // the environment of every SLURM client, and so of every job
}

// TestSLURM starts one cluster and runs every recipe against it: all jobs at once, on
// two nodes of 8 CPUs each (their trainers mostly sleep).
func TestSLURM(t *testing.T) {
	if testing.Short() {
		t.Skip("SLURM: -short")
	}
	c := startSLURM(t)
	recipes := filepath.Join(mustAbs(t, "docs"), "slurm")
	// Submit every job first and check them after, in the order they end: the jobs run
	// at once on the cluster (a test spends its time waiting on SLURM, not on a CPU),
	// whatever go test's -parallel.
	checks := []struct {
		name  string
		check func(*testing.T)
	}{
		{"non-retryable-no-requeue", slurmNonRetryable(t, c, recipes)},
		{"scancel-stops-within-killwait", slurmScancel(t, c, recipes)},
		{"multinode-torchrun-rank-killed", slurmTorchrun(t, c, recipes)},
		{"retryable-give-up-requeues", slurmRetryable(t, c, recipes)},
		{"multinode-requeues-on-root-cause", slurmMultinode(t, c, recipes)},
		{"usr1-saves-then-requeue-resumes", slurmUsr1(t, c, recipes)},
		{"time-limit-stops-cleanly", slurmTimeLimit(t, c, recipes)},
	}
	for _, ck := range checks {
		t.Run(ck.name, ck.check)
	}
}

// startSLURM starts the cluster and stops it when the test ends. It skips, saying why,
// where SLURM is not installed, or cannot start and CI is not "true"; on CI a cluster
// that is installed but does not start fails the test.
func startSLURM(t *testing.T) *slurmCluster {
	t.Helper()
	var missing []string
	for _, b := range []string{"munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "squeue", "sinfo"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		t.Skipf("SKIP SLURM: %s not installed (apt-get install slurm-wlm munge; .ci/run does)", strings.Join(missing, ", "))
	}
	cannot := t.Skipf
	if os.Getenv("CI") == "true" {
		cannot = t.Fatalf
	}
	if _, err := exec.LookPath("trainwrap"); err != nil {
		t.Fatalf("trainwrap is not on PATH (TestMain puts this test binary there): %v", err)
	}
	// munged (the munge user) must reach its socket under this dir.
	dir, err := os.MkdirTemp("", "trainwrap-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A port range of this test process's own, so that another cluster on this host
	// (another checkout's tests) does not collide with it.
	port := 20000 + (os.Getpid()%4000)*3
	c := &slurmCluster{dir: dir, env: append(os.Environ(),
		"SLURM_CI_DIR="+dir, fmt.Sprintf("SLURM_CI_PORT=%d", port), "SLURM_CI_KILLWAIT=10", "SLURM_CI_CPUS=8",
		"SLURM_CONF="+filepath.Join(dir, "etc", "slurm.conf"))}
	script := filepath.Join(mustAbs(t, "scripts"), "slurm-ci.sh")
	t.Cleanup(func() {
		cmd := exec.Command("bash", script, "stop")
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("slurm-ci.sh stop: %v\n%s", err, out)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("SLURM logs kept in %s", dir)
		}
	})
	start := time.Now()
	cmd := exec.Command("bash", script, "start")
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		cannot("SKIP SLURM: slurm-ci.sh start: %v\n%s", err, out)
	}
	t.Logf("SLURM cluster up in %s", time.Since(start).Round(time.Millisecond))
	return c
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// slurmJob is one batch job, submitted from (and writing its output into) dir.
type slurmJob struct {
	c    *slurmCluster
	id   string
	dir  string
	name string
}

// sbatch submits a recipe with the environment extra added to the cluster's: sbatch
// exports the submitter's environment (--export=ALL,X=y would cost seconds a launch).
func (c *slurmCluster) sbatch(t *testing.T, dir string, extra []string, args ...string) *slurmJob {
	t.Helper()
	cmd := exec.Command("sbatch", append([]string{"--parsable"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, c.env...), extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	j := &slurmJob{c: c, id: id, dir: dir}
	// Registered after the caller's TempDir, so this runs first: the job must be gone
	// before its directory is removed.
	t.Cleanup(func() {
		_ = c.cmd("scancel", id).Run()
		deadline := time.Now().Add(slurmWait)
		for {
			out, _ := c.cmd("scontrol", "show", "job", "-o", id).Output()
			m := regexp.MustCompile(`JobState=(\S+)`).FindSubmatch(out)
			if m == nil || slurmFinal[string(m[1])] {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("job %s still %s %s after scancel", id, m[1], slurmWait)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	j.name = j.show(t)["JobName"]
	return j
}

func (c *slurmCluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	return cmd
}

// show is `scontrol show job -o`: the job's fields.
func (j *slurmJob) show(t *testing.T) map[string]string {
	t.Helper()
	out, err := j.c.cmd("scontrol", "show", "job", "-o", j.id).CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol show job %s: %v\n%s", j.id, err, out)
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(string(out)) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f
}

// output is the job's log so far (--output=%x-%j.out, appended to by each run).
func (j *slurmJob) output() string {
	b, _ := os.ReadFile(filepath.Join(j.dir, j.name+"-"+j.id+".out"))
	return string(b)
}

// wait polls until cond holds of the job's fields and output, failing with both when
// slurmWait passes first.
func (j *slurmJob) wait(t *testing.T, what string, cond func(f map[string]string, out string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(slurmWait)
	for {
		f := j.show(t)
		if cond(f, j.output()) {
			return f
		}
		// A requeued job is PENDING again: these states are final.
		if slurmFinal[f["JobState"]] {
			t.Fatalf("job %s ended (JobState=%s Restarts=%s ExitCode=%s) before %s\noutput:\n%s",
				j.id, f["JobState"], f["Restarts"], f["ExitCode"], what, j.output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: timed out after %s waiting for %s; JobState=%s Restarts=%s ExitCode=%s\noutput:\n%s",
				j.id, slurmWait, what, f["JobState"], f["Restarts"], f["ExitCode"], j.output())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ended waits until the job has ended for good (not requeued).
func (j *slurmJob) ended(t *testing.T) map[string]string {
	t.Helper()
	return j.wait(t, "the job to end", func(f map[string]string, _ string) bool { return slurmFinal[f["JobState"]] })
}

// slurmFinal are the states a job does not leave.
var slurmFinal = map[string]bool{"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "NODE_FAIL": true, "OUT_OF_MEMORY": true}

// runRecords reads the runs.jsonl of a trainwrap run dir.
func runRecords(t *testing.T, stateDir string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "runs.jsonl"))
	if err != nil {
		t.Fatalf("runs.jsonl: %v", err)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("runs.jsonl line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// processesWithEnv lists the pids whose environment holds kv: what is left of a run
// whose TRAINWRAP_RUN_ID it is.
func processesWithEnv(kv string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if string(v) == kv {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}

// common sbatch options: the recipes ask for 8 GPUs, 64 CPUs and a day.
var slurmSmall = []string{"--gres=none", "--cpus-per-task=1"}

func sbatchArgs(recipe string, opts []string, command ...string) []string {
	return append(append(append(append([]string{}, slurmSmall...), opts...), recipe), command...)
}

// USR1 from --signal=B:USR1@N goes only to the batch shell; train.sbatch passes it to
// trainwrap, which forwards it to the job, which saves; then the script requeues, and
// the rerun resumes from the checkpoint that USR1 made (the only one: --save-steps 0).
func slurmUsr1(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	j := c.sbatch(t, run, []string{"RUN=" + run, "SAVE_GRACE=2"}, sbatchArgs(filepath.Join(recipes, "train.sbatch"),
		[]string{"--time=1", "--signal=B:USR1@50"},
		"trainwrap", "chaos", "train", "--output_dir", "out", "--max-steps", "100000", "--save-steps", "0", "--step-time", "100ms")...)
	return func(t *testing.T) {
		saved := regexp.MustCompile(`\[chaos\] got SIGUSR1: saving a checkpoint at step (\d+)`)
		f := j.wait(t, "a rerun that resumes", func(f map[string]string, out string) bool {
			return strings.Contains(out, "[chaos] resuming from")
		})
		out := j.output()
		m := saved.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the trainer never saved on USR1:\n%s", out)
		}
		if f["Restarts"] == "0" {
			t.Errorf("Restarts=%s after a rerun, want at least 1", f["Restarts"])
		}
		resumed := regexp.MustCompile(`\[chaos\] resuming from \S*/checkpoint-` + m[1] + ` at step ` + m[1] + `\n`)
		if !resumed.MatchString(out) {
			t.Errorf("the rerun did not resume from the USR1 checkpoint at step %s:\n%s", m[1], out)
		}
		if strings.Contains(out, "restarting") {
			t.Errorf("USR1 or the requeue's SIGTERM made trainwrap restart the job in place:\n%s", out)
		}
		// The first allocation's trainwrap ended on SLURM's SIGTERM: recorded as a stop.
		recs := runRecords(t, filepath.Join(run, ".trainwrap"))
		if d := recs[0]["decision"]; d != "stop" {
			t.Errorf("first allocation's attempt: decision %v, want stop; records %v", d, recs)
		}
	}
}

// At the time limit SLURM sends SIGTERM to every process of the job (here the requeue
// is SAVE_GRACE=600 s away, so the limit comes first): trainwrap records a stop and
// restarts nothing, and the checkpoint that USR1 made verifies complete, with nothing
// half-written beside it.
func slurmTimeLimit(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	j := c.sbatch(t, run, []string{"RUN=" + run, "SAVE_GRACE=600"}, sbatchArgs(filepath.Join(recipes, "train.sbatch"),
		[]string{"--time=1", "--signal=B:USR1@50"},
		"trainwrap", "chaos", "train", "--output_dir", "out", "--max-steps", "100000", "--save-steps", "0", "--step-time", "100ms")...)
	return func(t *testing.T) {
		f := j.ended(t)
		out := j.output()
		if f["JobState"] != "TIMEOUT" || f["Restarts"] != "0" {
			t.Errorf("JobState=%s Reason=%s Restarts=%s, want TIMEOUT 0", f["JobState"], f["Reason"], f["Restarts"])
		}
		if !strings.Contains(out, "DUE TO TIME LIMIT") || !strings.Contains(out, "trainwrap: stopped by SIGTERM") {
			t.Errorf("no time-limit SIGTERM stop in the output:\n%s", out)
		}
		saved := regexp.MustCompile(`\[chaos\] got SIGUSR1: saving a checkpoint at step (\d+)`).FindStringSubmatch(out)
		if saved == nil {
			t.Fatalf("the trainer never saved on USR1:\n%s", out)
		}
		recs := runRecords(t, filepath.Join(run, ".trainwrap"))
		if len(recs) != 1 || recs[0]["decision"] != "stop" {
			t.Errorf("want one attempt, decision stop; got %v", recs)
		}
		cmd := exec.Command("trainwrap", "checkpoints", "verify", "out")
		cmd.Dir = run
		v, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(v), "checkpoint-"+saved[1]) || strings.Contains(string(v), "incomplete") {
			t.Errorf("trainwrap checkpoints verify out: %v, want checkpoint-%s complete and nothing incomplete:\n%s", err, saved[1], v)
		}
	}
}

// scancel sends SIGTERM to every process of the job; trainwrap stops the job (here one
// that ignores SIGTERM) within --stop-timeout, before SLURM's KillWait (10 s) ends, and
// records a stop: no restart, no requeue, no process of the run left.
func slurmScancel(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	j := c.sbatch(t, run, []string{"RUN=" + run, "STOP_TIMEOUT=2s"}, sbatchArgs(filepath.Join(recipes, "train.sbatch"), nil,
		"trainwrap", "chaos", "train", "--output_dir", "out", "--max-steps", "100000", "--fail", "sigterm-ignore", "--fail-at", "3", "--step-time", "100ms")...)
	return func(t *testing.T) {
		j.wait(t, "the trainer to ignore SIGTERM", func(_ map[string]string, out string) bool {
			return strings.Contains(out, "SIGTERM, SIGINT and SIGABRT are ignored")
		})
		if out, err := c.cmd("scancel", j.id).CombinedOutput(); err != nil {
			t.Fatalf("scancel: %v\n%s", err, out)
		}
		f := j.ended(t)
		if f["JobState"] != "CANCELLED" || f["Restarts"] != "0" {
			t.Errorf("JobState=%s Restarts=%s, want CANCELLED 0", f["JobState"], f["Restarts"])
		}
		sd := filepath.Join(run, ".trainwrap")
		testkit.Eventually(t, slurmWait, "trainwrap's record of the stop", func() bool {
			b, _ := os.ReadFile(filepath.Join(sd, "runs.jsonl"))
			return len(b) > 0
		})
		recs := runRecords(t, sd)
		if len(recs) != 1 || recs[0]["decision"] != "stop" {
			t.Fatalf("want one attempt, decision stop; got %v\noutput:\n%s", recs, j.output())
		}
		// trainwrap killed the TERM-ignoring trainer itself after --stop-timeout and
		// outlived it to say so: SLURM's SIGKILL at KillWait would have ended trainwrap too.
		if sig := recs[0]["signal"]; sig != "SIGKILL" {
			t.Errorf("the trainer ended by %v, want SIGKILL from trainwrap", sig)
		}
		if out := j.output(); !strings.Contains(out, "trainwrap: stopped by SIGTERM; exiting 143") {
			t.Errorf("trainwrap did not outlive the job it stopped:\n%s", out)
		}
		id := fmt.Sprint(recs[0]["run_id"])
		testkit.Eventually(t, slurmWait, "no process of the run left", func() bool {
			return len(processesWithEnv("TRAINWRAP_RUN_ID="+id)) == 0
		})
	}
}

// A retryable crash (cuda_oom, 71) that trainwrap gives up on in this allocation makes
// train.sbatch requeue; the rerun (SLURM_RESTART_COUNT=1, where the trainer no longer
// fails) resumes from the newest verified checkpoint and completes.
func slurmRetryable(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	// Fails (at step 7, after checkpoint-5) only in the first allocation.
	// --output_dir is an argument of the wrapper, where trainwrap finds the checkpoints.
	trainer := `f=; [ -n "${SLURM_RESTART_COUNT:-}" ] || f="--fail cuda-oom --fail-at 7"
exec trainwrap chaos train --max-steps 12 --save-steps 5 --step-time 100ms $f "$@"`
	j := c.sbatch(t, run, []string{"RUN=" + run, "MAX_REQUEUES=1", "TRAINWRAP_MAX_FAILURES_WITHOUT_PROGRESS=1"},
		sbatchArgs(filepath.Join(recipes, "train.sbatch"), nil, "sh", "-c", trainer, "trainer", "--output_dir", "out")...)
	return func(t *testing.T) {
		f := j.ended(t)
		out := j.output()
		if f["JobState"] != "COMPLETED" || f["Restarts"] != "1" || f["ExitCode"] != "0:0" {
			t.Errorf("JobState=%s Restarts=%s ExitCode=%s, want COMPLETED 1 0:0", f["JobState"], f["Restarts"], f["ExitCode"])
		}
		if !strings.Contains(out, "trainwrap exited 71: requeueing (restart 0 of 1)") {
			t.Errorf("no requeue on cuda_oom's 71:\n%s", out)
		}
		_, rerun, _ := strings.Cut(out, "requeueing")
		if !regexp.MustCompile(`\[chaos\] resuming from \S*/checkpoint-5 at step 5\n`).MatchString(rerun) {
			t.Errorf("the rerun did not resume from checkpoint-5:\n%s", rerun)
		}
		if !strings.Contains(rerun, "global_step=12 ") {
			t.Errorf("the rerun did not reach step 12:\n%s", rerun)
		}
	}
}

// A non-retryable class (config_error, 84) is not requeued, and SLURM records 84 as the
// job's exit code.
func slurmNonRetryable(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	j := c.sbatch(t, run, []string{"RUN=" + run},
		sbatchArgs(filepath.Join(recipes, "train.sbatch"), nil, "trainwrap", "chaos", "train", "--output_dir", "out", "--fail", "config-error")...)
	return func(t *testing.T) {
		f := j.ended(t)
		if f["JobState"] != "FAILED" || f["Restarts"] != "0" || f["ExitCode"] != "84:0" {
			t.Errorf("JobState=%s Restarts=%s ExitCode=%s, want FAILED 0 84:0\n%s", f["JobState"], f["Restarts"], f["ExitCode"], j.output())
		}
		comp, _ := os.ReadFile(filepath.Join(c.dir, "logs", "jobcomp.log"))
		if !regexp.MustCompile(`JobId=` + j.id + ` .*JobState=FAILED .*ExitCode=84:0`).Match(comp) {
			t.Errorf("the job-completion log has no FAILED 84:0 for job %s:\n%s", j.id, comp)
		}
	}
}

// Two nodes, one trainwrap each, sharing one checkpoint directory that node 0 writes (as
// rank 0 does): node 1 gives up on nccl (73); srun's --kill-on-bad-exit stops node 0
// (143) and srun returns 143. multinode.sbatch reads each node's code and requeues on
// the root cause, 73; on the rerun both nodes resume from the same newest verified
// checkpoint and complete.
func slurmMultinode(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	run := t.TempDir()
	// First allocation: node 1 fails at start-up once node 0 has saved two checkpoints,
	// so that there is one to resume from whatever the machine's speed.
	trainer := `a="--max-steps 1000 --step-time 1ms --save-steps 0"
[ "$SLURM_NODEID" = 0 ] && a="--max-steps 1000 --step-time 1ms --save-steps 2"
if [ -z "${SLURM_RESTART_COUNT:-}" ]; then
  if [ "$SLURM_NODEID" = 1 ]; then
    until [ -d "$RUN/out/checkpoint-4" ]; do sleep 0.1; done
    a="--fail nccl-timeout --fail-at 0"
  else
    a="--max-steps 100000 --step-time 50ms --save-steps 2"
  fi
fi
exec trainwrap chaos train $a "$@"`
	j := c.sbatch(t, run, []string{"RUN=" + run, "MAX_REQUEUES=1", "STOP_TIMEOUT=2s", "TRAINWRAP_MAX_RESTARTS=1"},
		sbatchArgs(filepath.Join(recipes, "multinode.sbatch"), nil, "sh", "-c", trainer, "trainer", "--output_dir", filepath.Join(run, "out"))...)
	return func(t *testing.T) {
		f := j.ended(t)
		out := j.output()
		if f["JobState"] != "COMPLETED" || f["Restarts"] != "1" {
			t.Errorf("JobState=%s Restarts=%s ExitCode=%s, want COMPLETED after 1 requeue\n%s", f["JobState"], f["Restarts"], f["ExitCode"], out)
		}
		for _, want := range []string{"multinode: node0 exited 143", "multinode: node1 exited 73", "multinode: trainwrap exited 73: requeueing (restart 0 of 1)"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		_, rerun, _ := strings.Cut(out, "requeueing")
		resumed := regexp.MustCompile(`\[chaos\] resuming from \S*/out/(checkpoint-\d+) at step`).FindAllStringSubmatch(rerun, -1)
		if len(resumed) != 2 || resumed[0][1] != resumed[1][1] {
			t.Errorf("want both nodes to resume from the same checkpoint on the rerun, got %v:\n%s", resumed, rerun)
		}
		for _, n := range []string{"0", "1"} {
			recs := runRecords(t, filepath.Join(run, ".trainwrap-node"+n))
			if d := recs[len(recs)-1]["decision"]; d != "done" {
				t.Errorf("node %s's last attempt: decision %v, want done", n, d)
			}
		}
	}
}

// Two nodes, one trainwrap each around torchrun (testdata/torchrun: Debian's torch with
// gloo), meeting at a c10d rendezvous: node 1's rank SIGKILLs itself at step 7, node
// 0's rank loses its peer; both trainwraps restart their torchrun inside the
// allocation, the nodes meet again, resume from the shared checkpoint and finish: no
// requeue.
func slurmTorchrun(t *testing.T, c *slurmCluster, recipes string) func(*testing.T) {
	py := torchPython()
	if py == "" {
		return func(t *testing.T) { t.Skip("SKIP SLURM torchrun: python3-torch not installed") }
	}
	run := t.TempDir()
	bin := filepath.Join(run, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := os.WriteFile(filepath.Join(run, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(mustAbs(t, "testdata"), "torchrun", "node.sh")
	trainer := `k=; [ "$SLURM_NODEID" = 1 ] && k="--kill_any --kill_step 7"
exec sh "$NODE_SH" "$SLURM_NODEID" "$RUN/port" --steps 10 --save_every 4 $k "$@"`
	j := c.sbatch(t, run, []string{"RUN=" + run, "NODE_SH=" + node, "STOP_TIMEOUT=2s", "GLOO_SOCKET_IFNAME=lo",
		"PATH=" + bin + string(filepath.ListSeparator) + os.Getenv("PATH"),
		"TRAINWRAP_BACKOFF_INITIAL=200ms", "TRAINWRAP_BACKOFF_MAX=2s", "TRAINWRAP_MAX_RESTARTS_IN_WINDOW=6",
		"TRAINWRAP_MAX_FAILURES_WITHOUT_PROGRESS=6", "TRAINWRAP_STALL_TIMEOUT=60s", "TRAINWRAP_PROGRESS_REGEX=^rank \\d+ step (\\d+) "},
		sbatchArgs(filepath.Join(recipes, "multinode.sbatch"), nil, "sh", "-c", trainer, "trainer", "--output_dir", filepath.Join(run, "out"))...)
	return func(t *testing.T) {
		f := j.ended(t)
		out := j.output()
		if f["JobState"] != "COMPLETED" || f["Restarts"] != "0" {
			t.Errorf("JobState=%s Restarts=%s ExitCode=%s, want COMPLETED without a requeue\n%s", f["JobState"], f["Restarts"], f["ExitCode"], out)
		}
		for _, re := range []string{`rank \d killing itself with SIGKILL at step 7\n`, `multinode: node0 exited 0\n`, `multinode: node1 exited 0\n`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("output lacks %s:\n%s", re, out)
			}
		}
		if n := len(regexp.MustCompile(`rank \d pid \d+ attempt [2-9] world 2 start_step 4 `).FindAllString(out, -1)); n != 2 {
			t.Errorf("%d ranks resumed at step 4 in a later attempt, want 2:\n%s", n, out)
		}
		for _, n := range []string{"0", "1"} {
			recs := runRecords(t, filepath.Join(run, ".trainwrap-node"+n))
			if len(recs) < 2 || recs[0]["decision"] != "restart" || recs[len(recs)-1]["decision"] != "done" {
				t.Errorf("node %s: records %v, want a restart, then done", n, recs)
			}
		}
	}
}
