package chaos

import (
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkWriteCheckpoint measures one HF checkpoint (safetensors weights, two torch
// zips, JSON, each fsynced): the trainer's cost per --save-steps.
func BenchmarkWriteCheckpoint(b *testing.B) {
	dir := b.TempDir()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cw := checkpointWriter{
			dir:   filepath.Join(dir, "checkpoint-"+strconv.Itoa(i)),
			step:  i,
			state: trainerState{GlobalStep: i, MaxSteps: 60, SaveSteps: 10},
		}
		if err := cw.write(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModelTensors measures building the fake weights, the CPU part of a save.
func BenchmarkModelTensors(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(modelTensors(30)) == 0 {
			b.Fatal("no tensors")
		}
	}
}
