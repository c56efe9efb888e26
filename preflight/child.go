package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ChildCheck runs one check in a child process and reports what the child found. The
// GPU check runs this way in trainwrap: go-nvml ends the whole process (exit 127) when
// it calls a function the installed driver lacks, and NVML's Init hangs on some
// drivers; in a child, either costs one check and the child is killed at the
// check's timeout, instead of taking the supervisor down or leaving a goroutine stuck
// in C.
//
// Argv must print a preflight JSON report (Report's MarshalJSON) that holds a result
// named CheckName; its exit status is ignored when it did.
type ChildCheck struct {
	CheckName string
	Argv      []string
}

// Name is CheckName.
func (c *ChildCheck) Name() string { return c.CheckName }

// Run starts the child and reads its report.
func (c *ChildCheck) Run(ctx context.Context) Result {
	if len(c.Argv) == 0 {
		return Result{Status: Fail, Reason: "no command to run the check in"}
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.WaitDelay = time.Second // a grandchild holding the pipes must not hold us
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err == nil {
		for _, r := range rep.Results {
			if r.Check == c.CheckName {
				return r
			}
		}
	}
	if ctx.Err() != nil {
		return Result{Status: Fail, Reason: fmt.Sprintf("cancelled: %v", ctx.Err())}
	}
	why := "printed no report"
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		why = "died: " + ee.String()
		if ee.ExitCode() == 127 {
			why += " (NVML may lack a function this trainwrap calls: update the driver)"
		}
	} else if runErr != nil {
		why = runErr.Error()
	}
	if last := lastLine(stderr.String()); last != "" {
		why += ": " + last
	}
	return Result{Status: Fail, Reason: fmt.Sprintf("the %s check process %s", c.CheckName, why)}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// GPUChildArgs is the command line of `trainwrap preflight` that runs only the GPU
// check, in process, and prints it as JSON: what Config.GPUExec should hold, with exe
// the trainwrap binary (os.Executable()).
func GPUChildArgs(exe string, cfg Config) []string {
	// Both values go explicitly, false and 0 too: the child inherits our environment,
	// and a TRAINWRAP_REQUIRE_GPU=1 that the parent's --require-gpu=false overrode
	// must not come back in the child.
	return []string{exe, "preflight", "--only", "gpu", "--json", "--in-process",
		"--require-gpu=" + strconv.FormatBool(cfg.RequireGPU), "--expect-gpus=" + strconv.Itoa(cfg.ExpectGPUs)}
}
