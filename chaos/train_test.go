package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/checkpoints"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// trainerRun is one run of the trainer as a real process.
type trainerRun struct {
	cmd    *exec.Cmd
	stdout *testkit.Buffer
	stderr *testkit.Buffer
}

// startTrainer starts this test binary as `trainwrap chaos train args...` and kills
// it at cleanup if it still runs.
func startTrainer(t *testing.T, env []string, args ...string) *trainerRun {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r := &trainerRun{stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	r.cmd = &exec.Cmd{
		Path: exe, Args: append([]string{"trainwrap", "chaos", "train"}, args...),
		Env: append(os.Environ(), env...), Stdout: r.stdout, Stderr: r.stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
		}
	})
	return r
}

// wait waits for the trainer to exit, at most d.
func (r *trainerRun) wait(t *testing.T, d time.Duration) *os.ProcessState {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = r.cmd.Process.Kill()
		<-done
		t.Fatalf("trainer still running after %s; stderr:\n%s", d, r.stderr.String())
	}
	return r.cmd.ProcessState
}

// waitOutput waits until the trainer's stdout or stderr contains s.
func (r *trainerRun) waitOutput(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(r.stdout.String()+r.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the trainer's output after %s:\n%s\n%s", s, d, r.stdout.String(), r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func scanOptions() checkpoints.ScanOptions {
	return checkpoints.ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true}
}

