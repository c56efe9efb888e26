package classify

// CUDA runtime errors: the cudaError_t name, its number before CUDA 10 renumbered the
// enum (what old PyTorch prints as `THCudaCheck FAIL file=... line=... error=N : text` and
// `cuda runtime error (N) : text at file:line`),
// cudaGetErrorString's text, and the driver API's CUresult name for the same error.
//
// Sources: the texts and legacy numbers as a cudart of the CUDA 8/9 era returns them
// (the enum order of driver_types.h up to CUDA 9.2, where cudaErrorMemoryAllocation is
// 2 and cudaErrorIllegalAddress 77), extended with the texts CUDA 10-12 added or
// reworded (cudaErrorDevicesUnavailable's "CUDA-capable device(s) is/are busy or
// unavailable", cudaErrorNvlinkUncorrectable, cudaErrorSystemDriverMismatch, ...), as
// documented in the CUDA 12 Runtime API (group__CUDART__TYPES) and cuda.h's CUresult.
// Legacy 0 means the error came after CUDA 9.2.
const srcCUDA = "CUDA runtime cudaGetErrorString texts (legacy numbering to CUDA 9.2, names and texts to CUDA 12.4) and cuda.h CUresult names; the formats that print them: PyTorch, THC, NCCL CUDACHECK, Kaldi cu-common.h CU_SAFE_CALL"

// srcTHCudaCheck is the check that printed the CUDA runtime's errors in PyTorch up to
// 1.x: __THCudaCheck prints its FAIL line once (a static alreadyFailed) and then calls
// _THError, a C++ throw that Python sees as RuntimeError; __THCudaCheckWarn prints
// "THCudaCheckWarn FAIL" and returns.
const srcTHCudaCheck = "PyTorch 0.4-1.x aten/src/THC/THCGeneral.cpp __THCudaCheck (\"THCudaCheck FAIL file=%s line=%i error=%i : %s\", then _THError \"cuda runtime error (%d) : %s\"); cutorch lib/THC/THCGeneral.c"

type cudaErr struct {
	name   string // cudaError_t
	legacy int    // enum value up to CUDA 9.2; 0 if none
	text   string // cudaGetErrorString
	driver string // CUresult name; "" if none
	class  Class
}

