//go:build cgo

package preflight

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/trainwrap/trainwrap/proc"
)

// Thresholds of the GPU check.
const (
	// GPUMaxTemp is the temperature above which a GPU warns, as the seed did, even
	// when its own slowdown threshold is higher.
	GPUMaxTemp = 85
	// GPUMaxForeignUsed is the share of a GPU's memory that processes not ours may use
	// before we start: more is most likely a leftover of a dead job.
	GPUMaxForeignUsed = 0.05
)

// GPUCheck checks every GPU that NVML sees: temperature against 85 °C and the device's
// slowdown threshold, memory held by processes that are not ours, uncorrectable ECC
// errors, retired pages pending and remapped rows pending or failed, clock slowdown
// reasons, persistence mode, and the compute processes with their pids (reported,
// never killed: NVML gives host pids, which may name nothing in our pid namespace).
// Without the NVML library it skips, or fails when GPUs are required.
type GPUCheck struct {
	// Lib is the NVML to ask; nil means the real library (nvml.New()). Tests pass
	// go-nvml's mock servers.
	Lib nvml.Interface
	// Require makes a missing library or zero GPUs fail instead of skip.
	Require bool
	// Expect fails the check when fewer GPUs are visible (0 = any number).
	Expect int
}

// NewGPUCheck returns the GPU check for cfg, talking to the real NVML library.
func NewGPUCheck(cfg Config) Check {
	return &GPUCheck{Require: cfg.RequireGPU, Expect: cfg.ExpectGPUs}
}

// Name is "gpu".
func (*GPUCheck) Name() string { return "gpu" }

func (c *GPUCheck) lib() nvml.Interface {
	if c.Lib != nil {
		return c.Lib
	}
	return nvml.New()
}

// noGPU is the result when there is no NVML or no GPU: skip, or fail with Require.
func (c *GPUCheck) noGPU(reason string) Result {
	if c.Require || c.Expect > 0 {
		return Result{Status: Fail, Reason: reason + "; GPUs are required here (--require-gpu/--expect-gpus)"}
	}
	return Result{Status: Skip, Reason: reason}
}

// initNVML loads and initialises NVML; the returned func shuts it down.
func initNVML(lib nvml.Interface) (func(), nvml.Return) {
	ret := lib.Init()
	if ret != nvml.SUCCESS {
		return func() {}, ret
	}
	return func() { _ = lib.Shutdown() }, ret
}

// Run asks NVML about every device.
func (c *GPUCheck) Run(ctx context.Context) Result {
	lib := c.lib()
	shutdown, ret := initNVML(lib)
	switch ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return c.noGPU("NVML library libnvidia-ml.so.1 not found: no NVIDIA driver on this host")
	default:
		r := c.noGPU(fmt.Sprintf("NVML init: %v: the NVIDIA driver is installed but not usable", ret))
		if r.Status == Skip {
			r.Status = Warn // a driver that does not answer on a GPU host is worth a look
		}
		return r
	}
	defer shutdown()

	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return Result{Status: Fail, Reason: fmt.Sprintf("NVML device count: %v", ret)}
	}
	if n == 0 {
		return c.noGPU("NVML sees no GPU")
	}
	ours := ourPIDs()
	res := Result{Status: OK}
	var names []string
	var maxTemp uint32
	var used uint64
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return Result{Status: Fail, Reason: fmt.Sprintf("cancelled after %d of %d GPUs: %v", i, n, ctx.Err())}
		}
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			res.Status = Fail
			res.Reason = joinReason(res.Reason, fmt.Sprintf("GPU%d: handle: %v", i, ret))
			continue
		}
		g := inspectGPU(lib, dev, i, ours)
		res.Status = worse(res.Status, g.status)
		for _, p := range g.problems {
			res.Reason = joinReason(res.Reason, fmt.Sprintf("GPU%d: %s", i, p))
		}
		res.Details = append(res.Details, g.String())
		if !slices.Contains(names, g.name) {
			names = append(names, g.name)
		}
		maxTemp = max(maxTemp, g.temp)
		used += g.used
	}
	res.Value = fmt.Sprintf("%d × %s, max %d°C, %s used", n, strings.Join(names, "/"), maxTemp, formatBytes(used))
	if c.Expect > 0 && n < c.Expect {
		res.Status = Fail
		res.Reason = joinReason(fmt.Sprintf("%d GPUs visible, %d expected (CUDA_VISIBLE_DEVICES, a GPU fallen off the bus?)", n, c.Expect), res.Reason)
	}
	return res
}

