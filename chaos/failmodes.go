package chaos

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Fail modes of the trainer: each dies the way a real training job dies.
const (
	FailNone              = ""
	FailCUDAOOM           = "cuda-oom"
	FailHostOOM           = "host-oom"
	FailHang              = "hang"
	FailNCCLTimeout       = "nccl-timeout"
	FailCUDAError         = "cuda-error"
	FailSegv              = "segv"
	FailDiskFull          = "disk-full"
	FailNaN               = "nan"
	FailImportError       = "import-error"
	FailFileNotFound      = "file-not-found"
	FailConfigError       = "config-error"
	FailDataloader        = "dataloader"
	FailPartialCheckpoint = "partial-checkpoint"
	FailSigtermIgnore     = "sigterm-ignore"
	FailOrphan            = "orphan"
	FailExit              = "exit"
	// FailCUDAOOMAboveBatch takes a batch size B: "cuda-oom-above-batch 4" runs out of
	// GPU memory whenever --per_device_train_batch_size is above B, on every attempt.
	FailCUDAOOMAboveBatch = "cuda-oom-above-batch"

	// The anomaly modes do not crash: the trainer runs to --max-steps and exits 0,
	// but from --fail-at on, the metrics it prints go bad the way a sick run's do.
	FailLossSpike         = "loss-spike"          // the loss jumps 20x for spikeSteps steps, then recovers
	FailLossScaleCollapse = "loss-scale-collapse" // DeepSpeed OVERFLOW lines halve the fp16 scale every step, down to 1
	FailSlowdown          = "slowdown"            // steps take 3x longer; the throughput printed drops to a third
)

// AnomalyModes lists the fail modes that leave the process healthy and its training
// sick. They are apart from Modes, which the crash suite runs and expects to crash.
var AnomalyModes = []string{FailLossSpike, FailLossScaleCollapse, FailSlowdown}

// IsAnomalyMode tells whether mode is one of AnomalyModes.
func IsAnomalyMode(mode string) bool {
	for _, m := range AnomalyModes {
		if m == mode {
			return true
		}
	}
	return false
}

// Modes lists every fail mode, in the order the suite runs them. "exit" takes a code:
// "exit 3" (or exit:3, exit=3); the last two take a number.
var Modes = []string{
	FailCUDAOOM, FailHostOOM, FailHang, FailNCCLTimeout, FailCUDAError, FailSegv,
	FailDiskFull, FailNaN, FailImportError, FailFileNotFound, FailConfigError,
	FailDataloader, FailPartialCheckpoint, FailSigtermIgnore, FailOrphan, FailCUDAOOMAboveBatch, FailExit,
}

// ParseMode splits a --fail value into its mode and its number: the exit code of
// "exit N", the batch of "cuda-oom-above-batch B". It rejects unknown modes with the
// list of known ones.
func ParseMode(s string) (mode string, code int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return FailNone, 0, nil
	}
	if rest, ok := strings.CutPrefix(s, FailCUDAOOMAboveBatch); ok {
		rest = strings.TrimLeft(rest, " :=")
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return "", 0, fmt.Errorf("--fail %q: give the largest batch that fits, as in --fail 'cuda-oom-above-batch 4'", s)
		}
		return FailCUDAOOMAboveBatch, n, nil
	}
	if rest, ok := strings.CutPrefix(s, FailExit); ok {
		rest = strings.TrimLeft(rest, " :=")
		if rest == "" {
			return "", 0, fmt.Errorf("--fail %q: give the exit code, as in --fail 'exit 3'", s)
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 || n > 255 {
			return "", 0, fmt.Errorf("--fail %q: exit code must be a number from 0 to 255", s)
		}
		return FailExit, n, nil
	}
	plain := append(append([]string{}, Modes[:len(Modes)-2]...), AnomalyModes...)
	for _, m := range plain {
		if s == m {
			return m, 0, nil
		}
	}
	return "", 0, fmt.Errorf("--fail %q: unknown mode; use one of %s, 'cuda-oom-above-batch B' or 'exit N'", s, strings.Join(plain, ", "))
}

// ExitError is returned by Train when the fake job ends the way a Python process does
// after an uncaught exception: the traceback is printed, the process exits with Code.
type ExitError struct {
	Code int
	Mode string
}

// Error names the fail mode and the exit code it ends the trainer with.
func (e *ExitError) Error() string {
	return fmt.Sprintf("chaos train: fail mode %s: exit %d", e.Mode, e.Code)
}

// traceHead is the part of a Python traceback that every HF Trainer crash inside the
// training loop shares.
const traceHead = `Traceback (most recent call last):
  File "/workspace/train.py", line 212, in <module>
    main()
  File "/workspace/train.py", line 205, in main
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 1938, in train
    return inner_training_loop(
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 2279, in _inner_training_loop
    tr_loss_step = self.training_step(model, inputs)
`

