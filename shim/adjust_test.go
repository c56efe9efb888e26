package shim

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/rundir"
)

// TestAdjust runs crash after crash through Adjust, each from the tuning the last one
// left, and checks every step's changes and the tuning reached.
func TestAdjust(t *testing.T) {
	names := TuningNames{
		Batch:     Knob{rundir.AdjustArg, "--bs"},
		GradAccum: Knob{rundir.AdjustArg, "--ga"},
		Workers:   Knob{rundir.AdjustConfig, "data.workers"},
	}
	shm := []string{"RuntimeError: DataLoader worker (pid 7) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory."}
	fds := []string{"OSError: [Errno 24] Too many open files"}
	type crash struct {
		class    classify.Class
		evidence []string
		want     string // the changes, as adjustmentText writes them; "give up" for GiveUp
	}
	cases := []struct {
		name     string
		start    Tuning
		minBatch int
		userEnv  []string
		crashes  []crash
		end      Tuning
	}{
		{"cuda_oom: alloc conf, then halve the batch and double accumulation down to the minimum, then give up",
			Tuning{Batch: 8, GradAccum: 1, Workers: -1}, 2, nil,
			[]crash{
				{classify.CudaOOM, nil, "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"},
				{classify.CudaOOM, nil, "--bs 8 → 4, --ga 1 → 2"},
				{classify.CudaOOM, nil, "--bs 4 → 2, --ga 2 → 4"},
				{classify.CudaOOM, nil, "give up"},
			},
			Tuning{Batch: 2, GradAccum: 4, Workers: -1, Env: map[string]string{allocConfEnv: allocConfValue}}},
		{"cuda_oom: an alloc conf the user set is kept; the first OOM halves the batch",
			Tuning{Batch: 3, GradAccum: 1, Workers: -1}, 1, []string{allocConfEnv},
			[]crash{
				{classify.CudaOOM, nil, "--bs 3 → 1, --ga 1 → 2"},
				{classify.CudaOOM, nil, "give up"},
			},
			Tuning{Batch: 1, GradAccum: 2, Workers: -1}},
		{"cuda_oom without accumulation: only the batch",
			Tuning{Batch: 16, GradAccum: -1, Workers: -1}, 1, []string{allocConfEnv},
			[]crash{{classify.CudaOOM, nil, "--bs 16 → 8"}},
			Tuning{Batch: 8, GradAccum: -1, Workers: -1}},
		{"cuda_oom with no batch known: the env, then the restart policy decides",
			Tuning{Batch: -1, GradAccum: -1, Workers: 4}, 1, nil,
			[]crash{
				{classify.CudaOOM, nil, "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"},
				{classify.CudaOOM, nil, ""},
			},
			Tuning{Batch: -1, GradAccum: -1, Workers: 4, Env: map[string]string{allocConfEnv: allocConfValue}}},
		{"dataloader out of shared memory or fds: workers halve down to 0 and stay there",
			Tuning{Batch: 8, GradAccum: 1, Workers: 5}, 1, nil,
			[]crash{
				{classify.Dataloader, shm, "data.workers 5 → 2"},
				{classify.Dataloader, fds, "data.workers 2 → 1"},
				{classify.Dataloader, shm, "data.workers 1 → 0"},
				{classify.Dataloader, shm, ""},
			},
			Tuning{Batch: 8, GradAccum: 1, Workers: 0}},
		{"dataloader with no cause in the evidence (an EMFILE above the summary): workers halve",
			Tuning{Batch: 8, GradAccum: 1, Workers: 4}, 1, nil,
			[]crash{{classify.Dataloader, []string{"RuntimeError: DataLoader worker (pid(s) 9) exited unexpectedly"}, "data.workers 4 → 2"}},
			Tuning{Batch: 8, GradAccum: 1, Workers: 2}},
		{"dataloader worker crashed in its own code: no change",
			Tuning{Batch: 8, GradAccum: 1, Workers: 4}, 1, nil,
			[]crash{
				{classify.Dataloader, []string{"RuntimeError: DataLoader worker (pid 9) is killed by signal: Segmentation fault."}, ""},
				{classify.Dataloader, []string{"RuntimeError: DataLoader worker (pid 9) is killed by signal: Aborted."}, ""},
			},
			Tuning{Batch: 8, GradAccum: 1, Workers: 4}},
		{"host_oom: workers first, then the batch, never under the minimum",
			Tuning{Batch: 4, GradAccum: 2, Workers: 2}, 2, nil,
			[]crash{
				{classify.HostOOM, nil, "data.workers 2 → 1"},
				{classify.HostOOM, nil, "data.workers 1 → 0"},
				{classify.HostOOM, nil, "--bs 4 → 2, --ga 2 → 4"},
				{classify.HostOOM, nil, ""},
			},
			Tuning{Batch: 2, GradAccum: 4, Workers: 0}},
		{"nccl then timeout: the debug variables once, unless the user set them",
			Tuning{Batch: 8, GradAccum: 1, Workers: 2}, 1, []string{ncclAsyncEnv},
			[]crash{
				{classify.NCCL, nil, "NCCL_DEBUG=INFO"},
				{classify.Timeout, nil, ""},
			},
			Tuning{Batch: 8, GradAccum: 1, Workers: 2, Env: map[string]string{ncclDebugEnv: "INFO"}}},
		{"timeout: both debug variables",
			Tuning{Batch: -1, GradAccum: -1, Workers: -1}, 1, nil,
			[]crash{{classify.Timeout, nil, "NCCL_DEBUG=INFO, TORCH_NCCL_ASYNC_ERROR_HANDLING=1"}},
			Tuning{Batch: -1, GradAccum: -1, Workers: -1, Env: map[string]string{ncclDebugEnv: "INFO", ncclAsyncEnv: "1"}}},
		{"other classes change nothing",
			Tuning{Batch: 8, GradAccum: 1, Workers: 2}, 1, nil,
			[]crash{{classify.Segfault, nil, ""}, {classify.Hang, nil, ""}, {classify.CUDAError, nil, ""}},
			Tuning{Batch: 8, GradAccum: 1, Workers: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			userSet := func(k string) bool { return slices.Contains(tc.userEnv, k) }
			cur := tc.start
			for i, c := range tc.crashes {
				before := maps.Clone(cur.Env)
				a := Adjust(c.class, c.evidence, cur, names, tc.minBatch, userSet)
				if !maps.Equal(cur.Env, before) {
					t.Fatalf("crash %d: Adjust changed the tuning it was given", i+1)
				}
				if c.want == "give up" {
					if a.GiveUp == "" || len(a.Changes) > 0 {
						t.Fatalf("crash %d (%s): changes %q, give-up %q; want a give-up and no change", i+1, c.class, adjustmentText(a.Changes), a.GiveUp)
					}
					if !strings.Contains(a.GiveUp, "--min-batch") {
						t.Errorf("crash %d: give-up reason %q does not name --min-batch", i+1, a.GiveUp)
					}
					continue
				}
				if a.GiveUp != "" {
					t.Fatalf("crash %d (%s): gave up (%s), want %q", i+1, c.class, a.GiveUp, c.want)
				}
				if got := adjustmentText(a.Changes); got != c.want {
					t.Fatalf("crash %d (%s): changes %q, want %q", i+1, c.class, got, c.want)
				}
				for _, ch := range a.Changes {
					if ch.Class != string(c.class) {
						t.Errorf("crash %d: change %s answers %q, want %q", i+1, ch, ch.Class, c.class)
					}
					if want := names.Workers; ch.Name == want.Name && ch.Kind != want.Kind {
						t.Errorf("crash %d: change %s is of kind %s, want %s", i+1, ch, ch.Kind, want.Kind)
					}
				}
				cur = a.Next
			}
			if cur.Batch != tc.end.Batch || cur.GradAccum != tc.end.GradAccum || cur.Workers != tc.end.Workers || !maps.Equal(cur.Env, tc.end.Env) {
				t.Errorf("ended with %+v, want %+v", cur, tc.end)
			}
		})
	}
}
