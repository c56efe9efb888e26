package shim

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/rundir"
)

// Variables smart recovery sets, and the values it sets them to.
const (
	allocConfEnv   = "PYTORCH_CUDA_ALLOC_CONF"
	allocConfValue = "expandable_segments:True"
	ncclDebugEnv   = "NCCL_DEBUG"
	ncclAsyncEnv   = "TORCH_NCCL_ASYNC_ERROR_HANDLING"
)

// Tuning is what smart recovery controls in the next attempt: the job's batch size,
// gradient accumulation and DataLoader workers (-1 where unknown or not controlled),
// and the environment variables it added.
type Tuning struct {
	Batch     int
	GradAccum int
	Workers   int
	Env       map[string]string
}

// Knob names where one value of a Tuning lives: a flag of the command
// (rundir.AdjustArg) or a key of the job's config file (rundir.AdjustConfig).
type Knob struct {
	Kind, Name string
}

// TuningNames name the knobs of a Tuning in the changes Adjust reports.
type TuningNames struct {
	Batch, GradAccum, Workers Knob
}

// Adjustment is Adjust's decision: the next attempt's tuning and what changed, or
// why recovery cannot go on.
type Adjustment struct {
	Next    Tuning
	Changes []rundir.Adjustment // Attempt and File are the caller's to fill in
	// GiveUp, when set, says why no restart can help: the class's last resort is
	// spent (the batch is at --min-batch and the job still runs out of GPU memory).
	GiveUp string
}

// Adjust decides what to change before restarting a job whose attempt ended with
// class and evidence, running with cur. userSet reports whether the user set an
// environment variable; recovery never overrides one. It is a pure function: the
// caller applies the tuning to the command, environment and config.
//
// cuda_oom: first PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, then the batch
// halves (gradient accumulation doubles, so the effective batch stays), never below
// minBatch; below that it gives up. dataloader out of shared memory or file
// descriptors (or for no cause the evidence names): the workers halve, down to 0. host_oom: the workers halve first, then
// the batch. nccl and timeout: NCCL_DEBUG=INFO and TORCH_NCCL_ASYNC_ERROR_HANDLING=1,
// so the next log shows the cause. Other classes, and a knob that is unknown or
// spent, change nothing.
func Adjust(class classify.Class, evidence []string, cur Tuning, names TuningNames, minBatch int, userSet func(string) bool) Adjustment {
	a := Adjustment{Next: cur}
	a.Next.Env = maps.Clone(cur.Env)
	setEnv := func(k, v string) {
		if userSet(k) {
			return
		}
		if _, ok := a.Next.Env[k]; ok {
			return
		}
		if a.Next.Env == nil {
			a.Next.Env = map[string]string{}
		}
		a.Next.Env[k] = v
		a.Changes = append(a.Changes, rundir.Adjustment{Class: string(class), Kind: rundir.AdjustEnv, Name: k, To: v})
	}
	change := func(k Knob, from, to int) {
		a.Changes = append(a.Changes, rundir.Adjustment{Class: string(class), Kind: k.Kind, Name: k.Name, From: strconv.Itoa(from), To: strconv.Itoa(to)})
	}
	halveBatch := func() bool {
		if cur.Batch < 0 || cur.Batch/2 < max(minBatch, 1) {
			return false
		}
		a.Next.Batch = cur.Batch / 2
		change(names.Batch, cur.Batch, a.Next.Batch)
		if cur.GradAccum >= 1 {
			a.Next.GradAccum = cur.GradAccum * 2
			change(names.GradAccum, cur.GradAccum, a.Next.GradAccum)
		}
		return true
	}
	halveWorkers := func() bool {
		if cur.Workers <= 0 {
			return false
		}
		a.Next.Workers = cur.Workers / 2
		change(names.Workers, cur.Workers, a.Next.Workers)
		return true
	}

	switch class {
	case classify.CudaOOM:
		if !userSet(allocConfEnv) && cur.Env[allocConfEnv] == "" {
			setEnv(allocConfEnv, allocConfValue)
			break
		}
		if cur.Batch < 0 {
			break // nothing known to lower; the restart policy decides
		}
		if !halveBatch() {
			a.GiveUp = fmt.Sprintf("smart recovery: out of GPU memory with %s %d, and half of it is under --min-batch %d", names.Batch.Name, cur.Batch, max(minBatch, 1))
		}
	case classify.Dataloader:
		if workerResources(evidence) {
			halveWorkers()
		}
	case classify.HostOOM:
		if !halveWorkers() {
			halveBatch()
		}
	case classify.NCCL, classify.Timeout:
		setEnv(ncclDebugEnv, "INFO")
		setEnv(ncclAsyncEnv, "1")
	}
	return a
}

// workerResources reports whether a DataLoader failure may be one that fewer workers
// avoid: shared memory exhausted (a bus error) or file descriptors run out. The
// evidence often holds only "exited unexpectedly" (the classifier keeps the
// DataLoader's summary, not an "[Errno 24] Too many open files" above it), so only a
// worker that crashed natively (a segfault or abort in its own code) or was
// terminated from outside rules it out.
func workerResources(evidence []string) bool {
	for _, e := range evidence {
		l := strings.ToLower(e)
		for _, s := range []string{"shared memory", "(shm)", "bus error", "too many open files", "received 0 items of ancdata"} {
			if strings.Contains(l, s) {
				return true
			}
		}
	}
	for _, e := range evidence {
		for _, s := range []string{"killed by signal: Segmentation fault", "killed by signal: Aborted", "killed by signal: Terminated"} {
			if strings.Contains(e, s) {
				return false
			}
		}
	}
	return true
}
