package classify

// NCCL's ncclResult_t names and ncclGetErrorString texts. PyTorch reports a failed
// NCCL call as "NCCL error in: <file>:<line>, <ncclGetErrorString>, NCCL version X"
// and, in its detail, "ncclUnhandledCudaError: Call to CUDA function failed.".
//
// Sources: NVIDIA/nccl src/init.cc ncclGetErrorString (2.18-2.23: "unhandled cuda
// error (run with NCCL_DEBUG=INFO for details)", ...; before 2.8 the same texts without
// the parenthesis, which the literals below are prefixes of) and src/nccl.h.in's
// ncclResult_t; PyTorch's torch/csrc/distributed/c10d/NCCLUtils.cpp getNcclErrorDetailStr.
const srcNCCL = "NVIDIA/nccl src/init.cc ncclGetErrorString and nccl.h ncclResult_t (2.7-2.23)"

// srcNCCLChecks is NCCL's CUDACHECK macro (src/include/checks.h): WARN("Cuda failure
// '%s'", cudaGetErrorString(err)), with the error number before the text since 2.19.
const srcNCCLChecks = "NVIDIA/nccl src/include/checks.h CUDACHECK (2.7-2.23)"

var ncclResults = []struct {
	name string // ncclResult_t
	text string // ncclGetErrorString, up to its parenthesis
	// generic is set when text alone is common English: then it must follow ", " as
	// PyTorch formats it, on a line that names NCCL.
	generic bool
}{
	{"ncclUnhandledCudaError", "unhandled cuda error", false},
	{"ncclSystemError", "unhandled system error", false},
	{"ncclInternalError", "internal error - please report this issue to the NCCL developers", false},
	{"ncclInternalError", "internal error", true},
	{"ncclInvalidArgument", "invalid argument", true},
	{"ncclInvalidUsage", "invalid usage", true},
	{"ncclRemoteError", "remote process exited or there was a network error", false},
}

// srcNCCLTrace is NCCL's NCCLCHECK/NCCLCHECKGOTO (src/include/checks.h): a call that
// failed logs "<file>:<line> -> <ncclResult_t>" at each level it is passed up (INFO
// before 2.19, WARN after), and the code is 1-6 (ncclInProgress, 7, is not printed).
// srcNCCLIB is the IB transport's completion error (src/transport/net_ib.cc, ib_plugin.c
// in the plugins): a work request that failed on the wire, then ncclRemoteError.
const (
	srcNCCLTrace = "NVIDIA/nccl src/include/checks.h NCCLCHECK (\"%s:%d -> %d\", 2.4-2.23) and nccl.h ncclResult_t 1-6"
	srcNCCLIB    = "NVIDIA/nccl src/transport/net_ib.cc (\"NET/IB : Got completion from peer %s with error %d\", 2.12+: \"with status=%d opcode=%d len=%d vendor err %d\")"
)