// gpuReport is what one device told us.
type gpuReport struct {
	index       int
	name        string
	temp        uint32
	slowdown    uint32
	used, total uint64
	procs       []nvml.ProcessInfo
	notes       []string
	problems    []string
	status      Status
}

func (g *gpuReport) problem(s Status, format string, args ...any) {
	g.status = worse(g.status, s)
	g.problems = append(g.problems, fmt.Sprintf(format, args...))
}

// String is the detail line of one GPU.
func (g *gpuReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GPU%d %s: %d°C", g.index, g.name, g.temp)
	if g.slowdown > 0 {
		fmt.Fprintf(&b, " (slowdown %d°C)", g.slowdown)
	}
	fmt.Fprintf(&b, ", %s of %s used", formatBytes(g.used), formatBytes(g.total))
	if len(g.procs) > 0 {
		ps := make([]string, len(g.procs))
		for i, p := range g.procs {
			ps[i] = fmt.Sprintf("%d (%s)", p.Pid, formatProcMem(p.UsedGpuMemory))
		}
		b.WriteString(", processes: " + strings.Join(ps, ", "))
	}
	for _, n := range g.notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

// formatProcMem prints a process's GPU memory; NVML may not know it (containers,
// some drivers).
func formatProcMem(v uint64) string {
	if v == ^uint64(0) {
		return "memory unknown"
	}
	return formatBytes(v)
}

// inspectGPU asks one device everything the check judges. A call the GPU model does
// not support (ERROR_NOT_SUPPORTED) skips that item; a lost GPU fails.
func inspectGPU(lib nvml.Interface, dev nvml.Device, index int, ours map[uint32]bool) *gpuReport {
	g := &gpuReport{index: index, status: OK}
	// unsupported is true when the item does not apply to this model; any other
	// error is noted (and a lost GPU fails).
	bad := func(what string, ret nvml.Return) bool {
		switch ret {
		case nvml.SUCCESS:
			return false
		case nvml.ERROR_NOT_SUPPORTED:
			return true
		case nvml.ERROR_GPU_IS_LOST:
			g.problem(Fail, "%s: GPU is lost (fell off the bus); the node needs a reset", what)
		default:
			g.notes = append(g.notes, fmt.Sprintf("%s: %v", what, ret))
		}
		return true
	}

	var ret nvml.Return
	if g.name, ret = dev.GetName(); bad("name", ret) {
		g.name = "unknown GPU"
	}
	if t, ret := dev.GetTemperature(nvml.TEMPERATURE_GPU); !bad("temperature", ret) {
		g.temp = t
		if s, ret := dev.GetTemperatureThreshold(nvml.TEMPERATURE_THRESHOLD_SLOWDOWN); !bad("slowdown threshold", ret) {
			g.slowdown = s
		}
		switch {
		case g.slowdown > 0 && t >= g.slowdown:
			g.problem(Warn, "%d°C is at its slowdown threshold (%d°C): clocks are being cut; check cooling", t, g.slowdown)
		case t > GPUMaxTemp:
			g.problem(Warn, "%d°C is above %d°C; check cooling", t, GPUMaxTemp)
		}
	}
	if m, ret := dev.GetMemoryInfo(); !bad("memory", ret) {
		g.used, g.total = m.Used, m.Total
	}
	if ps, ret := dev.GetComputeRunningProcesses(); !bad("processes", ret) {
		g.procs = ps
	}
	if foreign := foreignMemory(g, ours); g.total > 0 && float64(foreign) > GPUMaxForeignUsed*float64(g.total) {
		g.problem(Warn, "%s of %s used by processes that are not ours (leftovers of a dead job?): %s", formatBytes(foreign), formatBytes(g.total), pidList(g.procs, ours))
	}

	if e, ret := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); !bad("ECC errors", ret) && e > 0 {
		g.problem(Fail, "%d uncorrectable ECC errors since the driver loaded; drain the node for a GPU reset or RMA", e)
	}
	// Retired pages are pre-Ampere, remapped rows Ampere and later; each is looked up
	// first, because calling a function the installed driver lacks ends the process.
	if hasSymbol(lib, "nvmlDeviceGetRetiredPagesPendingStatus") {
		if p, ret := dev.GetRetiredPagesPendingStatus(); !bad("retired pages", ret) && p == nvml.FEATURE_ENABLED {
			g.problem(Fail, "retired pages are pending; the GPU needs a reset before it is safe to use")
		}
	}
	if hasSymbol(lib, "nvmlDeviceGetRemappedRows") {
		if _, _, pending, failed, ret := dev.GetRemappedRows(); !bad("remapped rows", ret) {
			if pending {
				g.problem(Fail, "row remapping is pending; the GPU needs a reset before it is safe to use")
			}
			if failed {
				g.problem(Fail, "row remapping failed; the GPU's memory is bad: RMA")
			}
		}
	}
	if r, ok := clockReasons(lib, dev, bad); ok {
		if slow := r &^ benignClockReasons; slow != 0 {
			g.problem(Warn, "clocks slowed by %s", clockReasonNames(slow))
		}
	}
	if p, ret := dev.GetPersistenceMode(); !bad("persistence mode", ret) && p == nvml.FEATURE_DISABLED {
		g.problem(Warn, "persistence mode is off: every job start re-initialises the GPU (nvidia-smi -pm 1, by an admin)")
	}
	return g
}

