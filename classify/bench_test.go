package classify

import (
	"bytes"
	"testing"
)

// BenchmarkHealthy is the hot path: typical healthy training output (HF loss dicts,
// \r-rewritten tqdm bars, logging lines, Lightning bars with rank prefixes, warnings).
func BenchmarkHealthy(b *testing.B) {
	lines := healthyLines()
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	c := New()
	b.SetBytes(n)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, l := range lines {
			c.ObserveLine(l)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(len(lines))), "ns/line")
}

// BenchmarkCrash is a run that dies: healthy output then a CUDA OOM traceback and NCCL
// watchdog timeouts on other ranks, and the verdict.
func BenchmarkCrash(b *testing.B) {
	lines := healthyLines()
	crash := bytes.Split([]byte(`[rank1]: Traceback (most recent call last):
[rank1]:   File "train.py", line 88, in <module>
[rank1]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 79.15 GiB of which 1.10 GiB is free.
[rank0]:[E321 02:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE) ran for 600060 milliseconds before timing out.`), []byte("\n"))
	lines = append(lines, crash...)
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for range b.N {
		c := New()
		for _, l := range lines {
			c.ObserveLine(l)
		}
		if v := c.Verdict(Exit{Code: 1}); v.Class != CudaOOM {
			b.Fatalf("verdict %s", v.Class)
		}
	}
}
