package classify

import (
	"strings"
	"syscall"
	"testing"
)

// TestTablesMapToClasses checks every rule the tables generate: a real class (or a
// structure mark), a tier, an origin, and every table entry present as a rule.
func TestTablesMapToClasses(t *testing.T) {
	sources := map[string]bool{}
	for _, url := range corpusSources(t) {
		sources[url] = true
	}
	prefixes := map[string]int{}
	for _, r := range rules() {
		switch {
		case r.class == "" && r.mark == markNone:
			t.Errorf("rule %s: no class and no structure mark", r.name)
		case r.class != "" && (Lookup(r.class).Class != r.class || r.class == None):
			t.Errorf("rule %s: class %q is not a crash class", r.name, r.class)
		case r.class != "" && (r.tier < hint || r.tier > root):
			t.Errorf("rule %s: tier %d", r.name, r.tier)
		}
		if r.origin == "" {
			t.Errorf("rule %s: no origin", r.name)
		}
		if strings.HasPrefix(r.origin, "https://") && !sources[r.origin] {
			t.Errorf("rule %s: origin %s is no corpus source", r.name, r.origin)
		}
		if len(r.literals) == 0 {
			t.Errorf("rule %s: no literals", r.name)
		}
		for _, l := range r.literals {
			if len(l) < 4 {
				t.Errorf("rule %s: literal %q is shorter than the prefilter's gram", r.name, l)
			}
		}
		if p, _, ok := strings.Cut(r.name, ":"); ok {
			prefixes[p]++
		}
	}
	for _, tt := range []struct {
		prefix string
		want   int
	}{
		{"cuda", len(cudaErrors)}, {"hip", len(hipErrors)}, {"status", len(libraryStatuses)},
		{"nccl", len(ncclResults)}, {"errno", len(errnoTable)}, {"winerror", len(winErrors)},
		{"shell", len(signalTexts)}, {"dataloader", len(signalTexts)}, {"l10n", len(glibcL10n)},
		{"exception", len(exceptionTypes)}, {"ntstatus", len(ntStatuses)},
	} {
		if prefixes[tt.prefix] != tt.want {
			t.Errorf("%d %s rules, want one per table entry: %d", prefixes[tt.prefix], tt.prefix, tt.want)
		}
	}
	for _, l := range glibcL10n {
		if _, _, _, _, _, ok := l10nClass(l.msgid); !ok {
			t.Errorf("glibc msgid %q (%s) maps to no errno or signal entry", l.msgid, l.locale)
		}
	}
	for _, want := range []string{"Killed", "Segmentation fault", "Aborted", "Bus error", "No space left on device"} {
		n := 0
		for _, l := range glibcL10n {
			if l.msgid == want {
				n++
			}
		}
		if n < 20 {
			t.Errorf("%q: %d translations, want the 30-odd glibc ships", want, n)
		}
	}
}