// hasSymbol reports whether the loaded NVML library exports name.
func hasSymbol(lib nvml.Interface, name string) bool {
	ext := lib.Extensions()
	return ext != nil && ext.LookupSymbol(name) == nil
}

// clockReasons reads the clock event reasons through the newer call when the driver
// has it, else through its older name.
func clockReasons(lib nvml.Interface, dev nvml.Device, bad func(string, nvml.Return) bool) (uint64, bool) {
	var r uint64
	var ret nvml.Return
	switch {
	case hasSymbol(lib, "nvmlDeviceGetCurrentClocksEventReasons"):
		r, ret = dev.GetCurrentClocksEventReasons()
	case hasSymbol(lib, "nvmlDeviceGetCurrentClocksThrottleReasons"):
		r, ret = dev.GetCurrentClocksThrottleReasons()
	default:
		return 0, false
	}
	return r, !bad("clock reasons", ret)
}

// benignClockReasons are the reasons that are not a slowdown: the GPU is idle, or an
// administrator capped the clocks on purpose.
const benignClockReasons = nvml.ClocksEventReasonGpuIdle | nvml.ClocksEventReasonApplicationsClocksSetting | nvml.ClocksEventReasonDisplayClockSetting

var clockReasonName = map[uint64]string{
	nvml.ClocksEventReasonSwPowerCap:                "power cap",
	nvml.ClocksThrottleReasonHwSlowdown:             "hardware slowdown",
	nvml.ClocksEventReasonSyncBoost:                 "sync boost",
	nvml.ClocksEventReasonSwThermalSlowdown:         "software thermal slowdown",
	nvml.ClocksThrottleReasonHwThermalSlowdown:      "hardware thermal slowdown",
	nvml.ClocksThrottleReasonHwPowerBrakeSlowdown:   "power brake",
	nvml.ClocksEventReasonBoardLimit:                "board limit",
	nvml.ClocksEventReasonReliability:               "reliability",
	nvml.ClocksEventReasonApplicationsClocksSetting: "application clocks",
}

