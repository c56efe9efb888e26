//go:build cgo

package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/trainwrap/trainwrap/internal/testkit"
)

// healthyDGX returns go-nvml's DGX H100 mock with every health call the GPU check
// makes wired to a healthy answer; each test then breaks what it tests. The server
// pre-wires only identity and memory, and an unset call panics.
func healthyDGX() *server.Server {
	s := dgxh100.New()
	for _, d := range s.Devices {
		dev := d.(*server.Device)
		dev.MemoryInfo = nvml.Memory{Total: dev.MemoryInfo.Total, Used: 500 * MB, Free: dev.MemoryInfo.Total - 500*MB}
		dev.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 40, nvml.SUCCESS }
		dev.GetTemperatureThresholdFunc = func(th nvml.TemperatureThresholds) (uint32, nvml.Return) {
			if th == nvml.TEMPERATURE_THRESHOLD_SLOWDOWN {
				return 87, nvml.SUCCESS
			}
			return 92, nvml.SUCCESS
		}
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 0, nvml.SUCCESS }
		// Hopper has no retired pages: it remaps rows instead.
		dev.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.SUCCESS }
		dev.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksEventReasonGpuIdle, nvml.SUCCESS }
		dev.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
	}
	return s
}

func device(s *server.Server, i int) *server.Device { return s.Devices[i].(*server.Device) }

func TestGPU(t *testing.T) {
	t.Parallel()
	const leftoverPID = 4000000 // above pid_max: never a process of ours
	cases := []struct {
		name   string
		break_ func(s *server.Server)
		check  GPUCheck
		want   Status
		reason []string
	}{
		{"healthy", func(*server.Server) {}, GPUCheck{}, OK, nil},
		{"hot at slowdown", func(s *server.Server) {
			device(s, 3).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 88, nvml.SUCCESS }
		}, GPUCheck{}, Warn, []string{"GPU3: 88°C is at its slowdown threshold (87°C)"}},
		{"hot above 85", func(s *server.Server) {
			device(s, 5).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 86, nvml.SUCCESS }
			device(s, 5).GetTemperatureThresholdFunc = func(nvml.TemperatureThresholds) (uint32, nvml.Return) { return 95, nvml.SUCCESS }
		}, GPUCheck{}, Warn, []string{"GPU5: 86°C is above 85°C"}},
		{"uncorrectable ECC errors", func(s *server.Server) {
			device(s, 1).GetTotalEccErrorsFunc = func(typ nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
				if typ == nvml.MEMORY_ERROR_TYPE_UNCORRECTED && c == nvml.VOLATILE_ECC {
					return 5, nvml.SUCCESS
				}
				return 0, nvml.SUCCESS
			}
		}, GPUCheck{}, Fail, []string{"GPU1: 5 uncorrectable ECC errors"}},
		{"retired pages pending", func(s *server.Server) {
			device(s, 2).GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		}, GPUCheck{}, Fail, []string{"GPU2: retired pages are pending"}},
		{"remapped rows pending and failed", func(s *server.Server) {
			device(s, 6).GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 3, 1, true, true, nvml.SUCCESS }
		}, GPUCheck{}, Fail, []string{"GPU6: row remapping is pending", "GPU6: row remapping failed"}},
		{"leftover process holding memory", func(s *server.Server) {
			d := device(s, 0)
			d.MemoryInfo.Used = 40 * GB
			d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
				return []nvml.ProcessInfo{{Pid: leftoverPID, UsedGpuMemory: 39 * GB}}, nvml.SUCCESS
			}
		}, GPUCheck{}, Warn, []string{"GPU0: 40.0 GB of 85.9 GB used by processes that are not ours", fmt.Sprintf("pid %d (39.0 GB)", leftoverPID)}},
		{"our own process holding memory", func(s *server.Server) {
			d := device(s, 0)
			d.MemoryInfo.Used = 40 * GB
			d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
				return []nvml.ProcessInfo{{Pid: uint32(os.Getpid()), UsedGpuMemory: 39*GB + 600*MB}}, nvml.SUCCESS
			}
		}, GPUCheck{}, OK, nil},
		{"hardware slowdown", func(s *server.Server) {
			device(s, 4).GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
				return nvml.ClocksThrottleReasonHwSlowdown | nvml.ClocksEventReasonSwPowerCap, nvml.SUCCESS
			}
		}, GPUCheck{}, Warn, []string{"GPU4: clocks slowed by power cap, hardware slowdown"}},
		{"persistence mode off", func(s *server.Server) {
			device(s, 7).GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_DISABLED, nvml.SUCCESS }
		}, GPUCheck{}, Warn, []string{"GPU7: persistence mode is off"}},
		{"ECC not supported is not a failure", func(s *server.Server) {
			for i := range s.Devices {
				device(s, i).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) {
					return 0, nvml.ERROR_NOT_SUPPORTED
				}
			}
		}, GPUCheck{}, OK, nil},
		{"GPU lost", func(s *server.Server) {
			device(s, 2).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
		}, GPUCheck{}, Fail, []string{"GPU2: temperature: GPU is lost"}},
		{"old driver without the newer calls", func(s *server.Server) {
			// The calls stay nil: reaching them would panic, as a missing symbol
			// would end the process with the real library.
			s.LookupSymbolFunc = func(sym string) error {
				if sym == "nvmlDeviceGetCurrentClocksEventReasons" || sym == "nvmlDeviceGetRemappedRows" {
					return errors.New("undefined symbol: " + sym)
				}
				return nil
			}
			for i := range s.Devices {
				d := device(s, i)
				d.GetRemappedRowsFunc = nil
				d.GetCurrentClocksEventReasonsFunc = nil
				d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) { return nvml.ClocksThrottleReasonGpuIdle, nvml.SUCCESS }
			}
			device(s, 1).GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
				return nvml.ClocksThrottleReasonHwThermalSlowdown, nvml.SUCCESS
			}
		}, GPUCheck{}, Warn, []string{"GPU1: clocks slowed by hardware thermal slowdown"}},
		{"fewer GPUs than expected", func(*server.Server) {}, GPUCheck{Expect: 16}, Fail, []string{"8 GPUs visible, 16 expected"}},
		{"library absent", func(s *server.Server) {
			s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
		}, GPUCheck{}, Skip, []string{"NVML library libnvidia-ml.so.1 not found"}},
		{"library absent, GPUs required", func(s *server.Server) {
			s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
		}, GPUCheck{Require: true}, Fail, []string{"not found", "GPUs are required here"}},
		{"no GPU visible", func(s *server.Server) {
			s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
		}, GPUCheck{}, Skip, []string{"NVML sees no GPU"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := healthyDGX()
			var shut atomic.Int32
			s.ShutdownFunc = func() nvml.Return { shut.Add(1); return nvml.SUCCESS }
			tc.break_(s)
			c := tc.check
			c.Lib = s
			r := runCheck(t, &c)
			wantResult(t, r, tc.want, tc.reason...)
			if tc.want == OK && r.Reason != "" {
				t.Errorf("ok with reason %q", r.Reason)
			}
			if len(s.InitCalls()) == 1 && s.InitFunc() == nvml.SUCCESS && shut.Load() != 1 {
				t.Errorf("NVML shut down %d times after a successful Init, want 1", shut.Load())
			}
			if r.Status == OK || r.Status == Warn {
				if !strings.HasPrefix(r.Value, "8 × NVIDIA H100 80GB HBM3, max ") || len(r.Details) != 8 {
					t.Errorf("value %q, %d details; want a summary of 8 H100s and a line per GPU", r.Value, len(r.Details))
				}
			}
		})
	}
}

