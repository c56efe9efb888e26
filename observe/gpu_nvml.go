//go:build cgo

package observe

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// nvmlGPUs reads GPU state through NVML. It holds one NVML initialisation for the
// sampler's life.
type nvmlGPUs struct {
	lib nvml.Interface
}

// openGPUs initialises NVML, or returns nil when the host has no NVML library or no
// GPU: that is a normal host, not an error.
func openGPUs() gpuSource {
	return openNVML(nvml.New())
}

// openNVML is openGPUs over a given NVML, so tests can pass go-nvml's mock.
func openNVML(lib nvml.Interface) gpuSource {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil
	}
	if n, ret := lib.DeviceGetCount(); ret != nvml.SUCCESS || n == 0 {
		lib.Shutdown()
		return nil
	}
	return &nvmlGPUs{lib: lib}
}

// Read samples every GPU. A GPU that fails one query is still reported with what was
// read; a query a GPU does not support (ECC on consumer boards) is not an error.
func (g *nvmlGPUs) Read() ([]GPU, error) {
	n, ret := g.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("sample GPUs: count devices: %s", ret.Error())
	}
	out := make([]GPU, 0, n)
	var errs []error
	check := func(i int, what string, ret nvml.Return) bool {
		if ret == nvml.SUCCESS {
			return true
		}
		if ret != nvml.ERROR_NOT_SUPPORTED {
			errs = append(errs, fmt.Errorf("sample GPU %d: %s: %s", i, what, ret.Error()))
		}
		return false
	}
	for i := 0; i < n; i++ {
		d, ret := g.lib.DeviceGetHandleByIndex(i)
		if !check(i, "handle", ret) {
			continue
		}
		s := GPU{Index: i}
		if uuid, ret := d.GetUUID(); check(i, "uuid", ret) {
			s.UUID = uuid
		}
		if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); check(i, "temperature", ret) {
			s.TempC = t
		}
		if m, ret := d.GetMemoryInfo(); check(i, "memory", ret) {
			s.MemUsed, s.MemTotal = m.Used, m.Total
		}
		if u, ret := d.GetUtilizationRates(); check(i, "utilization", ret) {
			s.UtilPct = u.Gpu
		}
		if p, ret := d.GetPowerUsage(); check(i, "power", ret) {
			s.PowerMW = p
		}
		if e, ret := d.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); check(i, "ECC errors", ret) {
			s.ECCUncorrected = e
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// Close releases NVML.
func (g *nvmlGPUs) Close() { g.lib.Shutdown() }