func TestTrainWritesVerifiableCheckpoints(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "12", "--save-steps", "5", "--step-time", "1ms")
	if ps := r.wait(t, time.Minute); ps.ExitCode() != 0 {
		t.Fatalf("exit %d; stderr:\n%s", ps.ExitCode(), r.stderr.String())
	}
	for _, want := range []string{"global_step=12 ", "{'loss': ", "'learning_rate': 5e-05", "***** Running training *****"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(r.stderr.String(), "\r100%|██████████| 12/12") {
		t.Errorf("stderr lacks the final tqdm bar:\n%q", r.stderr.String())
	}
	cps, err := checkpoints.Scan(context.Background(), out, scanOptions())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cps {
		got = append(got, c.Name+" "+string(c.Status))
		if c.Layout != checkpoints.LayoutHF {
			t.Errorf("%s: layout %s, want %s", c.Name, c.Layout, checkpoints.LayoutHF)
		}
	}
	if want := "checkpoint-5 complete,checkpoint-10 complete"; strings.Join(got, ",") != want {
		t.Fatalf("checkpoints %v, want %s", got, want)
	}
	raw, err := os.ReadFile(filepath.Join(out, "checkpoint-10", "trainer_state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st trainerState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.GlobalStep != 10 || len(st.LogHistory) != 2 || st.LogHistory[1].Step != 10 {
		t.Errorf("trainer_state.json: global_step %d, log history %+v", st.GlobalStep, st.LogHistory)
	}
	// trainer_state.json is written last: HF and trainwrap take it as the mark of a
	// complete checkpoint.
	stInfo, _ := os.Stat(filepath.Join(out, "checkpoint-10", "trainer_state.json"))
	for _, f := range []string{"config.json", "model.safetensors", "optimizer.pt", "scheduler.pt"} {
		fi, err := os.Stat(filepath.Join(out, "checkpoint-10", f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().After(stInfo.ModTime()) {
			t.Errorf("%s written after trainer_state.json", f)
		}
	}
	torchLoads(t, filepath.Join(out, "checkpoint-10"))
}

// torchLoads checks with the real torch (its default loader, as HF Trainer calls it) that
// optimizer.pt loads, and model.safetensors too where the safetensors module is
// there, when a python3 with torch exists; it skips only that assertion otherwise (and fails
// under CI=true).
func torchLoads(t *testing.T, dir string) {
	t.Helper()
	py := testkit.WantTorch(t)
	if py == "" {
		return
	}
	script := `import sys, torch
o = torch.load(sys.argv[1] + "/optimizer.pt", map_location="cpu")
assert o["param_groups"][0]["step"] == 10, o
try:
    from safetensors.torch import load_file
except ImportError:
    print("ok")
    sys.exit(0)
w = load_file(sys.argv[1] + "/model.safetensors")
assert tuple(w["lm_head.weight"].shape) == (128, 64), w["lm_head.weight"].shape
print("ok")`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("torch cannot load %s: %v\n%s", dir, err, out)
	}
}

func TestTrainResumes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "10", "--save-steps", "5", "--step-time", "1ms")
	if ps := r.wait(t, time.Minute); ps.ExitCode() != 0 {
		t.Fatalf("first run: exit %d\n%s", ps.ExitCode(), r.stderr.String())
	}
	cp5 := filepath.Join(out, "checkpoint-5")
	tests := []struct {
		name string
		env  []string
		args []string
		from string
	}{
		{"env", []string{"TRAINWRAP_RESUME_CHECKPOINT=" + cp5}, nil, cp5},
		{"flag", nil, []string{"--resume_from_checkpoint", cp5}, cp5},
		{"flag wins over env", []string{"TRAINWRAP_RESUME_CHECKPOINT=" + filepath.Join(out, "checkpoint-10")}, []string{"--resume-from-checkpoint", cp5}, cp5},
		{"true is the newest", nil, []string{"--resume_from_checkpoint", "true"}, filepath.Join(out, "checkpoint-10")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--output_dir", out, "--max-steps", "12", "--save-steps", "0", "--step-time", "1ms"}, tt.args...)
			r := startTrainer(t, tt.env, args...)
			if ps := r.wait(t, time.Minute); ps.ExitCode() != 0 {
				t.Fatalf("exit %d\n%s", ps.ExitCode(), r.stderr.String())
			}
			step := strings.TrimPrefix(filepath.Base(tt.from), "checkpoint-")
			if want := "[chaos] resuming from " + tt.from + " at step " + step + "\n"; !strings.Contains(r.stdout.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout.String())
			}
			if want := "Continuing training from global step " + step; !strings.Contains(r.stdout.String(), want) {
				t.Errorf("stdout lacks %q", want)
			}
			first := strings.Index(r.stdout.String(), "global_step=")
			if first < 0 || strings.HasPrefix(r.stdout.String()[first:], "global_step=1 ") {
				t.Errorf("did not skip to the saved step:\n%s", r.stdout.String())
			}
		})
	}
	t.Run("missing checkpoint", func(t *testing.T) {
		r := startTrainer(t, nil, "--output_dir", out, "--resume_from_checkpoint", filepath.Join(out, "nope"))
		if ps := r.wait(t, time.Minute); ps.ExitCode() != 1 {
			t.Fatalf("exit %d, want 1", ps.ExitCode())
		}
		if !strings.Contains(r.stderr.String(), "ValueError: Can't find a valid checkpoint at") {
			t.Errorf("stderr lacks HF's error:\n%s", r.stderr.String())
		}
	})
}

