package preflight

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAll runs the whole preflight as `trainwrap preflight` does, with a job
// config, a required path, a command and three 1 MB HF checkpoints, on a host without
// GPUs (the GPU check then skips after failing to load NVML). The budget is 300 ms
// per run.
func BenchmarkAll(b *testing.B) {
	dir := b.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	if err := os.MkdirAll(ckpt, 0o755); err != nil {
		b.Fatal(err)
	}
	for step := 100; step <= 300; step += 100 {
		writeHF(b, ckpt, step, 1<<20, true)
	}
	cfg := Config{
		StateDir:       filepath.Join(dir, "run"),
		CheckpointRoot: ckpt,
		MinFreeDisk:    1 * MB,
		JobConfigs:     []string{configFile("good.json"), configFile("good.yaml")},
		Require:        []string{ckpt},
		Command:        []string{"sh", "-c", "true"},
		QuietPeriod:    -1,
	}
	checks := All(cfg)
	b.ResetTimer()
	for b.Loop() {
		rep := Run(context.Background(), checks, RunOptions{})
		if f := rep.Failed(); len(f) > 0 {
			b.Fatalf("%s failed: %s", f[0].Check, f[0].Reason)
		}
	}
}
