package classify

import (
	"bytes"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzObserveLine feeds arbitrary bytes, split into lines, and checks that nothing
// panics, the verdict is always a known class, and evidence stays bounded.
func FuzzObserveLine(f *testing.F) {
	for _, s := range []string{
		"",
		"\r\r\r",
		"\x1b[31m\x1b[",
		"[rank3]: torch.OutOfMemoryError: CUDA out of memory.",
		"[1,0]<stderr>:RuntimeError: NCCL error",
		"> > 2026-11-28T23:57:10.123Z 7: MemoryError",
		"RuntimeError: DataLoader worker (pid 1) is killed by signal: Killed.",
		"CUDA error: an illegal memory access was encountered (see previous error)",
		"[rank999999999999]: x",
		"2026-11-28 23:57:10,\xff\xfe ValueError: x",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, sig uint8) {
		c := New()
		for _, line := range bytes.Split(data, []byte("\n")) {
			if automatonFinds(c.a, line) && !c.a.grams.mayMatch(line) {
				t.Fatalf("the prefilter drops %q", line)
			}
			c.ObserveLine(line)
		}
		v := c.Verdict(Exit{Code: 1, Signal: syscall.Signal(sig % 32), OOMKillDelta: -1})
		if Lookup(v.Class).Class != v.Class || v.Class == None {
			t.Fatalf("verdict class %q for a failed exit", v.Class)
		}
		if len(v.Evidence) > 2*maxEvidencePerClass+3 {
			t.Fatalf("%d evidence lines", len(v.Evidence))
		}
		_ = c.FromLog()
	})
}

// TestObserveLineLinear checks that the cost of a line grows linearly with its length,
// also for lines built to stress normalisation (prefixes, escapes, carriage returns).
// The cost is the CPU time of the test's own thread, not the wall clock: other load on
// the machine preempts the thread but adds nothing to it.
func TestObserveLineLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	patterns := map[string]string{
		"carriage returns": "\r",
		"escapes":          "\x1b[1;31m",
		"quotes":           "> ",
		"rank prefixes":    "[rank1]:",
		"near-literals":    "CUDA erro",
		"trigger words":    "CUDA error: ",
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cost := func(line []byte) time.Duration {
		best := time.Duration(1 << 62)
		for range 5 {
			c := New()
			start := threadCPU(t)
			for range 4 {
				c.ObserveLine(line)
			}
			best = min(best, threadCPU(t)-start)
		}
		return best
	}
	for name, p := range patterns {
		small := bytes.Repeat([]byte(p), 1<<12/len(p))
		big := bytes.Repeat([]byte(p), 1<<16/len(p))
		cs, cb := cost(small), cost(big)
		// 16x the input; allow 64x the time for the clock's granularity, far below
		// quadratic's 256x.
		if cb > 64*cs && cb > 2*time.Millisecond {
			t.Errorf("%s: %d bytes took %v, %d bytes %v of CPU: not linear", name, len(small), cs, len(big), cb)
		}
	}
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU(t *testing.T) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
