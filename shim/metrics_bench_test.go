package shim

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"

	"github.com/trainwrap/trainwrap/training"
)

// BenchmarkTeeMetrics is BenchmarkTee on the chaos trainer's output, where every line
// but the banner's holds a metric (the worst case), with and without the metrics
// recogniser on the segment path. The loop's side (series, detector) is not on the
// output path; a goroutine takes the samples as the loop would.
func BenchmarkTeeMetrics(b *testing.B) {
	lines := []string{
		"global_step=41 loss=0.5324 samples_per_second=8032.6\n",
		"{'loss': 0.5324, 'grad_norm': 1.2922, 'learning_rate': 5e-05, 'epoch': 0.83}\n",
		"[2026-12-02 04:30:51,123] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768\n",
		"Saving model checkpoint to out/checkpoint-40\n",
	}
	var one []byte
	for _, l := range lines {
		one = append(one, l...)
	}
	data := bytes.Repeat(one, (4<<20)/len(one))
	for _, withMetrics := range []bool{false, true} {
		name := "without"
		if withMetrics {
			name = "with-recognizer"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var step atomic.Int64
			stepObs := LineObserverFunc(func(l []byte) {
				if v, ok := builtinStep(l); ok {
					step.Store(v)
				}
			})
			var samples int
			for i := 0; i < b.N; i++ {
				t := newTee(io.Discard, 1, nil)
				t.segments = stepObs
				var tap *metricsTap
				done := make(chan struct{})
				if withMetrics {
					tap = newMetricsTap(training.NewRecognizer(nil), &step, &t.lastOutput, 1)
					t.segments = segmentTap{step: stepObs, metrics: tap}
					go func() {
						defer close(done)
						for range tap.ready {
							got, _ := tap.take()
							samples += len(got)
						}
					}()
				}
				t.pump(bytes.NewReader(data), io.Discard)
				if tap != nil {
					close(tap.ready)
					<-done
				}
			}
			if withMetrics && samples == 0 {
				b.Fatal("the recogniser found no samples")
			}
		})
	}
}
