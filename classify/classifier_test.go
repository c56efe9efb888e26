package classify

import (
	"strings"
	"syscall"
	"testing"
)

func feed(lines ...string) *Classifier {
	c := New()
	for _, l := range lines {
		c.ObserveLine([]byte(l))
	}
	return c
}

// TestVerdictCascades checks root cause over consequence and the exit-status rules.
func TestVerdictCascades(t *testing.T) {
	failed := Exit{Code: 1, OOMKillDelta: -1}
	tests := []struct {
		name      string
		lines     []string
		exit      Exit
		want      Class
		wantLine  int64 // first evidence line; 0 = not checked
		wantRank  int   // -1 = no rank
		wantInSug string
	}{
		{
			name: "OOM on one rank, watchdog timeouts on the others",
			lines: []string{
				"[rank0]:[E ProcessGroupNCCL.cpp:563] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1201, OpType=ALLREDUCE) ran for 600000 milliseconds before timing out.",
				"[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 79.15 GiB of which 1.2 GiB is free.",
				"[rank2]:[E ProcessGroupNCCL.cpp:577] [Rank 2] Some NCCL operations have failed or timed out.",
			},
			exit: failed, want: CudaOOM, wantLine: 2, wantRank: 1,
		},
		{
			name: "illegal access then previous-error cascade",
			lines: []string{
				"RuntimeError: CUDA error: an illegal memory access was encountered",
				"CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
				"terminate called after throwing an instance of 'c10::Error'",
				"  what():  CUDA error: an illegal memory access was encountered (see previous error)",
			},
			exit: Exit{Signal: syscall.SIGABRT}, want: CUDAError, wantLine: 1, wantRank: -1,
		},
		{
			name:  "DataLoader worker killed: host memory",
			lines: []string{"RuntimeError: DataLoader worker (pid 4242) is killed by signal: Killed. "},
			exit:  failed, want: HostOOM, wantLine: 1, wantRank: -1,
		},
		{
			name:  "DataLoader worker bus error: shared memory",
			lines: []string{"RuntimeError: DataLoader worker (pid 17) is killed by signal: Bus error. It is possible that dataloader's workers are out of shared memory. Please try to raise your shared memory limit."},
			exit:  failed, want: Dataloader, wantLine: 1, wantRank: -1,
		},
		{
			name:  "SIGABRT after an NCCL watchdog abort is nccl",
			lines: []string{"[E ProcessGroupNCCL.cpp:475] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=BROADCAST, Timeout(ms)=1800000) ran for 1800403 milliseconds before timing out.", "Fatal Python error: Aborted"},
			exit:  Exit{Signal: syscall.SIGABRT}, want: NCCL, wantLine: 1, wantRank: -1,
		},
		{
			name:  "SIGSEGV with no stronger cause",
			lines: []string{"step 10 loss 1.2", "Fatal Python error: Segmentation fault"},
			exit:  Exit{Signal: syscall.SIGSEGV}, want: Segfault, wantLine: 2, wantRank: -1, wantInSug: "SIGSEGV",
		},
		{
			name:  "SIGBUS with no evidence",
			lines: []string{"step 10 loss 1.2"},
			exit:  Exit{Signal: syscall.SIGBUS}, want: Segfault, wantRank: -1, wantInSug: "SIGBUS",
		},
		{
			name:  "SIGKILL nobody asked for, counter unknown: likely host OOM",
			lines: []string{"step 10 loss 1.2"},
			exit:  Exit{Signal: syscall.SIGKILL, OOMKillDelta: -1}, want: HostOOM, wantRank: -1, wantInSug: "most likely",
		},
		{
			name:  "SIGKILL with the OOM-kill counter up",
			lines: []string{"step 10 loss 1.2"},
			exit:  Exit{Signal: syscall.SIGKILL, OOMKillDelta: 2}, want: HostOOM, wantRank: -1, wantInSug: "rose by 2",
		},
		{
			name:  "SIGKILL after a CUDA OOM keeps the root cause",
			lines: []string{"torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB"},
			exit:  Exit{Signal: syscall.SIGKILL, OOMKillDelta: 0}, want: CudaOOM, wantLine: 1, wantRank: -1,
		},
		{
			name:  "stall stop with Python's fault handler dump is a hang",
			lines: []string{"step 10 loss 1.2", "Fatal Python error: Aborted", "", "Thread 0x00007f3a1b2c3740 (most recent call first):", "  File \"/usr/lib/python3/dist-packages/torch/distributed/distributed_c10d.py\", line 1436 in all_reduce"},
			exit:  Exit{Signal: syscall.SIGKILL, Stalled: true, KilledBySupervisor: true, OOMKillDelta: 0}, want: Hang, wantRank: -1,
		},
		{
			name:  "non-zero exit with no evidence",
			lines: []string{"step 1 loss 2.0", "bye"},
			exit:  failed, want: Unknown, wantRank: -1,
		},
		{
			name:  "exit 0 is no crash whatever the log says",
			lines: []string{"RuntimeError: CUDA out of memory."},
			exit:  Exit{}, want: None, wantRank: -1,
		},
		{
			name:  "warnings are not crashes",
			lines: []string{"/usr/lib/python3/dist-packages/torch/cuda/__init__.py:88: UserWarning: CUDA initialization: CUDA driver version is insufficient for CUDA runtime version", "[W ProcessGroupNCCL.cpp:1250] Warning: WARNING: process group has NOT been destroyed before we destruct ProcessGroupNCCL.", "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0"},
			exit:  failed, want: Unknown, wantRank: -1,
		},
		{
			name:  "the traceback's final line is the cause",
			lines: []string{"Traceback (most recent call last):", "  File \"train.py\", line 3, in <module>", "    import flash_attn", "ModuleNotFoundError: No module named 'flash_attn'"},
			exit:  failed, want: ImportError, wantLine: 4, wantRank: -1,
		},
		{
			name:  "exit 137 from a wrapper shell",
			lines: []string{"step 3"},
			exit:  Exit{Code: 137, OOMKillDelta: -1}, want: HostOOM, wantRank: -1, wantInSug: "137",
		},
		{
			name:  "torchrun summary of a rank's SIGKILL",
			lines: []string{"torch.distributed.elastic.multiprocessing.api:failed (exitcode: -9) local_rank: 0 (pid: 1234) of binary: /usr/bin/python3", "  error_file: <N/A>", "  traceback : Signal 9 (SIGKILL) received by PID 1234"},
			exit:  failed, want: HostOOM, wantLine: 1, wantRank: -1, // torchrun's exitcode -9 line comes first
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := feed(tt.lines...).Verdict(tt.exit)
			in := Lookup(tt.want)
			if v.Class != tt.want || v.ExitCode != in.ExitCode || v.Retryable != in.Retryable {
				t.Fatalf("verdict %+v, want class %s (exit %d, retryable %v)", v, tt.want, in.ExitCode, in.Retryable)
			}
			if tt.wantLine != 0 && (len(v.Evidence) == 0 || v.Evidence[0].Line != tt.wantLine) {
				t.Errorf("evidence %+v, want line %d first", v.Evidence, tt.wantLine)
			}
			if tt.want != None && len(v.Evidence) == 0 && tt.exit.Signal == 0 && tt.exit.Code != 0 && len(tt.lines) > 0 {
				t.Errorf("no evidence for %s", tt.want)
			}
			switch {
			case tt.wantRank < 0 && v.Rank != nil:
				t.Errorf("rank %d, want none", *v.Rank)
			case tt.wantRank >= 0 && (v.Rank == nil || *v.Rank != tt.wantRank):
				t.Errorf("rank %v, want %d", v.Rank, tt.wantRank)
			}
			if !strings.Contains(v.Suggestion, tt.wantInSug) || !strings.Contains(v.Suggestion, in.Suggestion) {
				t.Errorf("suggestion %q, want it to contain %q and the class's own", v.Suggestion, tt.wantInSug)
			}
		})
	}
}