// TestEmitterFormats feeds one line (or a few) in each emitter's format, as its source
// prints it, and checks the class from the log alone and with a failed exit.
func TestEmitterFormats(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  Class
	}{
		{"THCudaCheck of the CUDA 9 era, then its throw", []string{"THCudaCheck FAIL file=/pytorch/aten/src/THC/THCGeneral.cpp line=383 error=11 : invalid argument", "RuntimeError: cuda runtime error (11) : invalid argument at /pytorch/aten/src/THC/THCGeneral.cpp:383"}, CUDAError},
		{"THError of the CUDA 9 era", []string{"RuntimeError: cuda runtime error (77) : an illegal memory access was encountered at /pytorch/aten/src/THC/generic/THCTensorCopy.c:20"}, CUDAError},
		{"THCudaCheck out of memory, then its throw", []string{"THCudaCheck FAIL file=/pytorch/aten/src/THC/generic/THCStorage.cu line=58 error=2 : out of memory", "RuntimeError: cuda runtime error (2) : out of memory at /pytorch/aten/src/THC/generic/THCStorage.cu:58"}, CudaOOM},
		{"driver API name", []string{"jaxlib.xla_extension.XlaRuntimeError: INTERNAL: Failed to launch CUDA kernel: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered"}, CUDAError},
		{"cudaGetErrorString text", []string{"RuntimeError: CUDA error: uncorrectable NVLink error detected during the execution"}, CUDAError},
		{"HIP text", []string{"RuntimeError: HIP error: the launch timed out and was terminated"}, CUDAError},
		{"cuDNN status", []string{"RuntimeError: cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"}, CUDAError},
		{"cuBLAS alloc", []string{"RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"}, CudaOOM},
		{"NCCL generic text after a comma", []string{"torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275, invalid usage (run with NCCL_DEBUG=WARN for details), NCCL version 2.20.5"}, NCCL},
		{"NCCL remote error", []string{"RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited or there was a network error, NCCL version 2.19.3"}, NCCL},
		{"errno quota", []string{"OSError: [Errno 122] Disk quota exceeded: '/home/u/.cache/huggingface/hub/tmpx'"}, DiskFull},
		{"errno read-only", []string{"OSError: [Errno 30] Read-only file system: '/data/ckpt'"}, Permission},
		{"errno fds", []string{"OSError: [Errno 24] Too many open files"}, Dataloader},
		{"WinError paging file", []string{"OSError: [WinError 1455] The paging file is too small for this operation to complete. Error loading \"C:\\Python310\\lib\\site-packages\\torch\\lib\\cudnn_cnn_infer64_8.dll\" or one of its dependencies."}, HostOOM},
		{"German shell segfault", []string{"./train.sh: Zeile 3: 12345 Speicherzugriffsfehler  (Speicherabzug geschrieben) python train.py"}, Segfault},
		{"shell's Killed after a progress bar", []string{"Epoch 3:  45%|████▍     | 445/1000 [02:13<02:46,  3.34it/s]Killed"}, HostOOM},
		{"French shell killed", []string{"./train.sh: ligne 3 : 12345 Processus arrêté      python train.py"}, HostOOM},
		{"Japanese shell killed", []string{"./run.sh: 行 7: 98765 強制終了            python train.py"}, HostOOM},
		{"Russian strerror", []string{"OSError: [Errno 28] На устройстве не осталось свободного места"}, DiskFull},
		{"kernel OOM killer", []string{"[123456.789] Out of memory: Killed process 4242 (python) total-vm:123456kB, anon-rss:98765kB"}, HostOOM},
		{"NVIDIA Xid", []string{"NVRM: Xid (PCI:0000:3b:00): 48, pid=1234, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0."}, CUDAError},
		{"slurmstepd oom", []string{"slurmstepd: error: Detected 1 oom_kill event in StepId=4242.0. Some of the step tasks have been OOM Killed."}, HostOOM},
		{"slurm time limit", []string{"slurmstepd: error: *** JOB 4242 ON node12 CANCELLED AT 2026-11-28T23:57:10 DUE TO TIME LIMIT ***"}, Timeout},
		{"kubernetes", []string{"    Last State:     Terminated", "      Reason:       OOMKilled"}, HostOOM},
		{"dataloader killed", []string{"RuntimeError: DataLoader worker (pid 4242) is killed by signal: Floating point exception. "}, Dataloader},
		{"dataloader timeout", []string{"RuntimeError: DataLoader timed out after 600 seconds"}, Dataloader},
		{"subprocess SIGKILL", []string{"subprocess.CalledProcessError: Command '['/usr/bin/python3', 'train.py']' died with <Signals.SIGKILL: 9>."}, HostOOM},
		{"deepspeed launcher", []string{"[2026-11-28 23:57:10,123] [ERROR] [launch.py:325:sigkill_handler] ['/usr/bin/python3', '-u', 'train.py'] exits with return code = -9"}, HostOOM},
		{"Open MPI's signal handler", []string{"[node12:04242] *** Process received signal ***", "[node12:04242] Signal: Bus error (7)", "[node12:04242] [ 0] /lib/x86_64-linux-gnu/libpthread.so.0(+0x11390)[0x7fe68648e390]"}, Segfault},
		{"Open MPI's handler under mpirun --tag-output, signal line lost", []string{"[1,3]<stderr>:[node12:04242] Signal code: Invalid permissions (2)", "[1,3]<stderr>:[node12:04242] Failing at address: 0x7f0000001000"}, Segfault},
		{"Windows access violation as PyCharm reports it", []string{"Process finished with exit code -1073741819 (0xC0000005)"}, Segfault},
		{"Windows stack buffer overrun as an unsigned status", []string{"error: command 'python' exited with status 3221226505"}, Segfault},
		{"TCPStore's server waiting for ranks that never came", []string{"torch.distributed.DistStoreError: Timed out after 901 seconds waiting for clients. 1/2 clients joined."}, Timeout},
		{"TCPStore wait", []string{"torch.distributed.DistStoreError: wait timeout after 300000ms, keys: /default_pg/0//cuda//0"}, Timeout},
		{"store timeout while NCCL sets up its communicator", []string{"[rank1]: torch.distributed.DistBackendError: [1] is setting up NCCL communicator and retrieving ncclUniqueId from [0] via c10d key-value store by key '0', but store->get('0') got error: Socket Timeout"}, NCCL},
		{"store timeout after a frame of NCCL's setup", []string{"RuntimeError: Socket Timeout", "Exception raised from recvBytes at ../torch/csrc/distributed/c10d/Utils.hpp:604 (most recent call first):", "frame #4: c10d::ProcessGroupNCCL::broadcastUniqueNCCLID(ncclUniqueId*, bool, std::string const&, int) + 0x1a6 (0x7f in libtorch_cuda.so)"}, NCCL},
		{"botocore read timeout", []string{"botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: \"https://s3.amazonaws.com/bucket/shard-0001.tar\""}, Timeout},
		{"TF status from an errno: the errno's text decides", []string{"W tensorflow/core/framework/op_kernel.cc:1753] OP_REQUIRES failed at save_restore_v2_ops.cc:134 : Resource exhausted: ckpt/part-00000-of-00001.data-00000-of-00001.tempstate123; No space left on device"}, DiskFull},
		{"numpy's reservation before a write", []string{"OSError: Not enough free space to write 268435456 bytes"}, DiskFull},
		{"tempfile with no writable directory", []string{"FileNotFoundError: [Errno 2] No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/work']"}, DiskFull},
		{"NCCL's return-code trace", []string{"node1:4242:4300 [0] misc/socket.cc:483 NCCL WARN socketStartConnect: Connect to 10.0.0.2<45763> failed : Software caused connection abort", "node1:4242:4300 [0] NCCL INFO misc/socket.cc:564 -> 2", "node1:4242:4300 [0] NCCL INFO bootstrap.cc:270 -> 2 [Async thread]"}, NCCL},
		{"NCCL 2.19+ traces as WARN", []string{"node1:4242:4300 [3] NCCL WARN transport/net.cc:1302 -> 6"}, NCCL},
		{"NCCL's IB completion error", []string{"node1:4242:4300 [4] transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion from peer 10.0.0.2<54862> with error 12, opcode 0, len 0, vendor err 129"}, NCCL},
		{"DeepSpeed's batch arithmetic", []string{"AssertionError: Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size 32 != 4 * 2 * 2"}, ConfigError},
		{"DeepSpeed's batch size of zero", []string{"AssertionError: Micro batch size per gpu: 0 has to be greater than 0"}, ConfigError},
		{"old transformers' cache lookup of a local path", []string{"OSError: file ./models/base/config.json not found"}, FileNotFound},
		{"Trainer resuming from an empty checkpoint folder", []string{"ValueError: Can't find a valid checkpoint at /out/checkpoint-500"}, FileNotFound},
		{"Kaldi's CU_SAFE_CALL", []string{"ERROR (nnet3-train[5.5]:CopyToVec():cu-vector.cc:899) cudaError_t 700 : \"an illegal memory access was encountered\" returned from 'cudaMemcpy(dst->Data(), this->data_, sizeof(Real) * dim_, cudaMemcpyDeviceToHost)'"}, CUDAError},
		{"DataLoader's bus error, wrapped", []string{"RuntimeError: DataLoader worker (pid 4242) is killed by signal: ", "Bus error. It is possible that dataloader's workers are out of shared memory. Please try to raise your shared memory limit."}, Dataloader},
		{"zsh", []string{"zsh: segmentation fault  python train.py"}, Segfault},
		{"glog CHECK on a cuBLAS status (old Caffe: no name after it)", []string{"F1128 23:57:10.123456  4242 math_functions.cu:28] Check failed: status == CUBLAS_STATUS_SUCCESS (13 vs. 0) ", "*** Check failure stack trace: ***", "    @     0x7f3a1b2c3daa  (unknown)"}, CUDAError},
		{"glog CHECK on a CUDA error with its text", []string{"F1128 23:57:10.123456  4242 syncedmem.cpp:71] Check failed: error == cudaSuccess (2 vs. 0)  out of memory", "*** Check failure stack trace: ***"}, CudaOOM},
		{"glog CHECK on cuDNN's allocation failure", []string{"F1128 23:57:10.123456  4242 cudnn_conv_layer.cpp:52] Check failed: status == CUDNN_STATUS_SUCCESS (2 vs. 0)  CUDNN_STATUS_ALLOC_FAILED"}, CudaOOM},
		{"glog CHECK of the program's own", []string{"F1128 23:57:10.123456  4242 net.cpp:757] Check failed: target_blobs.size() == source_layer.blobs_size() (2 vs. 1) Incompatible number of blobs for layer conv1", "*** Check failure stack trace: ***"}, Unknown},
		{"gdb stops on SIGSEGV, then cannot list the source", []string{"Program received signal SIGSEGV, Segmentation fault.", "[Switching to Thread 0x7ffec8ffc700 (LWP 10015)]", "0x00007fffda3a7492 in operator[] (this=0x7ffec8ffbc10, __n=0) at /usr/include/c++/9/bits/stl_vector.h:1043", "1043\t/usr/include/c++/9/bits/stl_vector.h: No such file or directory."}, Segfault},
		{"gdb names the thread; an abort with its source listing", []string{"Thread 1 \"python\" received signal SIGABRT, Aborted.", "__GI_raise (sig=sig@entry=6) at ../sysdeps/unix/sysv/linux/raise.c:50", "50\t../sysdeps/unix/sysv/linux/raise.c: No such file or directory."}, Segfault},
		{"loss scaler floor", []string{"Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run."}, NaNDivergence},
		{"Megatron NaN", []string{"AssertionError: Rank 3: found NaN in local grad norm in backward pass before data-parallel communication collective. Device: 3, node: node12"}, NaNDivergence},
		{"TF CheckNumerics", []string{"INFO:tensorflow:Error reported to Coordinator: <class 'tensorflow.python.framework.errors_impl.InvalidArgumentError'>, total_loss : Tensor had Inf values"}, NaNDivergence},
		{"TF CheckNumerics op's stack alone", []string{"Caused by op 'CheckNumerics_1', defined at:", "  File \"train.py\", line 184, in <module>"}, NaNDivergence},
		{"TF 1.14+ op stack header", []string{"Original stack trace for 'CheckNumerics':", "  File \"train.py\", line 185, in <module>"}, NaNDivergence},
		{"TF NanTensorHook", []string{"ERROR:tensorflow:Model diverged with loss = NaN."}, NaNDivergence},
		{"JAX debug_nans, as a notebook's error JSON", []string{"{", "\t\"name\": \"FloatingPointError\",", "\t\"message\": \"invalid value (inf) encountered in jit(train_step). Because jax_config.debug_nans.value and/or config.jax_debug_infs is set,"}, NaNDivergence},
		{"Lightning early stopping", []string{"Monitored metric val_loss = nan is not finite. Previous best value was 0.412. Signaling Trainer to stop."}, NaNDivergence},
		{"Keras progress bar", []string{"100/100 [==============================] - 33s 3s/step - loss: nan - val_loss: nan"}, NaNDivergence},
		{"a metric printed without a space", []string{"Epoch: 00 Iteration: 00000001/00100000 DLoss:nan Reg:nan"}, NaNDivergence},
		{"a loss that is inf", []string{"step 1200 | train_loss=inf | lr 3e-4"}, NaNDivergence},
		{"a loss and its value separated by a space", []string{"iter 200 | loss nan | lr 2.3e-2"}, NaNDivergence},
		{"HF log dict", []string{"{'loss': nan, 'grad_norm': nan, 'learning_rate': 1.9e-05, 'epoch': 0.31}"}, NaNDivergence},
		{"exception naming NaN", []string{"Traceback (most recent call last):", "  File \"train.py\", line 3, in <module>", "RuntimeError: Loss became NAN at step 1200"}, NaNDivergence},
		{"torchrun's summary alone", []string{"ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: 1) local_rank: 0 (pid: 4242) of binary: /usr/bin/python3"}, Unknown},
		{"the hub unreachable", []string{"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded with url: /bert-base-uncased/resolve/main/config.json"}, Timeout},
		{"a kernel's assert", []string{"/pytorch/aten/src/ATen/native/cuda/Loss.cu:250: nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: [5,0,0] Assertion `t >= 0 && t < n_classes` failed."}, CUDAError},
		{"shared memory full", []string{"RuntimeError: unable to write to file </torch_18692_1954506624>: No space left on device (28)"}, Dataloader},
		{"HF gated", []string{"OSError: You are trying to access a gated repo."}, Permission},
		{"XLA resource exhausted", []string{"jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes."}, CudaOOM},
		{"exception type alone", []string{"Traceback (most recent call last):", "  File \"train.py\", line 3, in <module>", "MemoryError"}, HostOOM},
		{"numpy's array MemoryError", []string{"numpy.core._exceptions._ArrayMemoryError: Unable to allocate 7.45 GiB for an array with shape (1000, 1000, 1000) and data type float64"}, HostOOM},
		{"omegaconf", []string{"omegaconf.errors.ConfigAttributeError: Key 'lr' is not in struct"}, ConfigError},
		{"TF NotFoundError", []string{"tensorflow.python.framework.errors_impl.NotFoundError: /data/train.tfrecord; No such file or directory"}, FileNotFound},
		{"faulthandler timeout dump", []string{"Timeout (0:30:00)!", "Thread 0x00007f3a1b2c3740 (most recent call first):", "  File \"/usr/lib/python3/dist-packages/torch/distributed/distributed_c10d.py\", line 1436 in all_reduce"}, Hang},
		{"thread dump without a fault", []string{"Thread 0x00007f3a1b2c3740 (most recent call first):", "  File \"/usr/lib/python3.10/threading.py\", line 324 in wait"}, Hang},
		{"py-spy dump", []string{"Process 4242: python train.py", "Python v3.10.12 (/usr/bin/python3.10)", "", "Thread 4242 (idle): \"MainThread\"", "    wait (threading.py:320)"}, Hang},
		{"watchdog stuck", []string{"[rank0]:[E1128 23:57:10.1 1 ProcessGroupNCCL.cpp:1418] [PG 0 Rank 0] Heartbeat monitor timed out! Process will be terminated after dumping debug info. workMetaList_.size()=1"}, Hang},
		{"cancelled after a long silence", []string{"2026-11-28 20:00:01,000 - INFO - step 4200 loss 1.23", "slurmstepd: error: *** STEP 4242.0 ON node12 CANCELLED AT 2026-11-28T23:57:10 ***"}, Hang},
		{"time limit after a long silence", []string{"[2026-11-28 20:00:01] step 4200 loss 1.23", "slurmstepd: error: *** JOB 4242 ON node12 CANCELLED AT 2026-11-28T23:57:10 DUE TO TIME LIMIT ***"}, Hang},
		{"time limit while printing", []string{"[2026-11-28 23:56:01] step 4200 loss 1.23", "slurmstepd: error: *** JOB 4242 ON node12 CANCELLED AT 2026-11-28T23:57:10 DUE TO TIME LIMIT ***"}, Timeout},
		{"SIGKILL by torchrun after a long silence", []string{"[rank0]: 2026-11-28 20:00:01 step 4200", "2026-11-28 23:57:10 torch.distributed.elastic.multiprocessing.api: failed (exitcode: -9) local_rank: 0 (pid: 42)"}, Hang},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := feed(tt.lines...)
			if v := c.FromLog(); v.Class != tt.want {
				t.Errorf("from the log: %s %+v, want %s", v.Class, v.Evidence, tt.want)
			}
			if v := c.Verdict(Exit{Code: 1, OOMKillDelta: -1}); v.Class != tt.want {
				t.Errorf("exit 1: %s %+v, want %s", v.Class, v.Evidence, tt.want)
			}
		})
	}
}