// cudaOOM prints PyTorch's CUDA out-of-memory traceback, as torch 2.x words it, for a
// step that tried to allocate gib.
func cudaOOM(w io.Writer, pid int, gib float64) {
	fmt.Fprint(w, traceHead+`  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3349, in training_step
    self.accelerator.backward(loss, **kwargs)
  File "/usr/local/lib/python3.10/dist-packages/torch/autograd/__init__.py", line 289, in backward
    _engine_run_backward(
  File "/usr/local/lib/python3.10/dist-packages/torch/autograd/graph.py", line 768, in _engine_run_backward
    return Variable._execution_engine.run_backward(  # Calls into the C++ engine to run the backward pass
`)
	fmt.Fprintf(w, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate %.2f GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.23 GiB is free. Process %d has 77.91 GiB memory in use. Of the allocated memory 74.12 GiB is allocated by PyTorch, and 2.31 GiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)\n", gib, pid)
}

// ncclTimeout prints what ProcessGroupNCCL's watchdog prints before it takes the
// process down with abort().
func ncclTimeout(w io.Writer, now time.Time, seq int) {
	ts := now.Format("0102 15:04:05.000000000")
	work := fmt.Sprintf("WorkNCCL(SeqNum=%d, OpType=ALLREDUCE, NumelIn=16777216, NumelOut=16777216, Timeout(ms)=600000)", seq)
	fmt.Fprintf(w, "[rank0]:[E%s ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: %s ran for 600043 milliseconds before timing out.\n", ts, work)
	fmt.Fprintf(w, "[rank0]:[E%s ProcessGroupNCCL.cpp:1785] [PG 0 (default_pg) Rank 0] Exception (either an error or timeout) detected by watchdog at work: %d, last enqueued NCCL work: %d, last completed NCCL work: %d.\n", ts, seq, seq, seq-1)
	fmt.Fprintf(w, "[rank0]:[E%s ProcessGroupNCCL.cpp:630] [Rank 0] Some NCCL operations have failed or timed out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data.\n", ts)
	fmt.Fprintf(w, "[rank0]:[E%s ProcessGroupNCCL.cpp:636] [Rank 0] To avoid data inconsistency, we are taking the entire process down.\n", ts)
	fmt.Fprintf(w, "[rank0]:[E%s ProcessGroupNCCL.cpp:1595] [PG 0 (default_pg) Rank 0] Process group watchdog thread terminated with exception: [Rank 0] Watchdog caught collective operation timeout: %s ran for 600043 milliseconds before timing out.\n", ts, work)
	fmt.Fprintf(w, "terminate called after throwing an instance of 'c10::DistBackendError'\n  what():  [PG 0 (default_pg) Rank 0] Process group watchdog thread terminated with exception: [Rank 0] Watchdog caught collective operation timeout: %s ran for 600043 milliseconds before timing out.\n", work)
}

// cudaError prints the illegal-memory-access error of an async CUDA kernel fault.
func cudaError(w io.Writer) {
	fmt.Fprint(w, traceHead+`  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3318, in training_step
    inputs = self._prepare_inputs(inputs)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3269, in _prepare_inputs
    return self._prepare_input(inputs)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3261, in _prepare_input
    return data.to(**kwargs)
RuntimeError: CUDA error: an illegal memory access was encountered
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1
Compile with `+"`TORCH_USE_CUDA_DSA`"+` to enable device-side assertions.

`)
}

// faulthandler prints what Python's faulthandler (PYTHONFAULTHANDLER=1) prints on a
// fatal signal, before the signal's default action kills the process.
func faulthandler(w io.Writer, what string) {
	fmt.Fprintf(w, `Fatal Python error: %s

Thread 0x00007f3a2d7fe640 (most recent call first):
  File "/usr/lib/python3.10/threading.py", line 324 in wait
  File "/usr/lib/python3.10/threading.py", line 607 in wait
  File "/usr/local/lib/python3.10/dist-packages/tqdm/_monitor.py", line 60 in run
  File "/usr/lib/python3.10/threading.py", line 1016 in _bootstrap_inner
  File "/usr/lib/python3.10/threading.py", line 973 in _bootstrap

Current thread 0x00007f3b9c6e4740 (most recent call first):
  File "/usr/local/lib/python3.10/dist-packages/torch/autograd/graph.py", line 768 in _engine_run_backward
  File "/usr/local/lib/python3.10/dist-packages/torch/autograd/__init__.py", line 289 in backward
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3349 in training_step
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 2279 in _inner_training_loop
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 1938 in train
  File "/workspace/train.py", line 205 in main
  File "/workspace/train.py", line 212 in <module>
`, what)
}