// TestWaitGPUMemoryInitHangs: an NVML Init that never returns costs the timeout, not
// the supervisor.
func TestWaitGPUMemoryInitHangs(t *testing.T) {
	t.Parallel()
	s := healthyDGX()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s.InitFunc = func() nvml.Return { <-release; return nvml.SUCCESS }
	// Init is held until the test ends: returning at all proves the timeout cut it off.
	var err error
	testkit.Returns(t, time.Minute, "waitGPUMemoryReleased with a hung Init", func() {
		err = waitGPUMemoryReleased(context.Background(), s, 100*time.Millisecond, GPUReleasedThreshold, 10*time.Millisecond)
	})
	if err == nil || !strings.Contains(err.Error(), "NVML Init did not return within 100ms") {
		t.Errorf("err %v, want the hung Init named", err)
	}
}

// TestGPUProcessesListed: the details name each GPU's compute processes by pid.
func TestGPUProcessesListed(t *testing.T) {
	t.Parallel()
	s := healthyDGX()
	device(s, 3).GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 1234, UsedGpuMemory: 2 * GB}, {Pid: 1235, UsedGpuMemory: ^uint64(0)}}, nvml.SUCCESS
	}
	r := runCheck(t, &GPUCheck{Lib: s})
	if want := "processes: 1234 (2.0 GB), 1235 (memory unknown)"; !strings.Contains(r.Details[3], want) {
		t.Errorf("GPU3 detail %q lacks %q", r.Details[3], want)
	}
}

// TestGPUThisHost uses the real NVML library: on a host without the NVIDIA driver
// the check skips and says why.
func TestGPUThisHost(t *testing.T) {
	t.Parallel()
	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.ERROR_LIBRARY_NOT_FOUND {
		if ret == nvml.SUCCESS {
			_ = lib.Shutdown()
		}
		t.Skipf("this host has an NVML library (Init: %v)", ret)
	}
	wantResult(t, runCheck(t, NewGPUCheck(Config{})), Skip, "libnvidia-ml.so.1 not found")
	wantResult(t, runCheck(t, NewGPUCheck(Config{RequireGPU: true})), Fail, "GPUs are required")
	if err := WaitGPUMemoryReleased(context.Background(), time.Second, GPUReleasedThreshold); err != nil {
		t.Errorf("WaitGPUMemoryReleased without NVML: %v, want nil", err)
	}
}

func TestWaitGPUMemoryReleased(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		freeAfter int32 // polls until GPU 5 drops under the threshold; -1 never
		timeout   time.Duration
		wantErr   string
	}{
		// A minute: only memory that is never released may reach the timeout, and
		// the exact poll count proves the wait ended at the release.
		{"already free", 0, time.Minute, ""},
		{"released after three polls", 3, time.Minute, ""},
		{"never released", -1, 100 * time.Millisecond, "GPU memory not released after 100ms: GPU5 30.0 GB used"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := healthyDGX()
			var polls atomic.Int32
			d := device(s, 5)
			d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
				n := polls.Add(1)
				if tc.freeAfter >= 0 && n > tc.freeAfter {
					return nvml.Memory{Total: 80 * GB, Used: 300 * MB}, nvml.SUCCESS
				}
				return nvml.Memory{Total: 80 * GB, Used: 30 * GB}, nvml.SUCCESS
			}
			var err error
			testkit.Returns(t, tc.timeout+time.Minute, "waitGPUMemoryReleased", func() {
				err = waitGPUMemoryReleased(context.Background(), s, tc.timeout, GPUReleasedThreshold, 10*time.Millisecond)
			})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err %v, want nil", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("err %v, want %q", err, tc.wantErr)
			}
			if tc.freeAfter > 0 && int(polls.Load()) != int(tc.freeAfter)+1 {
				t.Errorf("polled GPU5 %d times, want %d", polls.Load(), tc.freeAfter+1)
			}
		})
	}
}