// TestTHCudaCheckCaught checks THCudaCheck's FAIL line on its own: __THCudaCheck prints
// it before a throw the caller may catch (PyTorch 0.4's THCGeneral.cpp probes print it
// and train on), so a log alone that shows no throw after it is no crash; an attempt
// that failed with nothing else in its log is put down to it.
func TestTHCudaCheckCaught(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  Class // for a failed attempt
	}{
		{"invalid argument, caught", []string{"THCudaCheck FAIL file=/pytorch/aten/src/THC/THCGeneral.cpp line=405 error=11 : invalid argument", "Epoch 1 [100/5000] loss 0.93"}, CUDAError},
		{"out of memory, log cut before the throw", []string{"THCudaCheck FAIL file=/pytorch/torch/lib/THC/generic/THCStorage.cu line=58 error=2 : out of memory"}, CudaOOM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := feed(tt.lines...)
			if v := c.FromLog(); v.Class != None {
				t.Errorf("from the log: %s %+v, want none", v.Class, v.Evidence)
			}
			if v := c.Verdict(Exit{Code: 0, OOMKillDelta: -1}); v.Class != None {
				t.Errorf("exit 0: %s, want none", v.Class)
			}
			if v := c.Verdict(Exit{Code: 1, OOMKillDelta: -1}); v.Class != tt.want {
				t.Errorf("exit 1: %s %+v, want %s", v.Class, v.Evidence, tt.want)
			}
		})
	}
}

