//go:build cgo

package observe

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	nvmlmock "github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/trainwrap/trainwrap/internal/testkit"
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

	m := newMetrics("")
	m.applySample(Sample{Time: time.Now(), GPUs: gpus})
	if n := testutil.CollectAndCount(m.gpuTemp); n != 8 {
		t.Errorf("%d temperature series, want 8", n)
	}
	if v, _ := value(gather(t, m), "trainwrap_gpu_ecc_uncorrected_errors_total", map[string]string{"gpu": "3", "uuid": g.UUID}); v != 2 {
		t.Errorf("trainwrap_gpu_ecc_uncorrected_errors_total{gpu=3} = %v", v)
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
	if charts := resourceCharts(s, time.UTC); len(charts) != 3 {
		t.Errorf("%d charts from GPU-only samples, want temperature, memory, utilisation", len(charts))
	}
}

// TestInProcessGPUsBoundsNVML: NVML in this process answers through a goroutine the
// sampler waits for a bounded time; an Init or a query that hangs turns GPU sampling
// off instead of stopping the sampler.
func TestInProcessGPUsBoundsNVML(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	tests := []struct {
		name    string
		setup   func(srv *nvmlmock.Server)
		wantN   int
		wantErr string
	}{
		{name: "answers", setup: func(srv *nvmlmock.Server) {}, wantN: 8},
		{name: "Init hangs", setup: func(srv *nvmlmock.Server) {
			srv.InitFunc = func() nvml.Return { <-release; return nvml.SUCCESS }
		}, wantErr: "NVML did not start within"},
		{name: "a query hangs", setup: func(srv *nvmlmock.Server) {
			srv.Devices[5].(*nvmlmock.Device).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
				<-release
				return 0, nvml.SUCCESS
			}
		}, wantErr: "NVML did not answer within"},
		{name: "no NVML library", setup: func(srv *nvmlmock.Server) {
			srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := dgxh100.New()
			for _, dh := range srv.Devices {
				d := dh.(*nvmlmock.Device)
				d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 50, nvml.SUCCESS }
				d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
				d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
				d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
			}
			tc.setup(srv)
			// A hang never answers, so its short limit certainly passes; an answer
			// gets a minute, which no loaded machine needs.
			limit := time.Minute
			if tc.wantErr != "" {
				limit = 200 * time.Millisecond
			}
			g := startInProcessGPUs(func() gpuSource { return openNVML(srv) }, limit)
			defer g.Close()
			gpus, err := g.Read()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				// Once stuck, later samples skip the GPUs at once: a Read that asked the
				// stuck goroutine again would time out with an error.
				testkit.Returns(t, time.Minute, "the second Read after a hang", func() {
					if gpus, err := g.Read(); gpus != nil || err != nil {
						t.Errorf("second Read after a hang: %v, %v", gpus, err)
					}
				})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(gpus) != tc.wantN {
				t.Errorf("%d GPUs, want %d", len(gpus), tc.wantN)
			}
		})
	}
}

func TestWriteGPUs(t *testing.T) {
	var b strings.Builder
	if err := writeGPUs(&b, nil); err != nil || b.String() != "[]\n" {
		t.Errorf("no NVML: %q, %v; want []", b.String(), err)
	}
	srv := dgxh100.New()
	for _, dh := range srv.Devices {
		d := dh.(*nvmlmock.Device)
		d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 64, nvml.SUCCESS }
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 10}, nvml.SUCCESS }
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 700000, nvml.SUCCESS }
		d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
	}
	b.Reset()
	if err := writeGPUs(&b, openNVML(srv)); err != nil {
		t.Fatal(err)
	}
	var gpus []GPU
	if err := json.Unmarshal([]byte(b.String()), &gpus); err != nil || len(gpus) != 8 || gpus[7].TempC != 64 || gpus[7].PowerMW != 700000 {
		t.Errorf("writeGPUs: %v, %+v", err, gpus)
	}
}
