package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// NVML can hang in Init on some drivers, and go-nvml ends the whole process when it
// calls a function the installed driver lacks. Neither may take the supervisor down,
// so GPU stats come either from a child process (Options.GPUCommand: a crash or a hang
// costs one sample) or, without one, from a goroutine that owns NVML and that the
// sampler waits on for a bounded time only.

// gpuTimeout bounds one GPU reading.
const gpuTimeout = 20 * time.Second

// SampleGPUs writes the state of every GPU as a JSON array of GPU, or [] when this
// host has no NVML (or the binary was built without cgo). It is what the command in
// Options.GPUCommand runs, in a process of its own.
func SampleGPUs(w io.Writer) error {
	src := openGPUs()
	if src != nil {
		defer src.Close()
	}
	return writeGPUs(w, src)
}

func writeGPUs(w io.Writer, src gpuSource) error {
	gpus := []GPU{}
	if src != nil {
		g, err := src.Read()
		if err != nil && len(g) == 0 {
			return err
		}
		gpus = append(gpus, g...)
	}
	b, err := json.Marshal(gpus)
	if err != nil {
		return fmt.Errorf("encode GPU sample: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// childGPUs reads the GPUs by running argv, which prints what SampleGPUs writes.
type childGPUs struct {
	argv    []string
	timeout time.Duration
	env     []string
}

func newChildGPUs(argv []string, timeout time.Duration) *childGPUs {
	var env []string
	for _, kv := range os.Environ() {
		// Processes that carry the run id are the job's, and are killed with it.
		if !strings.HasPrefix(kv, rundir.RunIDEnv+"=") {
			env = append(env, kv)
		}
	}
	return &childGPUs{argv: argv, timeout: timeout, env: env}
}

// Read runs the child once; a child that outlives the timeout is killed with its group.
func (c *childGPUs) Read() ([]GPU, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = c.env
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 512}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	err := cmd.Run()
	if err == nil {
		var gpus []GPU
		if jerr := json.Unmarshal(stdout.Bytes(), &gpus); jerr != nil {
			return nil, fmt.Errorf("sample GPUs: %s printed no GPU list: %v", c.argv[0], jerr)
		}
		return gpus, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("sample GPUs: no answer within %s (NVML hung); killed it", c.timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 127 {
		err = fmt.Errorf("%w (NVML may lack a function trainwrap calls: update the driver)", err)
	}
	if msg := strings.TrimSpace(string(stderr.b)); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return nil, fmt.Errorf("sample GPUs: %w", err)
}

// Close has nothing to release: each Read's process is gone when it returns.
func (c *childGPUs) Close() {}

// inProcessGPUs owns NVML on a goroutine of its own. The sampler waits for it a bounded
// time: a goroutine stuck in a C call cannot be interrupted, so once NVML fails to
// answer it is left behind and GPU sampling stops for this run.
type inProcessGPUs struct {
	reqs    chan chan gpuResult
	timeout time.Duration
	stuck   bool // only the sampler's goroutine touches it
}

type gpuResult struct {
	gpus []GPU
	err  error
}

func startInProcessGPUs(open func() gpuSource, timeout time.Duration) *inProcessGPUs {
	g := &inProcessGPUs{reqs: make(chan chan gpuResult), timeout: timeout}
	go func() {
		src := open() // may hang: then every Read times out
		if src != nil {
			defer src.Close()
		}
		for reply := range g.reqs {
			if src == nil {
				reply <- gpuResult{}
				continue
			}
			gpus, err := src.Read()
			reply <- gpuResult{gpus, err}
		}
	}()
	return g
}

// Read asks the NVML goroutine for a reading; nil, nil when there is no NVML.
func (g *inProcessGPUs) Read() ([]GPU, error) {
	if g.stuck {
		return nil, nil
	}
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	reply := make(chan gpuResult, 1)
	select {
	case g.reqs <- reply:
	case <-t.C:
		g.stuck = true
		return nil, fmt.Errorf("sample GPUs: NVML did not start within %s; GPU sampling is off for this run", g.timeout)
	}
	select {
	case r := <-reply:
		return r.gpus, r.err
	case <-t.C:
		g.stuck = true
		return nil, fmt.Errorf("sample GPUs: NVML did not answer within %s; GPU sampling is off for this run", g.timeout)
	}
}

// Close ends the NVML goroutine once it is free; one stuck in C stays stuck, holding
// nothing anyone waits for.
func (g *inProcessGPUs) Close() { close(g.reqs) }
