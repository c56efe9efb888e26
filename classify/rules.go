package classify

// tier orders evidence: a root cause beats a consequence, which beats a hint.
type tier int

const (
	// hint: supports a class only when nothing stronger is there (a shell's
	// "Killed", a torchrun summary naming SIGSEGV or SIGABRT).
	hint tier = iota + 1
	// consequence: what other ranks or layers print after the real failure (NCCL
	// timeouts, "previous error" cascades).
	consequence
	// root: names a cause by itself.
	root
)

// rule is one kind of message. A line matches when it contains one of the literals
// (found by one pass of the compiled automaton) and, if unless is set, none of those.
type rule struct {
	name     string
	class    Class
	tier     tier
	literals []string
	unless   []string
}

// rules are the messages real jobs print, from PyTorch, NCCL, CUDA, the kernel, the
// shell, torchrun, DeepSpeed, Megatron, HF, Lightning, TensorFlow and bitsandbytes.
// testdata/classify holds an excerpt for each, with its source.
var rules = []rule{
	// GPU memory.
	{"torch-cuda-oom", CudaOOM, root, []string{"CUDA out of memory", "OutOfMemoryError: CUDA", "torch.OutOfMemoryError", "torch.cuda.OutOfMemoryError", "CUDA error: out of memory", "CUDA_ERROR_OUT_OF_MEMORY", "HIP out of memory", "hipErrorOutOfMemory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED"}, nil},
	{"tf-resource-exhausted", CudaOOM, root, []string{"ResourceExhaustedError", "Resource exhausted: OOM when allocating", "OOM when allocating tensor"}, nil},
	{"bnb-cuda-oom", CudaOOM, root, []string{"cudaErrorMemoryAllocation", "out of memory on device"}, nil},

	// Host memory.
	{"dataloader-killed", HostOOM, root, []string{"is killed by signal: Killed"}, nil},
	{"python-memoryerror", HostOOM, root, []string{"MemoryError"}, []string{"OutOfMemoryError", "CUDA"}},
	{"cpp-bad-alloc", HostOOM, root, []string{"std::bad_alloc"}, nil},
	{"kernel-oom-kill", HostOOM, root, []string{"Out of memory: Killed process", "oom-kill:", "invoked oom-killer", "Memory cgroup out of memory"}, nil},
	{"cannot-allocate", HostOOM, root, []string{"Cannot allocate memory", "[Errno 12]", "DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory"}, nil},
	// A rank SIGKILLed by nobody we know is the root of the collective errors the
	// other ranks print after it; torchrun's summary names it.
	{"torchrun-sigkill", HostOOM, root, []string{"Signal 9 (SIGKILL) received by PID", "(exitcode: -9)", "exitcode  : -9"}, nil},
	{"shell-killed", HostOOM, hint, []string{" Killed "}, []string{"killed by signal", "Killed process"}},

	// NCCL, gloo, the store.
	{"nccl-error", NCCL, consequence, []string{"NCCL error", "ncclInternalError", "ncclSystemError", "ncclUnhandledCudaError", "ncclRemoteError", "ncclInvalidUsage", "DistBackendError", "NCCL communicator was aborted"}, nil},
	{"nccl-watchdog", NCCL, consequence, []string{"Watchdog caught collective operation timeout", "Some NCCL operations have failed or timed out", "NCCL watchdog", "ProcessGroupNCCL's watchdog", "Heartbeat monitor timed out", "collective operation timeout", "WorkNCCL::checkTimeout", "Exception raised from ncclCommWatchdog", "Exception raised from checkTimeout"}, []string{"Epoch", "it/s"}},
	{"gloo-error", NCCL, consequence, []string{"gloo/transport/tcp", "Connection closed by peer", "Connection reset by peer", "ProcessGroupGloo"}, nil},
	{"c10d-timeout", NCCL, consequence, []string{"DistStoreError", "Socket Timeout", "timed out waiting for clients", "Timed out initializing process group", "c10d::Store"}, nil},

	// CUDA runtime and the GPU itself.
	{"cuda-runtime-error", CUDAError, root, []string{"CUDA error: an illegal memory access", "illegal memory access was encountered", "CUDA error: unspecified launch failure", "CUDA error: misaligned address", "CUDA error: device-side assert triggered", "CUDA error: an illegal instruction", "CUDA error: invalid device", "CUDA error: no kernel image", "CUDA error: CUBLAS", "CUBLAS_STATUS_EXECUTION_FAILED", "CUBLAS_STATUS_INTERNAL_ERROR", "CUDNN_STATUS_INTERNAL_ERROR", "CUDNN_STATUS_EXECUTION_FAILED", "CUDA driver error", "cudaErrorIllegalAddress", "hipErrorIllegalAddress", "HIP error: an illegal memory access", "CUDA error: unknown error", "CUDA error: operation not permitted when stream is capturing"}, []string{"previous error"}},
	{"gpu-hardware", CUDAError, root, []string{"uncorrectable ECC error", "NVRM: Xid", "GPU has fallen off the bus", "CUDA error: uncorrectable", "cudaErrorECCUncorrectable", "unrecoverable GPU", "GPU is lost", "RuntimeError: No CUDA GPUs are available", "CUDA driver version is insufficient", "CUDA error: initialization error", "cudaErrorDevicesUnavailable", "CUDA-capable device(s) is/are busy or unavailable"}, nil},
	{"cuda-cascade", CUDAError, consequence, []string{"CUDA kernel errors might be asynchronously reported", "previous error", "CUDA error:"}, nil},

	// Native crashes.
	{"segfault", Segfault, hint, []string{"Segmentation fault", "Fatal Python error: Segmentation fault", "SIGSEGV", "Bus error (core dumped)", "Aborted (core dumped)", "core dumped", "Fatal Python error: Aborted", "Signal 11 (SIGSEGV)", "Signal 6 (SIGABRT)", "Signal 7 (SIGBUS)"}, []string{"DataLoader", "dataloader"}},
	{"glibc-abort", Segfault, root, []string{"double free or corruption", "free(): invalid pointer", "malloc(): corrupted", "corrupted size vs. prev_size", "munmap_chunk(): invalid pointer", "*** stack smashing detected ***", "free(): invalid next size"}, nil},
	{"cpp-terminate", Segfault, hint, []string{"terminate called after throwing an instance of", "terminate called without an active exception"}, nil},

	// Timeouts the job raises itself.
	{"job-timeout", Timeout, root, []string{"TimeoutError", "Timeout exceeded", "ReadTimeout", "ConnectTimeout", "socket.timeout", "timed out after", "Read timed out", "ConnectTimeoutError"}, []string{"Watchdog", "NCCL", "DistStoreError", "Socket Timeout", "TCPStore", "collective"}},

	// DataLoader.
	{"dataloader-bus-error", Dataloader, root, []string{"Unexpected bus error encountered in worker", "insufficient shared memory (shm)", "is killed by signal: Bus error", "is killed by signal: Segmentation fault", "is killed by signal: Aborted", "is killed by signal: Terminated"}, nil},
	{"dataloader-exited", Dataloader, consequence, []string{"exited unexpectedly", "in DataLoader worker process"}, []string{"killed by signal: Killed"}},

	// Disk.
	{"enospc", DiskFull, root, []string{"No space left on device", "[Errno 28]", "ENOSPC", "Disk quota exceeded", "[Errno 122]", "EDQUOT", "PytorchStreamWriter failed writing file", "file write failed", "not enough free disk space"}, nil},

	// Divergence.
	{"nan-loss", NaNDivergence, root, []string{"returned nan values", "Loss is NaN", "loss is nan", "Loss is nan", "loss became NaN", "NaN or Inf found in input tensor", "Detected NaN", "nan loss", "loss is NaN", "non-finite loss", "Loss has diverged", "The total norm of order 2.0 for gradients from `parameters` is non-finite", "Current loss scale already at minimum", "FloatingPointError", "loss: nan", "loss=nan", "outputs is NAN"}, []string{"Gradient overflow"}},

	// Environment and inputs.
	{"import", ImportError, root, []string{"ModuleNotFoundError", "ImportError", "cannot import name", "undefined symbol:", "cannot open shared object file", "No module named", "CUDA Setup failed despite GPU being available"}, nil},
	{"file-not-found", FileNotFound, root, []string{"FileNotFoundError", "No such file or directory", "[Errno 2]", "does not appear to have a file named", "is not a local folder and is not a valid model identifier", "Can't load tokenizer for", "OSError: Can't load"}, []string{"cannot open shared object file", "Permission denied"}},
	{"permission", Permission, root, []string{"PermissionError", "Permission denied", "[Errno 13]", "EACCES", "Operation not permitted", "[Errno 1]"}, []string{"stream is capturing"}},
	{"config", ConfigError, root, []string{"ValueError: ", "error: unrecognized arguments", "error: the following arguments are required", "error: argument ", "ConfigAttributeError", "ConfigKeyError", "ValidationError", "MisconfigurationException", "HFValidationError", "JSONDecodeError", "yaml.scanner.ScannerError", "yaml.parser.ParserError", "ConfigCompositionException", "got an unexpected keyword argument", "Unrecognized configuration class", "must be divisible by", "invalid choice:"}, nil},
}