func TestFailModes(t *testing.T) {
	tests := []struct {
		mode   string
		failAt string
		code   int            // exit code, when it exits
		signal syscall.Signal // signal it dies by, when it does
		stderr string
		stdout string
	}{
		{mode: "cuda-oom", failAt: "3", code: 1, stderr: "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."},
		{mode: "host-oom", failAt: "3", signal: syscall.SIGKILL},
		{mode: "nccl-timeout", failAt: "3", signal: syscall.SIGABRT, stderr: "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1003, OpType=ALLREDUCE"},
		{mode: "cuda-error", failAt: "3", code: 1, stderr: "RuntimeError: CUDA error: an illegal memory access was encountered"},
		{mode: "segv", failAt: "3", signal: syscall.SIGSEGV, stderr: "Fatal Python error: Segmentation fault"},
		{mode: "disk-full", failAt: "3", code: 1, stderr: "OSError: [Errno 28] No space left on device: "},
		{mode: "nan", failAt: "3", code: 1, stdout: "FloatingPointError: Loss became infinite or NaN at iteration=3!"},
		{mode: "import-error", failAt: "0", code: 1, stderr: "ModuleNotFoundError: No module named 'flash_attn'"},
		{mode: "file-not-found", failAt: "0", code: 1, stderr: "FileNotFoundError: [Errno 2] No such file or directory: "},
		{mode: "config-error", failAt: "0", code: 2, stderr: "train.py: error: argument --learning_rate: invalid float value: '5e-5x'"},
		{mode: "dataloader", failAt: "3", code: 1, stderr: "is killed by signal: Bus error"},
		{mode: "exit 7", failAt: "3", code: 7, stderr: "exiting with status 7 at step 3"},
		{mode: "exit:0", failAt: "2", code: 0},
		{mode: "partial-checkpoint", failAt: "3", signal: syscall.SIGKILL, stderr: "halfway through"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.mode, " ", "_"), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "10", "--save-steps", "5", "--step-time", "1ms", "--fail", tt.mode, "--fail-at", tt.failAt)
			ps := r.wait(t, time.Minute)
			ws := ps.Sys().(syscall.WaitStatus)
			switch {
			case tt.signal != 0 && (!ws.Signaled() || ws.Signal() != tt.signal):
				t.Errorf("wait status %v, want killed by %v", ps, tt.signal)
			case tt.signal == 0 && (ws.Signaled() || ws.ExitStatus() != tt.code):
				t.Errorf("wait status %v, want exit %d", ps, tt.code)
			}
			if !strings.Contains(r.stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, r.stderr.String())
			}
			if !strings.Contains(r.stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, r.stdout.String())
			}
		})
	}
}

