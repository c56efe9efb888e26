package classify

import (
	"strings"
	"syscall"
	"testing"
)

// observe feeds each line of log to a fresh classifier.
func observe(log string) *Classifier {
	c := New()
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		c.ObserveLine([]byte(l))
	}
	return c
}

func TestCascades(t *testing.T) {
	tests := []struct {
		name     string
		log      string
		want     Class
		rank     int // -1: none named
		evidence string
	}{
		{
			name: "OOM on one rank, watchdog timeouts on the others",
			log: `[rank1]: Traceback (most recent call last):
[rank1]:   File "train.py", line 88, in <module>
[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 79.15 GiB of which 1.12 GiB is free.
[rank0]:[E1128 23:57:10.123456 1234 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1234, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600035 milliseconds before timing out.
[rank2]:[E1128 23:57:10.123456 1234 ProcessGroupNCCL.cpp:616] [Rank 2] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1234, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600035 milliseconds before timing out.
[rank2]: RuntimeError: NCCL communicator was aborted on rank 2.`,
			want: CudaOOM, rank: 1, evidence: "CUDA out of memory",
		},
		{
			name: "watchdog timeouts alone are nccl",
			log: `[rank0]:[E1128 23:57:10.1 1 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600035 milliseconds before timing out.
[rank1]:[E1128 23:57:10.1 1 ProcessGroupNCCL.cpp:616] [Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600035 milliseconds before timing out.`,
			want: NCCL, rank: 0, evidence: "Watchdog caught",
		},
		{
			name: "previous error cascade points back to the first CUDA error",
			log: `RuntimeError: CUDA error: an illegal memory access was encountered
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1.
terminate called after throwing an instance of 'c10::Error'
  what():  CUDA error: an illegal memory access was encountered
Exception raised from c10_cuda_check_implementation at ../c10/cuda/CUDAException.cpp:44 (most recent call first):
RuntimeError: CUDA error: misaligned address (previous error)`,
			want: CUDAError, rank: -1, evidence: "illegal memory access",
		},
		{
			name: "asynchronous-report note alone is a CUDA error",
			log: `CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
For debugging consider passing CUDA_LAUNCH_BLOCKING=1.`,
			want: CUDAError, rank: -1, evidence: "asynchronously reported",
		},
		{
			name: "CUDA OOM reported through the CUDA error path stays cuda_oom",
			log: `RuntimeError: CUDA error: out of memory
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.`,
			want: CudaOOM, rank: -1, evidence: "CUDA error: out of memory",
		},
		{
			name: "DataLoader worker killed by signal Killed is host memory",
			log: `Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/torch/utils/data/dataloader.py", line 1133, in _try_get_data
RuntimeError: DataLoader worker (pid 12345) is killed by signal: Killed.
RuntimeError: DataLoader worker (pid(s) 12345) exited unexpectedly`,
			want: HostOOM, rank: -1, evidence: "is killed by signal: Killed",
		},
		{
			name: "traceback's last line beats an earlier root",
			log: `ImportError: cannot import name 'flash_attn_func' (optional, falling back)
Traceback (most recent call last):
  File "train.py", line 9, in <module>
FileNotFoundError: [Errno 2] No such file or directory: 'data/train.jsonl'`,
			want: FileNotFound, rank: -1, evidence: "data/train.jsonl",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := observe(tt.log)
			for _, v := range []Verdict{c.Verdict(Exit{Code: 1, OOMKillDelta: -1}), c.FromLog()} {
				if v.Class != tt.want {
					t.Fatalf("class %s, want %s; evidence %+v", v.Class, tt.want, v.Evidence)
				}
				if len(v.Evidence) == 0 || !strings.Contains(strings.ToLower(v.Evidence[0].Text), strings.ToLower(tt.evidence)) {
					t.Errorf("first evidence %+v does not hold %q", v.Evidence, tt.evidence)
				}
				switch {
				case tt.rank < 0 && v.Rank != nil:
					t.Errorf("rank %d, want none", *v.Rank)
				case tt.rank >= 0 && (v.Rank == nil || *v.Rank != tt.rank):
					t.Errorf("rank %v, want %d", v.Rank, tt.rank)
				}
				in := Lookup(tt.want)
				if v.ExitCode != in.ExitCode || v.Retryable != in.Retryable || !strings.Contains(v.Suggestion, in.Suggestion) {
					t.Errorf("verdict %+v does not carry the class's data %+v", v, in)
				}
			}
		})
	}
}