// diskFull prints the ENOSPC traceback of a checkpoint save on a full disk.
func diskFull(w io.Writer, path string) {
	fmt.Fprint(w, traceHead+`  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 2356, in _inner_training_loop
    self._maybe_log_save_evaluate(tr_loss, grad_norm, model, trial, epoch, ignore_keys_for_eval)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 2807, in _maybe_log_save_evaluate
    self._save_checkpoint(model, trial, metrics=metrics)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 2890, in _save_checkpoint
    self._save_optimizer_and_scheduler(output_dir)
  File "/usr/local/lib/python3.10/dist-packages/transformers/trainer.py", line 3006, in _save_optimizer_and_scheduler
    torch.save(self.optimizer.state_dict(), os.path.join(output_dir, OPTIMIZER_NAME))
  File "/usr/local/lib/python3.10/dist-packages/torch/serialization.py", line 651, in save
    with _open_zipfile_writer(f) as opened_zipfile:
`)
	fmt.Fprintf(w, "OSError: [Errno 28] No space left on device: '%s'\n", path)
}

// nanLoss prints the log lines of a diverging run and the error a trainer with a NaN
// guard raises.
func nanLoss(w io.Writer, step int, epoch float64) {
	fmt.Fprintf(w, "{'loss': nan, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': %.2f}\n", epoch)
	fmt.Fprint(w, traceHead+`  File "/workspace/train.py", line 148, in training_step
    self._check_finite(loss)
  File "/workspace/train.py", line 131, in _check_finite
    raise FloatingPointError(
`)
	fmt.Fprintf(w, "FloatingPointError: Loss became infinite or NaN at iteration=%d!\nloss_dict = {'loss': nan}\n", step)
}

// importError prints the traceback of a missing optional dependency at import time.
func importError(w io.Writer) {
	fmt.Fprint(w, `Traceback (most recent call last):
  File "/workspace/train.py", line 9, in <module>
    from flash_attn import flash_attn_func
ModuleNotFoundError: No module named 'flash_attn'
`)
}

// fileNotFound prints the traceback of a dataset file that is not there.
func fileNotFound(w io.Writer, path string) {
	fmt.Fprint(w, `Traceback (most recent call last):
  File "/workspace/train.py", line 212, in <module>
    main()
  File "/workspace/train.py", line 171, in main
    train_ds = load_jsonl(args.train_file)
  File "/workspace/data.py", line 22, in load_jsonl
    with open(path, encoding="utf-8") as f:
`)
	fmt.Fprintf(w, "FileNotFoundError: [Errno 2] No such file or directory: '%s'\n", path)
}

// configError prints what HfArgumentParser (argparse underneath) prints for a bad
// argument value; argparse then exits 2.
func configError(w io.Writer) {
	fmt.Fprint(w, `usage: train.py [-h] --model_name_or_path MODEL_NAME_OR_PATH --output_dir OUTPUT_DIR
                [--learning_rate LEARNING_RATE] [--max_steps MAX_STEPS]
                [--save_steps SAVE_STEPS] [--resume_from_checkpoint RESUME_FROM_CHECKPOINT]
train.py: error: argument --learning_rate: invalid float value: '5e-5x'
`)
}

// dataloaderDied prints what the main process reports when a DataLoader worker dies
// of a bus error on exhausted shared memory.
func dataloaderDied(w io.Writer, workerPID int) {
	fmt.Fprint(w, "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).\n")
	fmt.Fprint(w, traceHead+`  File "/usr/local/lib/python3.10/dist-packages/torch/utils/data/dataloader.py", line 1133, in _try_get_data
    data = self._data_queue.get(timeout=timeout)
  File "/usr/lib/python3.10/multiprocessing/queues.py", line 113, in get
    if not self._poll(timeout):
  File "/usr/local/lib/python3.10/dist-packages/torch/utils/data/_utils/signal_handling.py", line 66, in handler
    _error_if_any_worker_fails()
`)
	fmt.Fprintf(w, "RuntimeError: DataLoader worker (pid %d) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory. Please try to raise your shared memory limit.\n\n", workerPID)
	fmt.Fprint(w, "The above exception was the direct cause of the following exception:\n\n")
	fmt.Fprintf(w, "RuntimeError: DataLoader worker (pid(s) %d) exited unexpectedly\n", workerPID)
}

// overflowLine prints what DeepSpeed's fp16 loss scaler logs when gradients
// overflow (DynamicLossScaler.update_scale, deepspeed/runtime/fp16/loss_scaler.py,
// v0.14): the step is skipped and the scale halved, never below min_scale 1.
func overflowLine(w io.Writer, now time.Time, attempted, next float64) {
	fmt.Fprintf(w, "[%s,%03d] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: %d, reducing to %d\n",
		now.Format("2006-01-02 15:04:05"), now.Nanosecond()/1e6, int64(attempted), int64(next))
}

// envAttempt is the supervisor's 1-based attempt number, 1 when not supervised.
func envAttempt() int {
	n, err := strconv.Atoi(os.Getenv("TRAINWRAP_ATTEMPT"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}