// TestOOMAboveBatch runs the trainer with batches around the limit of
// --fail cuda-oom-above-batch 4 (its number as a word of its own, unquoted): above it,
// torch's OOM traceback for that batch and exit 1; at or under it, training completes
// with the batch and accumulation it was given, printed as HF prints them.
func TestOOMAboveBatch(t *testing.T) {
	tests := []struct {
		batch, accum string
		code         int
		out          string
	}{
		{"8", "1", 1, "Tried to allocate 2.00 GiB."},
		{"5", "1", 1, "Tried to allocate 1.25 GiB."},
		{"4", "2", 0, "  Instantaneous batch size per device = 4\n  Total train batch size (w. parallel, distributed & accumulation) = 8\n  Gradient Accumulation steps = 2\n"},
		{"1", "8", 0, "  Instantaneous batch size per device = 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.batch+"x"+tt.accum, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "5", "--save-steps", "5", "--step-time", "1ms",
				"--per_device_train_batch_size", tt.batch, "--gradient_accumulation_steps", tt.accum, "--dataloader_num_workers", "2",
				"--fail", "cuda-oom-above-batch", "4")
			if ps := r.wait(t, time.Minute); ps.ExitCode() != tt.code {
				t.Fatalf("exit %d, want %d\n%s", ps.ExitCode(), tt.code, r.stderr.String())
			}
			if all := r.stdout.String() + r.stderr.String(); !strings.Contains(all, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, all)
			}
			if tt.code != 0 {
				if !strings.Contains(r.stderr.String(), "torch.OutOfMemoryError: CUDA out of memory.") {
					t.Errorf("stderr lacks torch's OOM error:\n%s", r.stderr.String())
				}
				return
			}
			raw, err := os.ReadFile(filepath.Join(out, "checkpoint-5", "trainer_state.json"))
			if err != nil {
				t.Fatal(err)
			}
			var st trainerState
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if want := tt.batch; st.TrainBatchSize != atoi(t, want) {
				t.Errorf("trainer_state.json train_batch_size %d, want %s", st.TrainBatchSize, want)
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPartialCheckpointIsIncomplete(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "20", "--save-steps", "5", "--step-time", "1ms", "--fail", "partial-checkpoint", "--fail-at", "7")
	r.wait(t, time.Minute)
	cps, err := checkpoints.Scan(context.Background(), out, scanOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Status != checkpoints.StatusComplete || cps[1].Name != "checkpoint-10" || cps[1].Status == checkpoints.StatusComplete {
		t.Fatalf("want checkpoint-5 complete and checkpoint-10 not: %v", cps)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint-10", "model.safetensors")); err != nil {
		t.Errorf("weights of the partial checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoint-10", "trainer_state.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trainer_state.json of the partial checkpoint: %v, want none", err)
	}
}

func TestFailAttempts(t *testing.T) {
	tests := []struct {
		attempt string
		code    int
	}{{"1", 5}, {"2", 5}, {"3", 0}, {"", 5}}
	for _, tt := range tests {
		t.Run("attempt="+tt.attempt, func(t *testing.T) {
			t.Parallel()
			r := startTrainer(t, []string{"TRAINWRAP_ATTEMPT=" + tt.attempt}, "--output_dir", t.TempDir(), "--max-steps", "4", "--step-time", "1ms",
				"--fail", "exit 5", "--fail-at", "2", "--fail-attempts", "2")
			if ps := r.wait(t, time.Minute); ps.ExitCode() != tt.code {
				t.Errorf("exit %d, want %d\n%s", ps.ExitCode(), tt.code, r.stderr.String())
			}
		})
	}
}

func TestHangStopsAndDumpsOnAbort(t *testing.T) {
	r := startTrainer(t, nil, "--output_dir", t.TempDir(), "--max-steps", "1000", "--step-time", "1ms", "--fail", "hang", "--fail-at", "5")
	// The step-4 bar is the last thing printed before step 5 hangs.
	r.waitOutput(t, "| 4/1000 [", time.Minute)
	// It stays alive and prints nothing more.
	before := r.stdout.String() + r.stderr.String()
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if r.cmd.ProcessState != nil {
			t.Fatal("the hung trainer exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := r.stdout.String() + r.stderr.String(); after != before {
		t.Fatalf("the hung trainer kept printing: %q", strings.TrimPrefix(after, before))
	}
	if err := r.cmd.Process.Signal(syscall.SIGABRT); err != nil {
		t.Fatal(err)
	}
	ws := r.wait(t, time.Minute).Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Errorf("wait status %v, want killed by SIGABRT", ws)
	}
	if !strings.Contains(r.stderr.String(), "Fatal Python error: Aborted") {
		t.Errorf("no faulthandler dump on SIGABRT:\n%s", r.stderr.String())
	}
}

func TestSigtermIgnore(t *testing.T) {
	r := startTrainer(t, nil, "--output_dir", t.TempDir(), "--max-steps", "1000", "--step-time", "1ms", "--fail", "sigterm-ignore", "--fail-at", "3")
	r.waitOutput(t, "are ignored from now on", time.Minute)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGABRT} {
		if err := r.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	// Still alive well after the signals landed: probe with signal 0.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if err := r.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("died of an ignored signal: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = r.cmd.Process.Kill()
	if ws := r.wait(t, time.Minute).Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Errorf("wait status %v, want SIGKILL", ws)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in, mode string
		code     int
		err      string
	}{
		{"", FailNone, 0, ""},
		{"cuda-oom", FailCUDAOOM, 0, ""},
		{"exit 3", FailExit, 3, ""},
		{"exit:42", FailExit, 42, ""},
		{"exit=0", FailExit, 0, ""},
		{"exit", "", 0, "give the exit code"},
		{"exit 300", "", 0, "from 0 to 255"},
		{"oom", "", 0, `unknown mode; use one of cuda-oom`},
		{"cuda-oom-above-batch 4", FailCUDAOOMAboveBatch, 4, ""},
		{"cuda-oom-above-batch=0", FailCUDAOOMAboveBatch, 0, ""},
		{"cuda-oom-above-batch", "", 0, "give the largest batch that fits"},
		{"cuda-oom-above-batch x", "", 0, "give the largest batch that fits"},
	}
	for _, tt := range tests {
		mode, code, err := ParseMode(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMode(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || mode != tt.mode || code != tt.code {
			t.Errorf("ParseMode(%q) = %q, %d, %v; want %q, %d", tt.in, mode, code, err, tt.mode, tt.code)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := TrainOptions{OutputDir: "out", MaxSteps: 10, SaveSteps: 5, StepTime: time.Millisecond, BatchSize: 8, GradAccum: 1}
	tests := []struct {
		name string
		edit func(*TrainOptions)
		err  string
	}{
		{"valid", func(*TrainOptions) {}, ""},
		{"no steps", func(o *TrainOptions) { o.MaxSteps = 0 }, "--max-steps 0"},
		{"negative save", func(o *TrainOptions) { o.SaveSteps = -1 }, "--save-steps -1"},
		{"negative fail-at", func(o *TrainOptions) { o.FailAt = -2 }, "--fail-at -2"},
		{"no output dir", func(o *TrainOptions) { o.OutputDir = "" }, "--output_dir"},
		{"bad mode", func(o *TrainOptions) { o.Fail = "gremlins" }, `--fail "gremlins"`},
		{"mode number as its own word", func(o *TrainOptions) { o.Fail, o.FailArg = "cuda-oom-above-batch", []string{"4"} }, ""},
		{"stray argument", func(o *TrainOptions) { o.FailArg = []string{"4"} }, `unexpected argument "4"`},
		{"two stray arguments", func(o *TrainOptions) { o.Fail, o.FailArg = "exit", []string{"3", "4"} }, `unexpected argument "3 4"`},
		{"zero batch", func(o *TrainOptions) { o.BatchSize = 0 }, "--per_device_train_batch_size 0"},
		{"zero accumulation", func(o *TrainOptions) { o.GradAccum = 0 }, "--gradient_accumulation_steps 0"},
		{"negative workers", func(o *TrainOptions) { o.LoaderWorker = -1 }, "--dataloader_num_workers -1"},
	}
	for _, tt := range tests {
		o := ok
		tt.edit(&o)
		err := o.Validate()
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.err)
		}
	}
}

// SIGUSR1 (SLURM's time-limit warning) makes the trainer save at the end of the step
// and go on, as the training script in docs/slurm.md does.
func TestUsr1SavesAndKeepsGoing(t *testing.T) {
	out := t.TempDir()
	r := startTrainer(t, nil, "--output_dir", out, "--max-steps", "100000", "--save-steps", "0", "--step-time", "5ms")
	r.waitOutput(t, "| 3/100000 [", time.Minute)
	if err := r.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.waitOutput(t, "[chaos] got SIGUSR1: saving a checkpoint at step ", time.Minute)
	_, after, _ := strings.Cut(r.stdout.String(), "[chaos] got SIGUSR1: saving a checkpoint at step ")
	step, _, _ := strings.Cut(after, "\n")
	r.waitOutput(t, "Saving model checkpoint to "+filepath.Join(out, "checkpoint-"+step), time.Minute)
	// It keeps training after the save.
	next := fmt.Sprintf("global_step=%d ", mustAtoi(t, step)+2)
	r.waitOutput(t, next, time.Minute)
	if r.cmd.ProcessState != nil {
		t.Fatal("the trainer exited on SIGUSR1")
	}
	b, err := os.ReadFile(filepath.Join(out, "checkpoint-"+step, "trainer_state.json"))
	if err != nil {
		t.Fatalf("the USR1 checkpoint: %v", err)
	}
	var st struct {
		GlobalStep int `json:"global_step"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.GlobalStep != mustAtoi(t, step) {
		t.Fatalf("trainer_state.json global_step %d (%v), want %s", st.GlobalStep, err, step)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