// TestBarrierWaiting checks torch's store-based barrier log: a failed attempt whose log
// stops while a rank is still waiting for its peers ended stuck there (hang); once the
// barrier completes, or anything else is printed after it, the wait says nothing.
func TestBarrierWaiting(t *testing.T) {
	wait := "I0510 07:28:04.417845 139863945226048 distributed_c10d.py:337] Waiting in store based barrier to initialize process group for rank: 2, key: store_based_barrier_key:2 (world_size=8, worker_count=7, timeout=0:30:00)"
	tests := []struct {
		name  string
		lines []string
		want  Class // for an attempt that exited 1
	}{
		{"the log stops while waiting", []string{wait, wait}, Hang},
		{"torch 2.x wording, rank-prefixed", []string{"[rank3]:[I1128 23:57:10.1 distributed_c10d.py:445] Waiting in store based barrier to initialize process group for rank: 3, key: store_based_barrier_key:1 (world_size=4, num_workers_joined=3, timeout=0:30:00 error=None)"}, Hang},
		{"the barrier completed, then the job failed silently", []string{wait, "INFO:torch.distributed.distributed_c10d:Rank 2: Completed store-based barrier for key:store_based_barrier_key:2 with 8 nodes."}, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := feed(tt.lines...)
			if v := c.Verdict(Exit{Code: 1, OOMKillDelta: -1}); v.Class != tt.want {
				t.Errorf("exit 1: %s %+v, want %s", v.Class, v.Evidence, tt.want)
			}
			if v := c.Verdict(Exit{Code: 0, OOMKillDelta: -1}); v.Class != None {
				t.Errorf("exit 0: %s, want none", v.Class)
			}
			if v := c.FromLog(); v.Class != None {
				t.Errorf("from the log alone: %s %+v, want none (a log cannot say the job failed)", v.Class, v.Evidence)
			}
		})
	}
}

