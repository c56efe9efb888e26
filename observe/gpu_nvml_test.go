//go:build cgo

package observe

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	nvmlmock "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGPUSamples reads an 8-GPU DGX H100 through go-nvml's mock NVML server, with one
// GPU that runs hot, has uncorrected ECC errors and no power reading.
func TestGPUSamples(t *testing.T) {
	srv := dgxh100.New()
	for i, dh := range srv.Devices {
		temp, ecc := uint32(40+i), uint64(0)
		power, powerRet := uint32(300000+i), nvml.SUCCESS
		if i == 3 {
			temp, ecc, powerRet = 91, 2, nvml.ERROR_NOT_SUPPORTED
		}
		d := dh.(*nvmlmock.Device)
		d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return temp, nvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 97}, nvml.SUCCESS }
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return power, powerRet }
		d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return ecc, nvml.SUCCESS }
	}
	src := openNVML(srv)
	if src == nil {
		t.Fatal("openNVML returned no source for the mock server")
	}
	defer src.Close()
	gpus, err := src.Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("%d GPUs, want 8", len(gpus))
	}
	g := gpus[3]
	if g.TempC != 91 || g.ECCUncorrected != 2 || g.PowerMW != 0 || g.UtilPct != 97 || g.MemTotal == 0 || g.UUID == "" {
		t.Errorf("GPU 3: %+v", g)
	}

	m := newMetrics()
	m.applySample(Sample{Time: time.Now(), GPUs: gpus})
	if n := testutil.CollectAndCount(m.gpuTemp); n != 8 {
		t.Errorf("%d temperature series, want 8", n)
	}
	if v := testutil.ToFloat64(m.gpuECC.WithLabelValues("3", g.UUID)); v != 2 {
		t.Errorf("trainwrap_gpu_ecc_uncorrected_errors{gpu=3} = %v", v)
	}

	// The page draws the GPU charts from the same samples.
	path := filepath.Join(t.TempDir(), "samples.jsonl")
	for k := 0; k < 3; k++ {
		if err := appendSample(path, Sample{Time: time.Now().Add(time.Duration(k) * time.Second), GPUs: gpus}, MaxSamplesBytes); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ReadSamples(path)
	if err != nil {
		t.Fatal(err)
	}
	if charts := resourceCharts(s); len(charts) != 3 {
		t.Errorf("%d charts from GPU-only samples, want temperature, memory, utilisation", len(charts))
	}
}
