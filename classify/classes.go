// Package classify names why a training run died, from its output as it streams by
// and from how it ended. The rules are data: the emitters' own message tables
// (table_*.go, each naming its source and version; table_glibc_l10n.go is generated
// by gen/glibcl10n from Debian's libc-l10n) turned into rules in rules.go. Lines are
// normalised before matching (normalize.go); a traceback is parsed for its last
// exception and, in a chain, its first root cause (classifier.go); and the verdict
// weighs all evidence, root cause over consequence.
package classify

// Class names a cause of death.
type Class string

// The classes of DESIGN.md.
const (
	CudaOOM       Class = "cuda_oom"
	HostOOM       Class = "host_oom"
	NCCL          Class = "nccl"
	CUDAError     Class = "cuda_error"
	Segfault      Class = "segfault"
	Hang          Class = "hang"
	Timeout       Class = "timeout"
	Dataloader    Class = "dataloader"
	DiskFull      Class = "disk_full"
	NaNDivergence Class = "nan_divergence"
	ImportError   Class = "import_error"
	FileNotFound  Class = "file_not_found"
	Permission    Class = "permission"
	ConfigError   Class = "config_error"
	Unknown       Class = "unknown"
	// None means no crash: the job exited 0, or a log holds no evidence of one.
	None Class = "none"
)

// Info is the fixed data of a class: its exit code, whether a restart can help, and
// what a person should do.
type Info struct {
	Class      Class  `json:"class"`
	ExitCode   int    `json:"exit_code"`
	Retryable  bool   `json:"retryable"`
	Suggestion string `json:"suggestion"`
}

var classTable = [...]Info{
	{CudaOOM, 71, true, "GPU memory ran out: lower the per-device batch size, enable gradient checkpointing or mixed precision, or set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True against fragmentation; check nvidia-smi for leftover processes holding memory."},
	{HostOOM, 72, true, "Host memory ran out (the kernel's OOM killer, or MemoryError): use fewer DataLoader workers or smaller prefetch, load the dataset lazily or memory-mapped, or ask the scheduler for more memory; `dmesg | grep -i oom` shows what was killed."},
	{NCCL, 73, true, "A collective failed or timed out: look for the first rank that failed (its error is the root cause), check the network/InfiniBand (NCCL_DEBUG=INFO), and raise the timeout only if one rank is legitimately slow."},
	{CUDAError, 74, true, "A CUDA runtime or driver error: rerun with CUDA_LAUNCH_BLOCKING=1 to find the kernel; if it names an ECC/Xid error or a lost device, drain the node and check `nvidia-smi -q` and the kernel log."},
	{Segfault, 75, true, "The process crashed in native code (segfault, bus error or abort): the stack dump above names the library; mismatched CUDA/PyTorch/extension builds are the usual cause. Enable core dumps to debug."},
	{Hang, 76, true, "The job made no progress for the stall timeout: the stack dump in the log shows where each rank waited (often a collective that one rank never reached, or a DataLoader deadlock)."},
	{Timeout, 77, true, "The job raised a timeout of its own (a store, a socket, a download): check the service it waited for, or raise that timeout."},
	{Dataloader, 78, true, "A DataLoader worker died: a bus error means /dev/shm is too small (raise --shm-size in Docker/Kubernetes, or use fewer workers); otherwise see the worker's own traceback."},
	{DiskFull, 79, true, "The disk or quota is full: free space (trainwrap prunes old checkpoints with --keep), move checkpoints or caches (HF_HOME, TMPDIR) to a larger volume."},
	{NaNDivergence, 80, false, "The loss became NaN or inf: lower the learning rate, add gradient clipping or warmup, use bf16 instead of fp16, and check the data for bad values; restarting from the same checkpoint would diverge again."},
	{ImportError, 81, false, "A module or symbol is missing: install it in the job's environment (and check that the job runs the Python you think: `which python`), or match the versions of the packages involved."},
	{FileNotFound, 82, false, "A path the job needs does not exist: check the path (relative paths are relative to the job's working directory) and that the volume is mounted."},
	{Permission, 83, false, "Permission denied: check the owner and mode of the path named, and that the job runs as the user you expect."},
	{ConfigError, 84, false, "The job's configuration or arguments are invalid: fix the option named in the error; restarting will not change it."},
	{Unknown, 85, true, "The job exited with an error trainwrap cannot name: read the last lines of the log (trainwrap classify --last-n-lines 200)."},
	{None, 0, false, "No crash."},
}

// Lookup returns the fixed data of a class; an unknown class gets Unknown's.
func Lookup(c Class) Info {
	for _, in := range classTable {
		if in.Class == c {
			return in
		}
	}
	in := classTable[len(classTable)-2]
	return in
}

// Classes lists every class with its data, in DESIGN.md's order.
func Classes() []Info {
	return append([]Info(nil), classTable[:]...)
}