// TestTracebackStructure checks the parse of tracebacks: the chain's root cause, rank
// prefixes and quoting, interleaved ranks, ignored exceptions, and that a log holding a
// traceback is never none.
func TestTracebackStructure(t *testing.T) {
	tests := []struct {
		name     string
		lines    []string
		want     Class
		evidence string // in the first evidence line
	}{
		{
			name: "raise from: the cause printed first stands",
			lines: []string{"Traceback (most recent call last):", "  File \"ckpt.py\", line 8, in save", "OSError: [Errno 28] No space left on device",
				"", "The above exception was the direct cause of the following exception:", "", "Traceback (most recent call last):", "  File \"train.py\", line 90, in <module>", "RuntimeError: checkpoint failed"},
			want: DiskFull, evidence: "No space left",
		},
		{
			name:  "an unknown exception is unknown with itself as evidence",
			lines: []string{"[rank3]: Traceback (most recent call last):", "[rank3]:   File \"train.py\", line 9, in <module>", "[rank3]:     x = d['k']", "[rank3]: KeyError: 'k'"},
			want:  Unknown, evidence: "KeyError: 'k'",
		},
		{
			name:  "quoted in an issue",
			lines: []string{"> Traceback (most recent call last):", ">   File \"train.py\", line 9, in <module>", "> AssertionError"},
			want:  Unknown, evidence: "AssertionError",
		},
		{
			name: "another rank's line inside a traceback is not its end",
			lines: []string{"[rank1]: Traceback (most recent call last):", "[rank1]:   File \"train.py\", line 9, in <module>", "[rank0]: Epoch 1:  45%|████▍     | 445/1000", "[rank1]:     loss.backward()",
				"[rank1]: RecursionError: maximum recursion depth exceeded"},
			want: Unknown, evidence: "RecursionError",
		},
		{
			name:  "unknown type outside the tables, frames unindented as pasted",
			lines: []string{"Traceback (most recent call last):", "File \"train.py\", line 9, in <module>", "safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge"},
			want:  Unknown, evidence: "SafetensorError",
		},
		{
			name: "Rich's boxed traceback",
			lines: []string{"╭───────────────────── Traceback (most recent call last) ─────────────────────╮", "│ /home/u/env/lib/python3.8/site-packages/kraken/ketos/recognition.py:281 in train │", "│                                                                              │",
				"╰──────────────────────────────────────────────────────────────────────────────╯", "ZeroDivisionError: float division by zero"},
			want: Unknown, evidence: "ZeroDivisionError",
		},
		{
			name:  "the message beats the type",
			lines: []string{"Traceback (most recent call last):", "  File \"train.py\", line 9, in <module>", "RuntimeError: CUDA error: an illegal memory access was encountered"},
			want:  CUDAError, evidence: "illegal memory access",
		},
		{
			name:  "IPython's header names the type before frames that are cut off",
			lines: []string{"---------------------------------------------------------------------------", "FloatingPointError                        Traceback (most recent call last)", "Cell In[3], line 1", "----> 1 step(state)"},
			want:  NaNDivergence, evidence: "FloatingPointError",
		},
		{
			name:  "IPython's header glued to a long type name",
			lines: []string{"NanLossDuringTrainingErrorTraceback (most recent call last)", "<ipython-input-4-2f65d1e5e9c4> in <module>()"},
			want:  NaNDivergence, evidence: "NanLossDuringTrainingError",
		},
		{
			name:  "Ray's wrapper names the wrapped type",
			lines: []string{"Traceback (most recent call last):", "  File \"train.py\", line 9, in <module>", "ray.exceptions.RayTaskError(PermissionError): ray::train_fn() (pid=306, ip=10.0.0.1)"},
			want:  Permission, evidence: "RayTaskError(PermissionError)",
		},
		{
			name:  "a traceback flattened onto one line",
			lines: []string{"Traceback (most recent call last): File \"main.py\", line 184, in <module> save() File \"io.py\", line 44, in save pickle.dump(x, f)OSError: [Errno 28] No space left on device"},
			want:  DiskFull, evidence: "No space left",
		},
		{
			name:  "torchelastic's error file quotes the exception as a JSON message",
			lines: []string{"ERROR:torch.distributed.elastic.multiprocessing.errors.error_handler:{", "  \"message\": {", "    \"message\": \"RendezvousTimeoutError: \","},
			want:  Timeout, evidence: "RendezvousTimeoutError",
		},
		{
			name:  "torchelastic's error file: the last exception inside the escaped py_callstack",
			lines: []string{"ERROR:torch.distributed.elastic.multiprocessing.errors.error_handler:{", "  \"message\": {", "    \"message\": \"OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\",", "    \"extraInfo\": {", `      "py_callstack": "Traceback (most recent call last):\n  File \"/opt/train.py\", line 9, in <module>\n    main()\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",`, `      "timestamp": "1700000000"`},
			want:  CudaOOM, evidence: "torch.OutOfMemoryError",
		},
		{
			name:  "torchelastic's py_callstack naming only the type",
			lines: []string{`      "py_callstack": "Traceback (most recent call last):\n  File \"/opt/run.py\", line 719, in main\n    run(args)\ntorch.distributed.elastic.rendezvous.api.RendezvousTimeoutError: \n",`},
			want:  Timeout, evidence: "RendezvousTimeoutError",
		},
		{
			// CPython prints a traceback flush left; pasted into a code block or a
			// docstring it keeps one indent throughout, frames two deeper.
			name:  "indented as a whole: the exception is level with the header",
			lines: []string{"    Traceback (most recent call last):", "      File \"<stdin>\", line 1, in <module>", "    ModuleNotFoundError: No module named 'torch'"},
			want:  ImportError, evidence: "No module named",
		},
		{
			name:  "VS Code's exception widget: the type it names decides",
			lines: []string{"Exception has occurred: ParserError", "while parsing a block mapping", "  in \"configs/base.yaml\", line 1, column 1", "  File \"/home/u/train.py\", line 12, in load_cfg", "    cfg = yaml.safe_load(f)"},
			want:  ConfigError, evidence: "ParserError",
		},
		{
			name:  "VS Code's exception widget on a type outside the tables",
			lines: []string{"Exception has occurred: KeyError", "'lr'", "  File \"/home/u/train.py\", line 40, in main", "    lr = cfg['lr']"},
			want:  Unknown, evidence: "KeyError",
		},
		{
			name:  "omegaconf's interpolation to a missing key",
			lines: []string{"Traceback (most recent call last):", "  File \"train.py\", line 9, in <module>", "omegaconf.errors.InterpolationKeyError: Interpolation key 'data.root' not found"},
			want:  ConfigError, evidence: "InterpolationKeyError",
		},
		{
			name:  "torchrun's summary does not hide the child's exception",
			lines: []string{"Traceback (most recent call last):", "  File \"train.py\", line 9, in <module>", "ZeroDivisionError: division by zero", "Traceback (most recent call last):", "  File \"/usr/bin/torchrun\", line 8, in <module>", "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: "},
			want:  Unknown, evidence: "ZeroDivisionError",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := feed(tt.lines...).FromLog()
			if v.Class != tt.want || len(v.Evidence) == 0 || !strings.Contains(v.Evidence[0].Text, tt.evidence) {
				t.Errorf("%s %+v, want %s with %q first", v.Class, v.Evidence, tt.want, tt.evidence)
			}
		})
	}

	// Tracebacks Python says it ignored, and a handled one in a healthy run's middle
	// that is printed as a warning, leave the log none.
	ignored := feed("{'loss': 0.5}", "Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ at 0x7f>", "Traceback (most recent call last):",
		"  File \"/usr/lib/python3/dist-packages/torch/utils/data/dataloader.py\", line 1478, in __del__", "AttributeError: '_MultiProcessingDataLoaderIter' object has no attribute '_shutdown'", "{'loss': 0.4}")
	if v := ignored.FromLog(); v.Class != None {
		t.Errorf("an ignored exception: %s %+v, want none", v.Class, v.Evidence)
	}
}

