package classify

// Messages of the programs around a training job, each from its emitter's source: the
// kernel, the NVIDIA driver, SLURM, Kubernetes, CPython, glibc, PyTorch and the
// training libraries. The origin of each rule names the source and version.
const (
	srcKernelOOM  = "Linux 6.1 mm/oom_kill.c, mm/memcontrol.c (and 4.x's \"Kill process\")"
	srcXid        = "NVIDIA driver NVRM Xid messages (Xid Errors, r535-r555)"
	srcSlurm      = "SLURM 21.08-23.11 slurmstepd (task/cgroup oom, step time limit)"
	srcKubernetes = "Kubernetes 1.28 kubelet (container status OOMKilled, pkg/kubelet/eviction)"
	srcFaulthand  = "CPython 3.12 Modules/faulthandler.c"
	srcGlibcAbort = "glibc 2.36 malloc/malloc.c and debug/stack_chk_fail.c"
	srcLibstdcxx  = "GCC libstdc++ verbose terminate handler (vterminate.cc)"
	srcTorch      = "PyTorch 1.13.1 (Debian python3-torch 1.13.1+dfsg-4) and 2.4: c10 allocators, DataLoader.cpp, dataloader.py, autograd anomaly mode, clip_grad.py, inline_container.cc"
	srcC10d       = "PyTorch 2.4 torch/csrc/distributed/c10d (ProcessGroupNCCL.cpp, TCPStore, Utils.hpp)"
	srcElastic    = "PyTorch torch/distributed/elastic (multiprocessing/api.py, errors/__init__.py; 1.13.1 and 2.4)"
	srcDeepSpeed  = "DeepSpeed 0.14 deepspeed/runtime/fp16/loss_scaler.py"
	srcMegatron   = "Megatron-LM core 0.8 distributed/param_and_grad_buffer.py, training.py"
	srcLightning  = "Lightning 2.2 callbacks/early_stopping.py"
	srcHF         = "transformers 4.40 utils/hub.py, modeling_utils.py; huggingface_hub 0.23"
	srcHFFiles    = "transformers 2.x-4.21 file_utils.py cached_path (EnvironmentError(\"file {} not found\")), 4.x trainer.py _load_from_checkpoint (ValueError(f\"Can't find a valid checkpoint at {resume_from_checkpoint}\"))"
	srcBnB        = "bitsandbytes 0.41 cuda_setup/main.py"
	srcDETR       = "facebookresearch/detr engine.py (copied by DeiT, MAE, DINO and their forks)"
	srcXLA        = "XLA/TSL absl::StatusCode names (tsl/protobuf/error_codes.proto); TF1 errors"
	srcZsh        = "zsh 5.9 Src/signals.c job reports (lower-case signal names)"
	srcSubprocess = "CPython 3.12 Lib/subprocess.py CalledProcessError.__str__ (\"died with <Signals.SIGKILL: 9>.\")"
	srcDSLauncher = "DeepSpeed 0.14 deepspeed/launcher/launch.py (\"exits with return code = -9\")"
	srcHorovod    = "Horovod 0.28 horovod/common/stall_inspector.cc"
	srcLaunchers  = "torchrun elastic api.py (\"failed (exitcode: N)\"), DeepSpeed launch.py, CPython subprocess.py, SLURM srun, GNU make"
	srcURLlib3    = "urllib3 2.x connectionpool.py (MaxRetryError), glibc 2.36 gai_strerror texts"
	srcCUDAAssert = "CUDA device-side assert (__assertfail's \"block: [x,y,z], thread: [x,y,z] Assertion `cond` failed.\")"
	srcShm        = "PyTorch aten/src/ATen/MapAllocator.cpp and libshm (shared memory under /dev/shm, named /torch_<pid>_...)"
	srcTFNumerics = "TensorFlow 1.4-2.15 core/kernels/check_numerics_op.cc (\"<message> : Tensor had NaN values\"), python/framework/errors_impl.py OpError.__str__ (\"Caused by op %r, defined at:\", 1.14+: \"Original stack trace for %r:\")"
	srcTFNanHook  = "TensorFlow 1.x-2.15 python/training/basic_session_run_hooks.py NanTensorHook (\"Model diverged with loss = NaN.\", then NanLossDuringTrainingError)"
	srcJAXNans    = "JAX 0.4 jax/_src/dispatch.py check_special under jax_debug_nans/jax_debug_infs (FloatingPointError(f\"invalid value ({ty}) encountered in {name}\"))"
	srcOpenMPI    = "Open MPI opal/util/stacktrace.c opal_show_stackframe (v1.2-v5.0: \"*** Process received signal ***\", \"Signal: %s (%d)\", \"Signal code: %s (%d)\", \"Failing at address: %p\")"
	srcStore      = "PyTorch 1.8-2.4 torch/csrc/distributed/c10d TCPStore.cpp (\"Timed out after N seconds waiting for clients. K/M clients joined.\", \"wait timeout after Nms, keys: ...\"), Utils.hpp (\"Socket Timeout\"), distributed_c10d.py _store_based_barrier; ProcessGroupNCCL.cpp broadcastUniqueNCCLID"
	srcBotocore   = "botocore 1.x botocore/exceptions.py (ReadTimeoutError, ConnectTimeoutError: \"Read timeout on endpoint URL: ...\")"
	srcTSLErrno   = "TSL/TensorFlow tsl/platform/errors.cc ErrnoToCode (ENOSPC, EDQUOT, EMFILE, ENFILE become RESOURCE_EXHAUSTED; the errno text stays in the message)"
	srcNumpy      = "numpy 1.9-2.1 multiarray/convert.c npy_fallocate (ndarray.tofile, np.save: \"Not enough free space to write %d bytes\", raised only on ENOSPC)"
	srcTempfile   = "CPython 3.x Lib/tempfile.py _get_default_tempdir (\"No usable temporary directory found in [...]\")"
	srcDSConfig   = "DeepSpeed 0.3-0.14 deepspeed/runtime/config.py DeepSpeedConfig._batch_assertion"
	srcBarrier    = "PyTorch 1.8-2.4 torch/distributed/distributed_c10d.py _store_based_barrier (logs \"Waiting in store based barrier to initialize process group for rank: ...\" every 10 s while fewer than world_size ranks joined; then \"Completed store-based barrier\" or a \"Timed out initializing process group\" raise)"
	srcGdb        = "GDB 8-14 gdb/infrun.c print_signal_received_reason (\"Program received signal %s, %s.\", \"Thread N \\\"name\\\" received signal ...\"; descriptions from include/gdb/signals.def), gdb/source.c print_source_lines_base (\"%d\\t%s\" then print_sys_errmsg: \"<line>\\t<file>: No such file or directory.\")"
	srcGlog       = "glog 0.3-0.7 logging.h CHECK_EQ/CHECK_OP (\"Check failed: a == b (x vs. y) \"), logging.cc (\"*** Check failure stack trace: ***\"); Caffe include/caffe/util/device_alternate.hpp CUDA_CHECK, CUBLAS_CHECK, CURAND_CHECK and cudnn.hpp CUDNN_CHECK (CHECK_EQ against cudaSuccess, CUBLAS_STATUS_SUCCESS, CURAND_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS)"
	srcMetrics    = "loss metric formats: Keras Progbar, HF Trainer log dicts, Lightning/tqdm postfix, mmengine logger"
)