// TestClassesTable keeps the table in step with DESIGN.md's exit codes.
func TestClassesTable(t *testing.T) {
	all := Classes()
	if len(all) != 16 {
		t.Fatalf("%d classes, want 16", len(all))
	}
	for i, in := range all[:15] {
		if in.ExitCode != 71+i || in.Suggestion == "" {
			t.Errorf("%s: exit %d, want %d, suggestion %q", in.Class, in.ExitCode, 71+i, in.Suggestion)
		}
		if Lookup(in.Class) != in {
			t.Errorf("Lookup(%s) = %+v", in.Class, Lookup(in.Class))
		}
	}
	if Lookup("no-such-class").Class != Unknown || Lookup(None).ExitCode != 0 {
		t.Error("Lookup falls back to unknown; none is exit 0")
	}
	all[0].ExitCode = 0
	if Lookup(CudaOOM).ExitCode != 71 {
		t.Error("Classes() exposes the table itself")
	}
	for _, c := range []Class{NaNDivergence, ImportError, FileNotFound, Permission, ConfigError} {
		if Lookup(c).Retryable {
			t.Errorf("%s must not be retried", c)
		}
	}
}

// TestMemoryBounded feeds many evidence lines and checks the kept evidence stays small.
func TestMemoryBounded(t *testing.T) {
	c := New()
	long := "RuntimeError: CUDA out of memory. " + strings.Repeat("x", 1<<12)
	for i := 0; i < 10000; i++ {
		c.ObserveLine([]byte(long))
	}
	v := c.Verdict(Exit{Code: 1})
	if c.Lines() != 10000 || v.Class != CudaOOM || len(v.Evidence) > maxEvidencePerClass+1 { // the decisive line plus the first few
		t.Fatalf("lines %d, verdict %s with %d evidence lines", c.Lines(), v.Class, len(v.Evidence))
	}
	for _, e := range v.Evidence {
		if len(e.Text) > maxEvidenceText+len("…") {
			t.Errorf("evidence text of %d bytes", len(e.Text))
		}
	}
}

// TestObserveLineRetainsNothing reuses the caller's buffer and checks the evidence is a copy.
func TestObserveLineRetainsNothing(t *testing.T) {
	c := New()
	buf := []byte("torch.OutOfMemoryError: CUDA out of memory.")
	c.ObserveLine(buf)
	for i := range buf {
		buf[i] = 'x'
	}
	v := c.Verdict(Exit{Code: 1})
	if v.Evidence[0].Text != "torch.OutOfMemoryError: CUDA out of memory." {
		t.Errorf("evidence changed with the caller's buffer: %q", v.Evidence[0].Text)
	}
}

// TestHealthyLinesDoNotAllocate is the hot-path promise: no allocation per healthy line.
func TestHealthyLinesDoNotAllocate(t *testing.T) {
	c := New()
	lines := healthyLines()
	for _, l := range lines { // warm the ring's buffers
		c.ObserveLine(l)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, l := range lines {
			c.ObserveLine(l)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per pass over healthy lines, want 0", allocs)
	}
}