var cudaErrors = []cudaErr{
	{"cudaErrorMissingConfiguration", 1, "__global__ function call is not configured", "", CUDAError},
	{"cudaErrorMemoryAllocation", 2, "out of memory", "CUDA_ERROR_OUT_OF_MEMORY", CudaOOM},
	{"cudaErrorInitializationError", 3, "initialization error", "CUDA_ERROR_NOT_INITIALIZED", CUDAError},
	{"cudaErrorLaunchFailure", 4, "unspecified launch failure", "CUDA_ERROR_LAUNCH_FAILED", CUDAError},
	{"cudaErrorPriorLaunchFailure", 5, "unspecified launch failure in prior launch", "", CUDAError},
	{"cudaErrorLaunchTimeout", 6, "the launch timed out and was terminated", "CUDA_ERROR_LAUNCH_TIMEOUT", CUDAError},
	{"cudaErrorLaunchOutOfResources", 7, "too many resources requested for launch", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", CUDAError},
	{"cudaErrorInvalidDeviceFunction", 8, "invalid device function", "", CUDAError},
	{"cudaErrorInvalidConfiguration", 9, "invalid configuration argument", "", CUDAError},
	{"cudaErrorInvalidDevice", 10, "invalid device ordinal", "CUDA_ERROR_INVALID_DEVICE", CUDAError},
	{"cudaErrorInvalidValue", 11, "invalid argument", "CUDA_ERROR_INVALID_VALUE", CUDAError},
	{"cudaErrorInvalidPitchValue", 12, "invalid pitch argument", "", CUDAError},
	{"cudaErrorInvalidSymbol", 13, "invalid device symbol", "", CUDAError},
	{"cudaErrorInvalidDevicePointer", 17, "invalid device pointer", "", CUDAError},
	{"cudaErrorInvalidMemcpyDirection", 21, "invalid copy direction for memcpy", "", CUDAError},
	{"cudaErrorCudartUnloading", 29, "driver shutting down", "CUDA_ERROR_DEINITIALIZED", CUDAError},
	{"cudaErrorUnknown", 30, "unknown error", "CUDA_ERROR_UNKNOWN", CUDAError},
	{"cudaErrorInvalidResourceHandle", 33, "invalid resource handle", "CUDA_ERROR_INVALID_HANDLE", CUDAError},
	{"cudaErrorInsufficientDriver", 35, "CUDA driver version is insufficient for CUDA runtime version", "", CUDAError},
	{"cudaErrorNoDevice", 38, "no CUDA-capable device is detected", "CUDA_ERROR_NO_DEVICE", CUDAError},
	{"cudaErrorECCUncorrectable", 39, "uncorrectable ECC error encountered", "CUDA_ERROR_ECC_UNCORRECTABLE", CUDAError},
	{"cudaErrorSharedObjectSymbolNotFound", 40, "shared object symbol not found", "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND", CUDAError},
	{"cudaErrorSharedObjectInitFailed", 41, "shared object initialization failed", "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", CUDAError},
	{"cudaErrorDevicesUnavailable", 46, "all CUDA-capable devices are busy or unavailable", "", CUDAError},
	{"cudaErrorDevicesUnavailable", 0, "CUDA-capable device(s) is/are busy or unavailable", "", CUDAError},
	{"cudaErrorInvalidKernelImage", 47, "device kernel image is invalid", "CUDA_ERROR_INVALID_IMAGE", CUDAError},
	{"cudaErrorNoKernelImageForDevice", 48, "no kernel image is available for execution on the device", "CUDA_ERROR_NO_BINARY_FOR_GPU", CUDAError},
	{"cudaErrorIncompatibleDriverContext", 49, "incompatible driver context", "", CUDAError},
	{"cudaErrorPeerAccessUnsupported", 64, "peer access is not supported between these two devices", "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", CUDAError},
	{"cudaErrorAssert", 59, "device-side assert triggered", "CUDA_ERROR_ASSERT", CUDAError},
	{"cudaErrorOperatingSystem", 63, "OS call failed or operation not supported on this OS", "CUDA_ERROR_OPERATING_SYSTEM", CUDAError},
	{"cudaErrorNotPermitted", 70, "operation not permitted", "CUDA_ERROR_NOT_PERMITTED", CUDAError},
	{"cudaErrorNotSupported", 71, "operation not supported", "CUDA_ERROR_NOT_SUPPORTED", CUDAError},
	{"cudaErrorHardwareStackError", 72, "hardware stack error", "CUDA_ERROR_HARDWARE_STACK_ERROR", CUDAError},
	{"cudaErrorIllegalInstruction", 73, "an illegal instruction was encountered", "CUDA_ERROR_ILLEGAL_INSTRUCTION", CUDAError},
	{"cudaErrorMisalignedAddress", 74, "misaligned address", "CUDA_ERROR_MISALIGNED_ADDRESS", CUDAError},
	{"cudaErrorInvalidAddressSpace", 75, "operation not supported on global/shared address space", "CUDA_ERROR_INVALID_ADDRESS_SPACE", CUDAError},
	{"cudaErrorInvalidPc", 76, "invalid program counter", "CUDA_ERROR_INVALID_PC", CUDAError},
	{"cudaErrorIllegalAddress", 77, "an illegal memory access was encountered", "CUDA_ERROR_ILLEGAL_ADDRESS", CUDAError},
	{"cudaErrorInvalidPtx", 78, "a PTX JIT compilation failed", "CUDA_ERROR_INVALID_PTX", CUDAError},
	{"cudaErrorNvlinkUncorrectable", 80, "uncorrectable NVLink error detected during the execution", "CUDA_ERROR_NVLINK_UNCORRECTABLE", CUDAError},
	{"cudaErrorStartupFailure", 127, "startup failure in cuda runtime", "", CUDAError},
	{"cudaErrorUnsupportedPtxVersion", 0, "the provided PTX was compiled with an unsupported toolchain.", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", CUDAError},
	{"cudaErrorSystemNotReady", 0, "system not yet initialized", "CUDA_ERROR_SYSTEM_NOT_READY", CUDAError},
	{"cudaErrorSystemDriverMismatch", 0, "system has unsupported display driver / cuda driver combination", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", CUDAError},
	{"cudaErrorCompatNotSupportedOnDevice", 0, "forward compatibility was attempted on non supported HW", "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", CUDAError},
	{"cudaErrorStreamCaptureUnsupported", 0, "operation not permitted when stream is capturing", "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", CUDAError},
	{"cudaErrorStreamCaptureInvalidated", 0, "operation failed due to a previous error during capture", "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", CUDAError},
	{"cudaErrorContextIsDestroyed", 0, "context is destroyed", "CUDA_ERROR_CONTEXT_IS_DESTROYED", CUDAError},
	{"cudaErrorDeviceUninitialized", 0, "invalid device context", "CUDA_ERROR_INVALID_CONTEXT", CUDAError},
	{"cudaErrorJitCompilerNotFound", 0, "PTX JIT compiler library not found", "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", CUDAError},
	{"cudaErrorMpsConnectionFailed", 0, "MPS client failed to connect to the MPS control daemon or the MPS server", "CUDA_ERROR_MPS_CONNECTION_FAILED", CUDAError},
}

// HIP runtime errors, ROCm's counterpart: hipGetErrorName and hipGetErrorString.
// Source: ROCm/clr hipamd/src/hip_error.cpp (ihipGetErrorName, ihipGetErrorString),
// ROCm 6.x.
const srcHIP = "ROCm/clr hipamd/src/hip_error.cpp (ROCm 6.x)"

var hipErrors = []struct {
	name, text string
	class      Class
}{
	{"hipErrorInvalidValue", "invalid argument", CUDAError},
	{"hipErrorOutOfMemory", "out of memory", CudaOOM},
	{"hipErrorMemoryAllocation", "out of memory", CudaOOM},
	{"hipErrorNotInitialized", "initialization error", CUDAError},
	{"hipErrorInsufficientDriver", "driver version is insufficient for runtime version", CUDAError},
	{"hipErrorPriorLaunchFailure", "unspecified launch failure in prior launch", CUDAError},
	{"hipErrorInvalidDeviceFunction", "invalid device function", CUDAError},
	{"hipErrorNoDevice", "no ROCm-capable device is detected", CUDAError},
	{"hipErrorInvalidDevice", "invalid device ordinal", CUDAError},
	{"hipErrorInvalidImage", "device kernel image is invalid", CUDAError},
	{"hipErrorNoBinaryForGpu", "no kernel image is available for execution on the device", CUDAError},
	{"hipErrorECCNotCorrectable", "uncorrectable ECC error encountered", CUDAError},
	{"hipErrorInvalidHandle", "invalid resource handle", CUDAError},
	{"hipErrorIllegalAddress", "an illegal memory access was encountered", CUDAError},
	{"hipErrorLaunchOutOfResources", "too many resources requested for launch", CUDAError},
	{"hipErrorLaunchTimeOut", "the launch timed out and was terminated", CUDAError},
	{"hipErrorContextIsDestroyed", "context is destroyed", CUDAError},
	{"hipErrorAssert", "device-side assert triggered", CUDAError},
	{"hipErrorLaunchFailure", "unspecified launch failure", CUDAError},
	{"hipErrorNotSupported", "operation not supported", CUDAError},
	{"hipErrorStreamCaptureUnsupported", "operation not permitted when stream is capturing", CUDAError},
	{"hipErrorRuntimeMemory", "runtime memory call returned error", CUDAError},
	{"hipErrorRuntimeOther", "runtime call other than memory returned error", CUDAError},
	{"hipErrorUnknown", "unknown error", CUDAError},
}

// cuBLAS and cuDNN status names (cublasStatus_t in cublas_api.h of CUDA 12;
// cudnnStatus_t in cudnn_ops_infer.h / cudnn_graph.h of cuDNN 8.9 and 9). PyTorch
// prints them as "CUDA error: CUBLAS_STATUS_... when calling ..." and "cuDNN error:
// CUDNN_STATUS_...".
const srcCublasCudnn = "cuBLAS cublasStatus_t (CUDA 12.4 cublas_api.h), cuDNN cudnnStatus_t (cuDNN 8.9/9.0)"

var libraryStatuses = []struct {
	name  string
	class Class
}{
	{"CUBLAS_STATUS_NOT_INITIALIZED", CUDAError},
	{"CUBLAS_STATUS_ALLOC_FAILED", CudaOOM},
	{"CUBLAS_STATUS_INVALID_VALUE", CUDAError},
	{"CUBLAS_STATUS_ARCH_MISMATCH", CUDAError},
	{"CUBLAS_STATUS_MAPPING_ERROR", CUDAError},
	{"CUBLAS_STATUS_EXECUTION_FAILED", CUDAError},
	{"CUBLAS_STATUS_INTERNAL_ERROR", CUDAError},
	{"CUBLAS_STATUS_NOT_SUPPORTED", CUDAError},
	{"CUBLAS_STATUS_LICENSE_ERROR", CUDAError},
	{"CUDNN_STATUS_NOT_INITIALIZED", CUDAError},
	{"CUDNN_STATUS_ALLOC_FAILED", CudaOOM},
	{"CUDNN_STATUS_BAD_PARAM", CUDAError},
	{"CUDNN_STATUS_INTERNAL_ERROR", CUDAError},
	{"CUDNN_STATUS_INVALID_VALUE", CUDAError},
	{"CUDNN_STATUS_ARCH_MISMATCH", CUDAError},
	{"CUDNN_STATUS_MAPPING_ERROR", CUDAError},
	{"CUDNN_STATUS_EXECUTION_FAILED", CUDAError},
	{"CUDNN_STATUS_NOT_SUPPORTED", CUDAError},
	{"CUDNN_STATUS_LICENSE_ERROR", CUDAError},
	{"CUDNN_STATUS_RUNTIME_PREREQUISITE_MISSING", CUDAError},
	{"CUDNN_STATUS_RUNTIME_FP_OVERFLOW", NaNDivergence},
	{"CUDNN_STATUS_VERSION_MISMATCH", ImportError},
	{"CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH", ImportError},
	{"CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED", ImportError},
}