func TestWarningsAreNotCrashes(t *testing.T) {
	tests := []struct {
		name string
		log  string
	}{
		{"UserWarning", `/usr/lib/python3/dist-packages/torch/utils/data/dataloader.py:557: UserWarning: This DataLoader will create 16 worker processes in total. Our suggested max number of worker in current system is 8, which is smaller than what this DataLoader is going to create. Please be aware that excessive worker creation might get DataLoader running slow or even freeze, lower the worker number to avoid potential slowness/freeze if necessary.
  warnings.warn(_create_warning_msg(`},
		{"FutureWarning naming an error", `/opt/conda/lib/python3.10/site-packages/transformers/deepspeed.py:23: FutureWarning: transformers.deepspeed module is deprecated and will be removed in a future version. Please import deepspeed modules directly from transformers.integrations
  warnings.warn(`},
		{"fp16 gradient overflow at start-up", `[2026-11-28 10:00:01,123] [INFO] [stage_1_and_2.py:1778:step] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768
Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0`},
		{"process group not destroyed at exit", `[rank0]:[W1128 23:57:10.123456789 ProcessGroupNCCL.cpp:1250] Warning: WARNING: process group has NOT been destroyed before we destruct ProcessGroupNCCL. On normal program exit, the application should call destroy_process_group to ensure that any pending NCCL operations have finished in this process. In rare cases this process can exit before this point and block the progress of another member of the process group. This constraint has always been present,  but this warning has only recently been added. For more info, please see https://pytorch.org/docs/stable/distributed.html#shutdown (function operator())`},
		{"tqdm bars", " 10%|█         | 100/1000 [00:10<01:30,  9.98it/s]\r 20%|██        | 200/1000 [00:20<01:20,  9.99it/s, loss=0.231]"},
		{"a library retrying a timeout", "wandb: Network error (ReadTimeout), entering retry loop."},
		{"loss lines", "{'loss': 1.2345, 'grad_norm': 0.98, 'learning_rate': 4.9e-05, 'epoch': 0.12}\nstep 100 loss 2.31 lr 3e-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := observe(tt.log)
			if v := c.FromLog(); v.Class != None {
				t.Errorf("FromLog = %s, want none; evidence %+v", v.Class, v.Evidence)
			}
			if v := c.Verdict(Exit{Code: 0, OOMKillDelta: -1}); v.Class != None || v.ExitCode != 0 || len(v.Evidence) != 0 {
				t.Errorf("Verdict(exit 0) = %+v, want none without evidence", v)
			}
		})
	}
}

// TestExitStatusMore adds to TestVerdictCascades the exit statuses it leaves out:
// 128+N codes, our own SIGKILL, SIGTERM, and a signal after a root cause.
func TestExitStatusMore(t *testing.T) {
	const (
		cudaOOM     = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
		loss        = "step 120 loss 2.31"
		shellKilled = "/var/spool/slurmd/job123/slurm_script: line 12: 98765 Killed                  python train.py"
	)
	tests := []struct {
		name    string
		log     string
		exit    Exit
		want    Class
		suggest string // a phrase the suggestion must hold
	}{
		{"SIGABRT", loss, Exit{Signal: syscall.SIGABRT, Code: -1}, Segfault, "SIGABRT"},
		{"SIGSEGV after a CUDA OOM is cuda_oom", cudaOOM, Exit{Signal: syscall.SIGSEGV, Code: -1}, CudaOOM, "batch size"},
		{"SIGKILL not from us, counter flat", shellKilled, Exit{Signal: syscall.SIGKILL, Code: -1, OOMKillDelta: 0}, HostOOM, "most likely"},
		{"SIGKILL from our stop escalation is not host_oom", loss, Exit{Signal: syscall.SIGKILL, Code: -1, KilledBySupervisor: true}, Unknown, "SIGKILL"},
		{"exit code 139", loss, Exit{Code: 139}, Segfault, "128+SIGSEGV"},
		{"exit code 134", loss, Exit{Code: 134}, Segfault, "128+SIGABRT"},
		{"exit code 137 with an OOM in the log", cudaOOM, Exit{Code: 137}, CudaOOM, "batch size"},
		{"SIGTERM from elsewhere, nothing in the log", loss, Exit{Signal: syscall.SIGTERM, Code: -1}, Unknown, "SIGTERM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := observe(tt.log).Verdict(tt.exit)
			if v.Class != tt.want {
				t.Fatalf("class %s, want %s; %+v", v.Class, tt.want, v)
			}
			if !strings.Contains(v.Suggestion, tt.suggest) {
				t.Errorf("suggestion %q does not say %q", v.Suggestion, tt.suggest)
			}
			if in := Lookup(tt.want); v.ExitCode != in.ExitCode || v.Retryable != in.Retryable {
				t.Errorf("exit code %d retryable %v, want %d %v", v.ExitCode, v.Retryable, in.ExitCode, in.Retryable)
			}
			if tt.want != None && len(v.Evidence) == 0 {
				t.Errorf("no evidence for %s", v.Class)
			}
		})
	}
}

func TestHangEvidenceIsTheLastOutput(t *testing.T) {
	c := observe("step 1 loss 2.0\nstep 2 loss 1.9\nThread 0x00007f1e (most recent call first):\n  File \"train.py\", line 40 in all_reduce")
	v := c.Verdict(Exit{Stalled: true})
	if v.Class != Hang {
		t.Fatalf("class %s, want hang", v.Class)
	}
	last := v.Evidence[len(v.Evidence)-1]
	if last.Line != 4 || !strings.Contains(last.Text, "all_reduce") {
		t.Errorf("last evidence %+v, want line 4 with the stack", last)
	}
}
