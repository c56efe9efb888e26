package training

import (
	"testing"
	"time"
)

// The recogniser runs on every line of output; these measure it on healthy non-metric
// lines (the common case: a prefilter scan, no allocation) and on metric lines.
func BenchmarkRecognize(b *testing.B) {
	now := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	for _, c := range []struct{ name, line string }{
		{"plain", "[2024-07-17 19:44:07,540] [INFO] [checkpointing.py:546:forward] ----Profiling time in checkpointing False"},
		{"nccl", "node1:12345:12399 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/CUDA/IPC/read"},
		{"warning", "/usr/local/lib/python3.10/dist-packages/torch/utils/checkpoint.py:464: UserWarning: torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly."},
		{"hf_dict", "{'loss': 1.5214, 'grad_norm': 82.93941089686794, 'learning_rate': 1.4285714285714286e-06, 'epoch': 0.01}"},
		{"tqdm", " 83%|########3 | 100/120 [00:31<00:06,  2.95it/s]"},
		{"lightning", "Epoch 1:  39%|█████████▍              | 4846/12331 [05:59<09:15, 13.47it/s, loss=0.0136, v_num=1]"},
		{"deepspeed_overflow", "[2024-07-17 19:44:06,945] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768"},
		{"megatron", " iteration      122/  250000 | consumed samples:       124928 | elapsed time per iteration (ms): 86545.2 | learning rate: 9.150E-06 | global batch size:  1024 | lm loss: 2.504220E+00 | loss scale: 1.0 | grad norm: 0.231 | number of skipped iterations:   0 | number of nan iterations:   0 |"},
	} {
		for _, spec := range []string{"", `tokens=tokens/s: ([0-9.]+)`, `tokens=\b([0-9.]+) tok/s`} {
			b.Run(c.name+"/custom="+spec, func(b *testing.B) {
				var customs []Custom
				if spec != "" {
					c, err := ParseCustom(spec)
					if err != nil {
						b.Fatal(err)
					}
					customs = append(customs, c)
				}
				r := NewRecognizer(customs)
				line := []byte(c.line)
				dst := make([]Sample, 0, 16)
				b.ReportAllocs()
				b.SetBytes(int64(len(line)))
				for b.Loop() {
					dst = r.Recognize(dst[:0], line, 10, 1, now)
				}
			})
		}
	}
}

// BenchmarkDetectorObserve is the detector's cost per sample, on a healthy run's mix
// of loss, learning rate, throughput and step time.
func BenchmarkDetectorObserve(b *testing.B) {
	s := newSeries(1)
	s.healthy(1, 0, 2000)
	d := NewDetector(DetectorOptions{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		smp := s.samples[i%len(s.samples)]
		smp.Step += int64(i / len(s.samples) * 2000) // keep steps rising across laps
		d.Observe(smp)
		i++
	}
}
