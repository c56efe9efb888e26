//go:build !cgo

package preflight

import (
	"context"
	"time"
)

// gpuUnavailable stands in for the GPU check in a build without cgo, where go-nvml
// cannot be compiled.
type gpuUnavailable struct {
	require bool
}

// NewGPUCheck returns the GPU check; without cgo it can only say that it cannot look.
func NewGPUCheck(cfg Config) Check {
	return gpuUnavailable{require: cfg.RequireGPU || cfg.ExpectGPUs > 0}
}

// Name is "gpu".
func (gpuUnavailable) Name() string { return "gpu" }

// Run skips, or fails when GPUs are required.
func (g gpuUnavailable) Run(ctx context.Context) Result {
	const reason = "trainwrap was built without cgo, so it cannot load NVML"
	if g.require {
		return Result{Status: Fail, Reason: reason + "; GPUs are required here: use a cgo build"}
	}
	return Result{Status: Skip, Reason: reason}
}

// WaitGPUMemoryReleased returns nil: without cgo there is no NVML to ask.
func WaitGPUMemoryReleased(ctx context.Context, timeout time.Duration, threshold uint64) error {
	return nil
}

// HaveNVML is false: without cgo, trainwrap cannot load NVML.
func HaveNVML() bool { return false }