// clockReasonNames names the bits of r.
func clockReasonNames(r uint64) string {
	var out []string
	for r != 0 {
		bit := uint64(1) << bits.TrailingZeros64(r)
		r &^= bit
		if n, ok := clockReasonName[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("reason 0x%x", bit))
		}
	}
	return strings.Join(out, ", ")
}

// ourPIDs are this process and its descendants: GPU memory they hold is ours.
func ourPIDs() map[uint32]bool {
	self := os.Getpid()
	out := map[uint32]bool{uint32(self): true}
	if ds, err := proc.Descendants(self); err == nil {
		for _, d := range ds {
			out[uint32(d.PID)] = true
		}
	}
	return out
}

// foreignMemory is the memory used on g by processes not in ours: the device's used
// memory less what our processes hold (per-process figures may be unknown, so the
// device total is the safer base).
func foreignMemory(g *gpuReport, ours map[uint32]bool) uint64 {
	used := g.used
	for _, p := range g.procs {
		if ours[p.Pid] && p.UsedGpuMemory != ^uint64(0) && p.UsedGpuMemory <= used {
			used -= p.UsedGpuMemory
		}
	}
	return used
}

// pidList names the processes on a GPU that are not ours.
func pidList(ps []nvml.ProcessInfo, ours map[uint32]bool) string {
	var out []string
	for _, p := range ps {
		if !ours[p.Pid] {
			out = append(out, fmt.Sprintf("pid %d (%s)", p.Pid, formatProcMem(p.UsedGpuMemory)))
		}
	}
	if len(out) == 0 {
		return "no process listed (another container's?)"
	}
	return strings.Join(out, ", ")
}

// WaitGPUMemoryReleased polls NVML every 2 s until the used memory of every GPU is
// under threshold, or timeout passes, as NVRx does before a restart: a new attempt
// started while the dead one's memory is still held fails with CUDA OOM at once. It
// returns nil at once when there is no NVML library (no GPU to wait for), and an
// error naming the GPUs still holding memory when time runs out.
func WaitGPUMemoryReleased(ctx context.Context, timeout time.Duration, threshold uint64) error {
	return waitGPUMemoryReleased(ctx, nvml.New(), timeout, threshold, 2*time.Second)
}

func waitGPUMemoryReleased(ctx context.Context, lib nvml.Interface, timeout time.Duration, threshold uint64, every time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Init hangs on some drivers (go-nvml#152) and a call into C cannot be
	// interrupted: wait for it in a goroutine, and give up on it at the timeout.
	type initResult struct {
		shutdown func()
		ret      nvml.Return
	}
	initDone := make(chan initResult, 1)
	go func() {
		sd, ret := initNVML(lib)
		initDone <- initResult{sd, ret}
	}()
	var ir initResult
	select {
	case ir = <-initDone:
	case <-ctx.Done():
		return fmt.Errorf("wait for GPU memory: NVML Init did not return within %s", timeout)
	}
	switch ir.ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil
	default:
		return fmt.Errorf("wait for GPU memory: NVML init: %w", ir.ret)
	}
	defer ir.shutdown()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		held, err := gpusHolding(lib, threshold)
		if err != nil {
			return err
		}
		if len(held) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("GPU memory not released after %s: %s", timeout, strings.Join(held, ", "))
			}
			return fmt.Errorf("wait for GPU memory: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// gpusHolding lists the GPUs whose used memory is at or over threshold.
func gpusHolding(lib nvml.Interface, threshold uint64) ([]string, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("wait for GPU memory: device count: %w", ret)
	}
	var held []string
	for i := 0; i < n; i++ {
		dev, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("wait for GPU memory: GPU%d: %w", i, ret)
		}
		m, ret := dev.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("wait for GPU memory: GPU%d memory: %w", i, ret)
		}
		if m.Used >= threshold {
			held = append(held, fmt.Sprintf("GPU%d %s used", i, formatBytes(m.Used)))
		}
	}
	return held, nil
}
