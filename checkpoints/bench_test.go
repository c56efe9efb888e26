package checkpoints

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// benchFile writes size bytes of random data and reads it once, so the page cache is
// warm, as it is when the job has just written a checkpoint.
func benchFile(b *testing.B, size int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "shard.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	if _, err := io.CopyN(f, rng, int64(size)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if _, _, err := HashFile(p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkHashFile compares hashing a 256 MiB file with only reading it (what
// `cat FILE >/dev/null` does, with cat's 128 KiB buffer) and with xxh64 alone over a
// buffer already in memory, the ceiling of hashing on one core; bench/checkpoints.sh
// compares against cat and xxh64sum themselves.
func BenchmarkHashFile(b *testing.B) {
	const size = 256 << 20
	p := benchFile(b, size)
	b.Run("xxh64", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, _, err := HashFile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-only", func(b *testing.B) {
		b.SetBytes(size)
		buf := make([]byte, 128<<10)
		for b.Loop() {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			// Both wrapped: io.Discard's ReadFrom would read with its own 8 KiB buffer.
			if _, err := io.CopyBuffer(onlyWriter{io.Discard}, onlyReader{f}, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("sum64-in-memory", func(b *testing.B) {
		buf := make([]byte, hashBlock)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.SetBytes(hashBlock)
		for b.Loop() {
			xxhash.Sum64(buf)
		}
	})
}

// onlyWriter hides ReaderFrom, for the same reason.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// onlyReader hides WriterTo/ReaderFrom so io.CopyBuffer uses the given buffer, as cat
// uses its own.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// BenchmarkReverifyUnchanged verifies an unchanged 10-file checkpoint against its
// manifest: it must open no file (files_opened/op is 0), only stat them.
func BenchmarkReverifyUnchanged(b *testing.B) {
	root, mdir := b.TempDir(), b.TempDir()
	dir := filepath.Join(root, "step_10")
	// The files whose structure Scan checks, so that skipping them shows.
	for i := range 8 {
		writeFile(b, filepath.Join(dir, "shard"+string(rune('a'+i))+".safetensors"), safetensorsBytes(b, 1<<18))
	}
	writeFile(b, filepath.Join(dir, "optim.pt"), torchBytes(b, "optim", map[string]any{"step": int64(10)}))
	writeFile(b, filepath.Join(dir, "state.json"), []byte(`{"step": 10}`))
	opt := ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true, ManifestDir: mdir, racy: time.Nanosecond}
	if _, _, err := Hash(b.Context(), root, mdir, opt, HashOptions{racy: time.Nanosecond}); err != nil {
		b.Fatal(err)
	}
	reads := 0
	for b.Loop() {
		res, err := scan(b.Context(), root, opt)
		if err != nil {
			b.Fatal(err)
		}
		if res.cands[0].Status != StatusComplete {
			b.Fatalf("not complete: %s", res.cands[0].Checkpoint)
		}
		reads += res.reads + res.opened
	}
	b.ReportMetric(float64(reads)/float64(b.N), "files_opened/op")
	if reads != 0 {
		b.Fatalf("re-verify read %d files", reads)
	}
}

// BenchmarkHashPrunePass1000 is bench/checkpoints.sh's last row in-process: one hash
// and one prune pass (keep 3) over 1000 fresh two-file DCP checkpoints, as the CLI's
// `checkpoints hash` then `checkpoints prune --yes` run them.
func BenchmarkHashPrunePass1000(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		root, mdir := b.TempDir(), b.TempDir()
		for i := range 1000 {
			dir := filepath.Join(root, "step_"+strconv.Itoa(i+1))
			writeFile(b, filepath.Join(dir, "__0_0.distcp"), []byte("weights "+strconv.Itoa(i)))
			writeFile(b, filepath.Join(dir, ".metadata"), []byte("m\n"))
		}
		b.StartTimer()
		sopt := ScanOptions{QuietPeriod: -1}
		if _, _, err := Hash(b.Context(), root, mdir, sopt, HashOptions{}); err != nil {
			b.Fatal(err)
		}
		rep, err := Maintain(b.Context(), MaintainOptions{Root: root, ManifestDir: mdir, Keep: 3, QuietPeriod: -1})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Pruned) != 997 {
			b.Fatalf("pruned %d, want 997: %v", len(rep.Pruned), rep.Notes)
		}
	}
}
