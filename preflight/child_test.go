package preflight

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// TestChildCheck runs real child processes: one that reports, one that dies the way
// go-nvml ends a process on a missing symbol, one that hangs like a stuck NVML Init.
func TestChildCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		argv   []string
		want   Status
		reason string
	}{
		{"reports", []string{"sh", "-c", `echo '{"results":[{"check":"gpu","status":"warn","reason":"GPU0: 88°C"}],"exit_code":1}'; exit 1`}, Warn, "GPU0: 88°C"},
		{"dies with 127", []string{"sh", "-c", "echo 'symbol lookup error: nvmlDeviceGetRemappedRows' >&2; exit 127"}, Fail, "the gpu check process died: exit status 127 (NVML may lack a function"},
		{"prints garbage", []string{"sh", "-c", "echo not json"}, Fail, "the gpu check process printed no report"},
		{"missing binary", []string{"/nonexistent/trainwrap"}, Fail, "no such file"},
		{"no command", nil, Fail, "no command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantResult(t, runCheck(t, &ChildCheck{CheckName: "gpu", Argv: tc.argv}), tc.want, tc.reason)
		})
	}
}

func TestChildCheckHangs(t *testing.T) {
	t.Parallel()
	// The child sleeps for an hour: Run returning at all proves it did not wait.
	var rep Report
	testkit.Returns(t, time.Minute, "Run with a hung child check", func() {
		rep = Run(context.Background(), []Check{&ChildCheck{CheckName: "gpu", Argv: []string{"sleep", "3600"}}}, RunOptions{PerCheck: 200 * time.Millisecond})
	})
	wantResult(t, rep.Results[0], Fail, "timed out after 200ms")
}

func TestGPUChildArgs(t *testing.T) {
	t.Parallel()
	// false and 0 are passed too: the child inherits TRAINWRAP_REQUIRE_GPU and
	// TRAINWRAP_EXPECT_GPUS, which the parent's command line may have overridden.
	base := []string{"/bin/trainwrap", "preflight", "--only", "gpu", "--json", "--in-process"}
	tests := []struct {
		cfg  Config
		want []string
	}{
		{Config{RequireGPU: true, ExpectGPUs: 8}, append(slices.Clone(base), "--require-gpu=true", "--expect-gpus=8")},
		{Config{}, append(slices.Clone(base), "--require-gpu=false", "--expect-gpus=0")},
	}
	for _, tc := range tests {
		if got := GPUChildArgs("/bin/trainwrap", tc.cfg); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