// TestNeverNoneAfterTraceback: whatever exception name a traceback ends with, the log
// is not none, and a failed exit is not blamed on the tail of the log.
func TestNeverNoneAfterTraceback(t *testing.T) {
	names := []string{"KeyError: 'x'", "Foo", "my_pkg.sub.BadThing: oops", "ValueError", "torch._dynamo.exc.Unsupported: call_function", "E: nothing"}
	for _, n := range names {
		c := feed("{'loss': 0.5}", "Traceback (most recent call last):", "  File \"t.py\", line 1, in <module>", n)
		if v := c.FromLog(); v.Class == None {
			t.Errorf("traceback ending %q: none", n)
		}
		if v := c.Verdict(Exit{Signal: syscall.SIGTERM}); v.Class == None {
			t.Errorf("traceback ending %q, SIGTERM: none", n)
		}
	}
}

// TestShapesKeepHealthyLinesNone: lines that hold a table's words without its shape.
func TestShapesKeepHealthyLinesNone(t *testing.T) {
	healthy := []string{"{'loss': 0.5}"}
	for i := 0; i < ringLines; i++ {
		healthy = append(healthy, "step 10 loss 0.5")
	}
	tests := []struct {
		name  string
		lines []string
	}{
		{"best loss starts at inf", []string{"best_loss: inf, best_acc: 0", "Epoch 1: val_loss improved from inf to 0.69315, saving model to ckpt.h5", "loss_scale: inf"}},
		{"a signal's text inside a sentence", []string{"INFO - worker Killed by the autoscaler is replaced", "the Segmentation fault handler is installed"}},
		{"Evicted without a pod status", []string{"cache: Evicted 3 entries"}},
		{"an exception logged mid-run, then training goes on", append([]string{"KeyError: 'caption' in sample 17, skipped"}, healthy...)},
		{"an errno name inside a word", []string{"loaded ENOENTRY table"}},
		{"NCCL's generic text without NCCL", []string{"parse, invalid argument ignored"}},
		{"NCCL's channel arrows and a trace of success", []string{"node1:4242:4300 [1] NCCL INFO Channel 00/02 : 1[1] -> 2[2] via P2P/IPC", "node1:4242:4300 [1] NCCL INFO Connected all rings -> 3 peers", "node1:4242:4300 [0] NCCL INFO init.cc:1350 -> 0"}},
		{"a JSON log's message that starts like an exception", append([]string{`{"level": "info",`, `"message": "Error: shard 3 unreachable, retrying",`}, healthy[:3]...)},
		{"an NTSTATUS number inside a longer number", []string{"step 13221225477 loss 0.5", "tokens 3221225477000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := feed(tt.lines...).FromLog(); v.Class != None {
				t.Errorf("%s %+v, want none", v.Class, v.Evidence)
			}
		})
	}
}
