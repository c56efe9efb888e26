//go:build !cgo

package observe

// openGPUs returns nil: without cgo there is no NVML binding, and the sampler records
// host memory and disk only.
func openGPUs() gpuSource { return nil }
