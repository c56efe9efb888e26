package observe

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// TestMain lets the test binary play the GPU child: with OBSERVE_TEST_GPU_CHILD=1 it
// runs SampleGPUs, as trainwrap's hidden command does, and exits.
func TestMain(m *testing.M) {
	if os.Getenv("OBSERVE_TEST_GPU_CHILD") == "1" {
		if err := SampleGPUs(os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestChildGPUs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tests := []struct {
		name    string
		argv    []string
		env     string
		wantN   int // -1: whatever this host has
		wantErr string
		check   func(t *testing.T)
	}{
		{
			name:  "a GPU list",
			argv:  []string{"sh", "-c", `echo '[{"index":0,"uuid":"GPU-a","temp_c":71,"mem_used":5,"mem_total":10},{"index":1,"uuid":"GPU-b"}]'`},
			wantN: 2,
		},
		{
			name:  "SampleGPUs in a real child process",
			argv:  []string{exe},
			env:   "OBSERVE_TEST_GPU_CHILD=1",
			wantN: -1,
		},
		{
			name:    "NVML killed the child",
			argv:    []string{"sh", "-c", "echo 'symbol lookup error: nvmlDeviceGetFoo' >&2; exit 127"},
			wantErr: "update the driver): symbol lookup error",
		},
		{
			name:    "garbage",
			argv:    []string{"sh", "-c", "echo hello"},
			wantErr: "printed no GPU list",
		},
		{
			name:    "a hung child is killed with its group",
			argv:    []string{"sh", "-c", `sleep 3600 & echo $! > "` + filepath.Join(out, "bg.pid") + `"; wait`},
			wantErr: "no answer within 300ms",
			check: func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(out, "bg.pid"))
				if err != nil {
					t.Fatal(err)
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				testkit.Eventually(t, time.Minute, "the child's child to die", func() bool { return gone(pid) })
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only the hung child must run into the limit, and it sleeps for an hour:
			// the others get a minute, which no loaded machine needs, and a Read that
			// waited for the hung one would not return within testkit.Returns' minute.
			limit := time.Minute
			if strings.Contains(tc.wantErr, "no answer within") {
				limit = 300 * time.Millisecond
			}
			c := newChildGPUs(tc.argv, limit)
			if tc.env != "" {
				c.env = append(c.env, tc.env)
			}
			var gpus []GPU
			var err error
			testkit.Returns(t, time.Minute, "Read", func() { gpus, err = c.Read() })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantN == -1 {
				if want := openGPUs(); want == nil && len(gpus) != 0 {
					t.Errorf("no NVML here, yet the child reported %d GPUs", len(gpus))
				}
			} else if len(gpus) != tc.wantN {
				t.Errorf("%d GPUs, want %d", len(gpus), tc.wantN)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// TestSamplerUsesGPUCommand: with GPUCommand set, the GPUs in samples.jsonl and in the
// metrics come from the child.
func TestSamplerUsesGPUCommand(t *testing.T) {
	dir := t.TempDir()
	o, err := New(context.Background(), Options{SampleInterval: 50 * time.Millisecond, StateDir: dir,
		GPUCommand: []string{"sh", "-c", `echo '[{"index":0,"uuid":"GPU-a","temp_c":83,"mem_used":5,"mem_total":10,"ecc_uncorrected":1}]'`}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	testkit.Eventually(t, time.Minute, "a sample with the child's GPU", func() bool {
		s, _ := ReadSamples(rundir.New(dir).Samples())
		return len(s) > 0 && len(s[len(s)-1].GPUs) == 1 && s[len(s)-1].GPUs[0].TempC == 83
	})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := value(gather(t, o.m), "trainwrap_gpu_ecc_uncorrected_errors_total", map[string]string{"gpu": "0", "uuid": "GPU-a"}); v != 1 {
		t.Errorf("trainwrap_gpu_ecc_uncorrected_errors_total = %v, want 1", v)
	}
}