var emitterRules = []rule{
	// Kernel OOM killer and memory cgroups.
	{name: "kernel-oom-kill", class: HostOOM, tier: root, origin: srcKernelOOM, literals: []string{"Out of memory: Killed process", "Out of memory: Kill process", "invoked oom-killer", "oom-kill:constraint=", "Memory cgroup out of memory", "oom_reaper: reaped process"}},
	// NVIDIA driver.
	{name: "nvidia-xid", class: CUDAError, tier: root, origin: srcXid, literals: []string{"NVRM: Xid (", "GPU has fallen off the bus", "NVRM: GPU at PCI"}},
	// SLURM.
	{name: "slurm-oom", class: HostOOM, tier: root, origin: srcSlurm, literals: []string{"oom-kill event", "oom_kill event", "exceeded memory limit", "Exceeded job memory limit", "Exceeded step memory limit"}},
	{name: "slurm-time-limit", class: Timeout, tier: root, origin: srcSlurm, mark: markKill, literals: []string{"DUE TO TIME LIMIT"}},
	{name: "slurm-cancelled", class: Unknown, tier: hint, origin: srcSlurm, mark: markKill, literals: []string{"CANCELLED AT"}, unless: []string{"DUE TO TIME LIMIT"}},
	// Kubernetes.
	{name: "k8s-oomkilled", class: HostOOM, tier: root, origin: srcKubernetes, literals: []string{"OOMKilled", "The node was low on resource: memory"}},
	{name: "k8s-evicted-disk", class: DiskFull, tier: root, origin: srcKubernetes, literals: []string{"The node was low on resource: ephemeral-storage", "ephemeral local storage usage exceeds"}},
	{name: "k8s-evicted", class: HostOOM, tier: hint, origin: srcKubernetes, shape: shapeWord, needs: "Reason", literals: []string{"Evicted"}},

	// CPython's fault handler. "Timeout (0:30:00)!" heads the dump that
	// faulthandler.dump_traceback_later writes when the job did not finish in time.
	{name: "faulthandler-timeout", class: Hang, tier: root, origin: srcFaulthand, shape: shapeFaultTimeout, literals: []string{"Timeout ("}},
	{name: "faulthandler-fatal", class: Segfault, tier: hint, origin: srcFaulthand, mark: markFatal, literals: []string{"Fatal Python error: Segmentation fault", "Fatal Python error: Bus error", "Fatal Python error: Floating-point exception", "Fatal Python error: Illegal instruction"}},
	{name: "faulthandler-abort", class: Segfault, tier: hint, origin: srcFaulthand, mark: markFatalAbort, literals: []string{"Fatal Python error: Aborted"}},
	{name: "faulthandler-thread", class: "", origin: srcFaulthand, mark: markThread, literals: []string{"(most recent call first)"}},
	// Open MPI's handler for the signals of its opal_signal list (6,7,8,11 by
	// default): the si_code texts it prints for SIGSEGV and SIGBUS, and the faulting
	// address it prints for SIGILL, SIGFPE, SIGSEGV and SIGBUS only.
	{name: "openmpi-stackframe", class: Segfault, tier: hint, origin: srcOpenMPI, literals: []string{"*** Process received signal ***", "Signal code: Address not mapped (", "Signal code: Invalid permissions (", "Signal code: Invalid address alignment (", "Signal code: Non-existent physical address (", "Failing at address: "}},
	// glibc's own aborts.
	{name: "glibc-abort", class: Segfault, tier: root, origin: srcGlibcAbort, literals: []string{"double free or corruption", "free(): invalid pointer", "malloc(): corrupted", "malloc(): invalid size", "corrupted size vs. prev_size", "munmap_chunk(): invalid pointer", "*** stack smashing detected ***", "free(): invalid next size", "malloc_consolidate(): invalid chunk size", "corrupted double-linked list"}},
	// libstdc++: an uncaught C++ exception; its what() line follows.
	{name: "cpp-terminate", class: Segfault, tier: hint, origin: srcLibstdcxx, mark: markTerminate, literals: []string{"terminate called after throwing an instance of", "terminate called without an active exception", "terminate called recursively"}},
	{name: "cpp-bad-alloc", class: HostOOM, tier: root, origin: srcLibstdcxx, literals: []string{"std::bad_alloc"}},

	// PyTorch: allocators.
	{name: "torch-cuda-oom", class: CudaOOM, tier: root, origin: srcTorch, literals: []string{"CUDA out of memory", "HIP out of memory", "MPS backend out of memory", "XPU out of memory"}},
	{name: "torch-cpu-alloc", class: HostOOM, tier: root, origin: srcTorch, literals: []string{"DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory"}},
	{name: "torch-stream-writer", class: DiskFull, tier: root, origin: srcTorch, literals: []string{"PytorchStreamWriter failed writing file", "file write failed"}},
	// The zip writer's check after a short write (inline_container.cc: "unexpected pos").
	{name: "torch-stream-pos", class: DiskFull, tier: consequence, origin: srcTorch, needs: "inline_container", literals: []string{"unexpected pos "}},
	{name: "torch-cuda-cascade", class: CUDAError, tier: consequence, origin: srcTorch, literals: []string{"CUDA kernel errors might be asynchronously reported", "(see previous error)", "CUDA error:", "CUDA driver error:", "HIP error:"}},
	{name: "torch-no-gpu", class: CUDAError, tier: root, origin: srcTorch, literals: []string{"No CUDA GPUs are available", "Found no NVIDIA driver on your system", "CUDA call failed lazily at initialization"}},
	// PyTorch: the DataLoader (torch/csrc/DataLoader.cpp, utils/data/dataloader.py).
	{name: "dataloader-signal-handler", class: Dataloader, tier: root, origin: srcTorch, literals: []string{"Unexpected bus error encountered in worker", "Unexpected segmentation fault encountered in worker", "Unexpected floating-point exception encountered in worker", "insufficient shared memory (shm)"}},
	{name: "dataloader-exited", class: Dataloader, tier: consequence, origin: srcTorch, literals: []string{"DataLoader worker (pid(s)", "exited unexpectedly", "in DataLoader worker process", "Pin memory thread exited unexpectedly"}, unless: []string{"killed by signal: Killed"}},
	// DataLoader.cpp's report of a worker killed by SIGBUS goes on to name shared
	// memory; a wrapped line can leave the signal's text on the line before.
	{name: "dataloader-shm-bus", class: Dataloader, tier: root, origin: srcTorch, literals: []string{"It is possible that dataloader's workers are out of shared memory"}},
	{name: "dataloader-timeout", class: Dataloader, tier: root, origin: srcTorch, literals: []string{"DataLoader timed out after"}},
	{name: "dataloader-fd", class: Dataloader, tier: root, origin: srcTorch, literals: []string{"received 0 items of ancdata"}},
	// PyTorch: NaN checks.
	{name: "torch-anomaly-nan", class: NaNDivergence, tier: root, origin: srcTorch, literals: []string{"returned nan values in its", "returned inf values in its", "is non-finite, so it cannot be clipped"}},
	// torch.distributed.
	{name: "c10d-watchdog", class: NCCL, tier: consequence, origin: srcC10d, literals: []string{"Watchdog caught collective operation timeout", "Some NCCL operations have failed or timed out", "NCCL communicator was aborted", "collective operation timeout", "WorkNCCL::checkTimeout", "Exception raised from ncclCommWatchdog", "Exception raised from checkTimeout", "NCCL error", "Received a dump signal due to a collective timeout", "ProcessGroupNCCL::WorkNCCL", "last completed NCCL work"}, unless: []string{"Epoch", "it/s"}},
	{name: "c10d-stuck", class: Hang, tier: consequence, origin: srcC10d, literals: []string{"watchdog got stuck for", "Heartbeat monitor timed out", "ProcessGroupNCCL watchdog hang", "hang blocking the watchdog", "watchdog thread is stuck", "monitoring thread is stuck"}},
	{name: "c10d-store", class: NCCL, tier: consequence, origin: srcC10d, literals: []string{"Socket Timeout", "timed out waiting for clients", "Timed out initializing process group", "c10d::Store", "ProcessGroupGloo", "gloo/transport/tcp", "Connection closed by peer", "Connection reset by peer", "failed to recv, got 0 bytes"}},
	// NCCL passing a failed call's code up its stack: NCCL is failing even when no
	// exception made it to the log.
	{name: "nccl-return-trace", class: NCCL, tier: consequence, origin: srcNCCLTrace, shape: shapeNCCLReturn, needs: "NCCL", literals: []string{" -> 1", " -> 2", " -> 3", " -> 4", " -> 5", " -> 6"}},
	{name: "nccl-ib-completion", class: NCCL, tier: root, origin: srcNCCLIB, needs: "NET/IB", literals: []string{"Got completion from peer"}},
	// The rendezvous store timed out: the ranks it waited for never came (a node that
	// did not start, a wrong MASTER_ADDR), which is the job waiting on a service. Only
	// while NCCL sets up its communicator is the store NCCL's (ProcessGroupNCCL sends
	// the ncclUniqueId through it): such a line names NCCL and is c10d-store's, and one
	// seen elsewhere in the log turns this rule's hits to NCCL (Classifier.strongest).
	{name: "c10d-store-timeout", class: Timeout, tier: root, origin: srcStore, literals: []string{"Socket Timeout", "seconds waiting for clients", "seconds waiting for workers", "wait timeout after ", "timed out waiting for clients", "Timed out initializing process group"}, unless: []string{"NCCL", "nccl"}},
	// glog's CHECK_EQ under Caffe's CUDA_CHECK, CUBLAS_CHECK, CURAND_CHECK and
	// CUDNN_CHECK: "Check failed: status == CUBLAS_STATUS_SUCCESS (14 vs. 0) " and,
	// in later Caffe, the status's name or cudaGetErrorString's text after it (which
	// the status tables then also read). A check against a library's success value
	// failed in that library; its allocation-failure value (cudaErrorMemoryAllocation
	// 2, CUBLAS_STATUS_ALLOC_FAILED 3, CUDNN_STATUS_ALLOC_FAILED 2,
	// CURAND_STATUS_ALLOCATION_FAILED 102) is memory.
	{name: "glog-check-cuda", class: CUDAError, tier: root, origin: srcGlog, needs: "Check failed", literals: []string{"== cudaSuccess (", "== CUBLAS_STATUS_SUCCESS (", "== CUDNN_STATUS_SUCCESS (", "== CURAND_STATUS_SUCCESS ("}, unless: []string{"== cudaSuccess (2 vs. 0)", "== CUBLAS_STATUS_SUCCESS (3 vs. 0)", "== CUDNN_STATUS_SUCCESS (2 vs. 0)", "== CURAND_STATUS_SUCCESS (102 vs. 0)"}},
	{name: "glog-check-cuda-alloc", class: CudaOOM, tier: root, origin: srcGlog, needs: "Check failed", literals: []string{"== cudaSuccess (2 vs. 0)", "== CUBLAS_STATUS_SUCCESS (3 vs. 0)", "== CUDNN_STATUS_SUCCESS (2 vs. 0)", "== CURAND_STATUS_SUCCESS (102 vs. 0)"}},
	// Any other failed CHECK is a crash (glog aborts after printing it) that names
	// no class by itself.
	{name: "glog-check", class: Unknown, tier: hint, origin: srcGlog, literals: []string{"Check failed: ", "*** Check failure stack trace: ***"}},
	// GDB stopping the job on a fatal signal: the signal is the cause, whatever gdb
	// prints after it (its source listing of a file it cannot open reads as ENOENT;
	// gdbSourceLine). "Program received signal" and, with threads, "Thread 2
	// \"python\" received signal" share the tail. An abort follows a cause of its own.
	{name: "gdb-signal", class: Segfault, tier: root, origin: srcGdb, literals: []string{"received signal SIGSEGV, Segmentation fault", "received signal SIGBUS, Bus error", "received signal SIGILL, Illegal instruction", "received signal SIGFPE, Arithmetic exception"}},
	{name: "gdb-abort", class: Segfault, tier: consequence, origin: srcGdb, literals: []string{"received signal SIGABRT, Aborted"}},
	// A rank still waiting at the barrier: a hang only where the log stops there
	// (markBarrierWait; Verdict).
	{name: "c10d-barrier-waiting", class: Hang, tier: consequence, origin: srcBarrier, mark: markBarrierWait, literals: []string{"Waiting in store based barrier to initialize process group"}},
	{name: "c10d-nccl-setup", origin: srcStore, mark: markNCCLSetup, literals: []string{"ncclUniqueId", "broadcastUniqueNCCLID", "NCCL communicator and retrieving"}},
	// A socket to the store that never connected: the job waited on a service (its
	// master address, a firewall), not on a collective.
	{name: "c10d-socket-timeout", class: Timeout, tier: root, origin: srcC10d, literals: []string{"The client socket has timed out after", "The server socket has timed out"}},
	// Horovod's stall inspector: some ranks never submitted the tensor the others wait on.
	{name: "horovod-stall", class: Hang, tier: consequence, origin: srcHorovod, literals: []string{"were submitted to be reduced, gathered or broadcasted by subset of ranks", "Stalled ranks:"}},
	// torchrun's summary of a failed rank: a SIGKILL nobody asked for is the root of
	// the collective errors the other ranks print after it.
	{name: "elastic-sigkill", class: HostOOM, tier: root, origin: srcElastic, mark: markKill, literals: []string{"Signal 9 (SIGKILL) received by PID", "(exitcode: -9)", "exitcode  : -9"}},
	{name: "elastic-native", class: Segfault, tier: hint, origin: srcElastic, literals: []string{"Signal 11 (SIGSEGV) received by PID", "Signal 6 (SIGABRT) received by PID", "Signal 7 (SIGBUS) received by PID", "(exitcode: -11)", "exitcode  : -11", "(exitcode: -6)", "exitcode  : -6", "(exitcode: -7)", "exitcode  : -7"}},
	{name: "elastic-sigterm", class: Unknown, tier: hint, origin: srcElastic, mark: markKill, literals: []string{"Signal 15 (SIGTERM) received by PID", "exitcode  : -15", "(exitcode: -15)"}},

	// zsh reports a job's death in its own words.
	{name: "zsh-killed", class: HostOOM, tier: hint, origin: srcZsh, mark: markKill, literals: []string{"zsh: killed", " killed     "}},
	{name: "zsh-native", class: Segfault, tier: hint, origin: srcZsh, literals: []string{"zsh: segmentation fault", "zsh: bus error", "zsh: abort", "zsh: illegal hardware instruction", "zsh: floating point exception"}},
	// Launchers that run the job as a child (accelerate, deepspeed, subprocess).
	{name: "child-sigkill", class: HostOOM, tier: root, origin: srcSubprocess, mark: markKill, literals: []string{"died with <Signals.SIGKILL: 9>"}},
	{name: "child-native", class: Segfault, tier: hint, origin: srcSubprocess, literals: []string{"died with <Signals.SIGSEGV: 11>", "died with <Signals.SIGABRT: 6>", "died with <Signals.SIGBUS: 7>"}},
	{name: "deepspeed-launcher-sigkill", class: HostOOM, tier: root, origin: srcDSLauncher, mark: markKill, literals: []string{"exits with return code = -9"}},
	{name: "deepspeed-launcher-native", class: Segfault, tier: hint, origin: srcDSLauncher, literals: []string{"exits with return code = -11", "exits with return code = -6", "exits with return code = -7"}},

	// A launcher saying its child failed: a crash, whose cause is in the child's output.
	{name: "launcher-failed", class: Unknown, tier: hint, origin: srcLaunchers, literals: []string{"multiprocessing.api:failed (exitcode:", "exits with return code = ", "returned non-zero exit status", "Exited with exit code", "make: *** ["}},
	// Network errors on the way to a hub or a server: the job waited on a service.
	{name: "network-unreachable", class: Timeout, tier: root, origin: srcURLlib3, literals: []string{"Max retries exceeded with url", "Temporary failure in name resolution", "Name or service not known", "[Errno 101] Network is unreachable", "[Errno 113] No route to host"}, unless: []string{"NCCL", "TCPStore", "DistNetworkError", "c10d"}},
	// A kernel's own assert, printed before the runtime's "device-side assert triggered".
	{name: "cuda-device-assert", class: CUDAError, tier: root, origin: srcCUDAAssert, needs: "block: [", literals: []string{"Assertion `"}},
	// Shared memory (/dev/shm) that ran out under the DataLoader's tensors.
	{name: "torch-shm", class: Dataloader, tier: root, origin: srcShm, needs: "unable to", literals: []string{"</torch_"}},
	// DeepSpeed's (and Megatron's copy of) dynamic loss scaler at its floor.
	{name: "loss-scale-floor", class: NaNDivergence, tier: root, origin: srcDeepSpeed, literals: []string{"Current loss scale already at minimum", "Minimum loss scale reached"}},
	{name: "megatron-nan", class: NaNDivergence, tier: root, origin: srcMegatron, literals: []string{"found NaN in local grad norm", "found NaN in local forward loss", "found Inf in local grad norm", "NaN detected in loss", "Unexpected result nan"}},
	{name: "lightning-not-finite", class: NaNDivergence, tier: root, origin: srcLightning, literals: []string{"is not finite. Previous best value was"}},
	{name: "detr-loss-nan", class: NaNDivergence, tier: root, origin: srcDETR, literals: []string{"is nan, stopping training", "is inf, stopping training"}},
	// TensorFlow's CheckNumerics op fails only on a NaN or Inf; the error names the op
	// that raised it, so its stack header is the NaN's too ("CheckNumerics_1" as well).
	{name: "tf-check-numerics", class: NaNDivergence, tier: root, origin: srcTFNumerics, literals: []string{"Tensor had NaN values", "Tensor had Inf values", "Tensor had Inf and NaN values", "Caused by op 'CheckNumerics", "Original stack trace for 'CheckNumerics"}},
	{name: "tf-nan-tensor-hook", class: NaNDivergence, tier: root, origin: srcTFNanHook, literals: []string{"Model diverged with loss = NaN"}},
	{name: "jax-debug-nans", class: NaNDivergence, tier: root, origin: srcJAXNans, literals: []string{"invalid value (nan) encountered in", "invalid value (inf) encountered in"}},
	{name: "loss-metric-nan", class: NaNDivergence, tier: root, origin: srcMetrics, shape: shapeLossValue, literals: []string{": nan", "=nan", ":nan", " nan", ": inf", "=inf", ":inf"}},

	// numpy reserves the file's space before it writes an array.
	{name: "numpy-fallocate", class: DiskFull, tier: root, origin: srcNumpy, literals: []string{"Not enough free space to write "}},
	// tempfile tries a file in every candidate directory ($TMPDIR, /tmp, /var/tmp,
	// /usr/tmp, the working directory) and raises this when every write failed. /tmp is
	// world-writable, so all of them failing is a full (or over-quota) disk far more
	// often than permissions; the errno it carries (ENOENT) is not the cause.
	{name: "tempfile-no-dir", class: DiskFull, tier: root, origin: srcTempfile, literals: []string{"No usable temporary directory found in"}},

	// Hugging Face.
	{name: "hf-missing", class: FileNotFound, tier: root, origin: srcHF, literals: []string{"is not a local folder and is not a valid model identifier", "does not appear to have a file named", "Can't load tokenizer for", "Can't load config for", "Can't load weights for", "Can't load image processor for", "Can't load feature extractor for", "Can't load processor for"}},
	{name: "hf-gated", class: Permission, tier: root, origin: srcHF, literals: []string{"You are trying to access a gated repo", "Access to model", "401 Client Error"}},
	{name: "hf-config", class: ConfigError, tier: root, origin: srcHF, literals: []string{"Unrecognized configuration class"}},
	// A local path that is not there: the cache lookup of old transformers, and the
	// Trainer's resume from a checkpoint folder that holds no weights.
	{name: "hf-file-missing", class: FileNotFound, tier: root, origin: srcHFFiles, needs: " not found", literals: []string{"OSError: file ", "EnvironmentError: file "}},
	{name: "hf-no-checkpoint", class: FileNotFound, tier: root, origin: srcHFFiles, literals: []string{"Can't find a valid checkpoint at"}},
	// DeepSpeed checks that the batch sizes of its config multiply out.
	{name: "deepspeed-batch", class: ConfigError, tier: root, origin: srcDSConfig, literals: []string{"Check batch related parameters"}},
	{name: "deepspeed-batch-positive", class: ConfigError, tier: root, origin: srcDSConfig, needs: "has to be greater than 0", literals: []string{"Train batch size: ", "Micro batch size per gpu: ", "Gradient accumulation steps: "}},
	// bitsandbytes: its native library did not load.
	{name: "bnb-setup", class: ImportError, tier: root, origin: srcBnB, literals: []string{"CUDA Setup failed despite GPU being available", "CUDA SETUP: Setup Failed!"}},

	// XLA, JAX and TensorFlow status codes.
	// TSL turns an errno into RESOURCE_EXHAUSTED too: then the errno's text, which the
	// message keeps, names the cause (a checkpoint write on a full disk).
	{name: "xla-resource-exhausted", class: CudaOOM, tier: root, origin: srcXLA, literals: []string{"RESOURCE_EXHAUSTED: ", "Resource exhausted: ", "OOM when allocating tensor"}, unless: []string{"No space left on device", "Disk quota exceeded", "Too many open files"}},
	{name: "xla-deadline", class: Timeout, tier: root, origin: srcXLA, literals: []string{"DEADLINE_EXCEEDED: "}},
	{name: "xla-permission", class: Permission, tier: root, origin: srcXLA, literals: []string{"PERMISSION_DENIED: ", "UNAUTHENTICATED: "}},
	{name: "xla-not-found", class: FileNotFound, tier: consequence, origin: srcXLA, literals: []string{"NOT_FOUND: "}},

	// AWS SDK calls (S3 datasets and checkpoints) that got no answer in time.
	{name: "botocore-timeout", class: Timeout, tier: root, origin: srcBotocore, literals: []string{"Read timeout on endpoint URL", "Connect timeout on endpoint URL"}},

	// Python's own messages inside exceptions.
	{name: "python-import", class: ImportError, tier: root, origin: srcCPython, literals: []string{"No module named", "cannot import name", "undefined symbol:", "cannot open shared object file", "DLL load failed"}},
	{name: "python-args", class: ConfigError, tier: root, origin: srcCPython, literals: []string{"error: unrecognized arguments", "error: the following arguments are required", "error: argument ", "got an unexpected keyword argument", "invalid choice:"}},
	{name: "python-timeout", class: Timeout, tier: root, origin: srcCPython, literals: []string{"socket.timeout", "timed out after", "Read timed out", "ReadTimeout", "ConnectTimeout", "ConnectTimeoutError", "Timeout exceeded"}, unless: []string{"Watchdog", "NCCL", "DistStoreError", "Socket Timeout", "TCPStore", "collective", "DataLoader timed out"}},
}
