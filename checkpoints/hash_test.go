package checkpoints

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/trainwrap/trainwrap/internal/testkit"
)

// testHash skips the racily-clean wait: fixtures were written a moment ago.
var testHash = HashOptions{racy: time.Nanosecond}

func TestHashFileMatchesXXH64Sum(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hello")
	writeFile(t, p, []byte("hello"))
	sum, n, err := HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if sum != "26c7827d889f6da3" || n != 5 {
		t.Fatalf("HashFile(hello) = %s, %d; want 26c7827d889f6da3 (xxh64sum's output), 5", sum, n)
	}
}

// Files larger than the read buffer hash the same as hashing them in memory: the
// pipelined reader must not mix its blocks up.
func TestHashFileLargerThanBuffer(t *testing.T) {
	for _, size := range []int{0, 1, hashBufSize/pipelineDepth - 1, hashBufSize + 12345, 6*hashBufSize + 7} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*131 + i>>9)
		}
		p := filepath.Join(t.TempDir(), "f")
		writeFile(t, p, data)
		sum, n, err := HashFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := hex16(xxhash.Sum64(data)); sum != want || n != int64(size) {
			t.Errorf("size %d: HashFile = %s, %d; want %s", size, sum, n, want)
		}
	}
}

// The manifest is what `xxh64sum -c` checks, run from the root; the sidecar has the
// stat keys and boot id.
func TestManifestVerifiesWithXXH64Sum(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	writeHF(t, root, 100, hfOpts{sharded: true})
	writeFile(t, filepath.Join(root, "lightning_logs/version_0/checkpoints/epoch=1-step=7.ckpt"), torchBytes(t, "archive", map[string]any{"global_step": int64(7)}))
	list, results, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("hashed %d checkpoints, want 2: %+v", len(results), list)
	}
	for _, name := range []string{"checkpoint-100", "lightning_logs/version_0/checkpoints/epoch=1-step=7.ckpt"} {
		sums, side := ManifestPaths(mdir, name)
		b, err := os.ReadFile(sums)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			sum, rel, ok := strings.Cut(line, "  ")
			if !ok {
				t.Fatalf("bad manifest line %q", line)
			}
			data, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil {
				t.Fatalf("manifest path %q: %v", rel, err)
			}
			if want := strings.ToLower(strings.TrimLeft(sum, " ")); want != hex16(xxhash.Sum64(data)) {
				t.Errorf("%s: manifest %s, content %s", rel, sum, hex16(xxhash.Sum64(data)))
			}
		}
		m := readManifest(mdir, name)
		if m == nil || m.BootID != bootID() || len(m.Files) == 0 || m.Files[0].Inode == 0 || m.Files[0].MtimeNS == 0 {
			t.Errorf("sidecar %s incomplete: %+v", side, m)
		}
		tool := testkit.WantTool(t, "xxh64sum", "xxhash")
		if tool == "" {
			continue
		}
		cmd := exec.Command(tool, "-c", sums)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("xxh64sum -c %s: %v\n%s", sums, err, out)
		}
		if !strings.Contains(string(out), ": OK") || strings.Contains(string(out), "FAILED") {
			t.Fatalf("xxh64sum -c output:\n%s", out)
		}
	}
}

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b)
}

// The second hash of an unchanged checkpoint reads nothing; a changed file is read
// again, and a flipped byte is reported whether or not its stat changed.
func TestHashIncrementalAndCorruption(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	dir := writeHF(t, root, 100, hfOpts{})
	_, first, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
	if err != nil {
		t.Fatal(err)
	}
	files := first[0].Files
	if first[0].Read != files || first[0].Reused != 0 {
		t.Fatalf("first hash: %+v, want every file read", first[0])
	}
	_, again, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Read != 0 || again[0].Reused != files || again[0].BytesRead != 0 {
		t.Fatalf("unchanged checkpoint re-hashed: %+v, want 0 reads, %d reused", again[0], files)
	}
	// Scan's manifest check of an unchanged checkpoint costs stat calls only.
	res, err := scan(t.Context(), root, ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true, ManifestDir: mdir, racy: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.reads != 0 || res.opened != 0 || res.cands[0].Status != StatusComplete {
		t.Fatalf("verify read %d and opened %d files (want 0): %s", res.reads, res.opened, res.cands[0].Checkpoint)
	}
	// Without a manifest the same scan opens every file it can check.
	res, err = scan(t.Context(), root, noQuiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.opened == 0 {
		t.Fatal("scan without a manifest opened no file: the count is not counting")
	}

	// Bit rot: one byte flipped in place, with mtime put back. Only ctime tells, and
	// a full re-read must find it even if stat were unchanged.
	p := filepath.Join(dir, "model.safetensors")
	info, _ := os.Stat(p)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, info.Size()-3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		c := scanOne(t, root, "checkpoint-100", ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true, ManifestDir: mdir, Full: full, racy: time.Nanosecond})
		if c.Status != StatusIncomplete || !strings.Contains(c.Reason, "corrupt: model.safetensors: xxh64") {
			t.Fatalf("full=%v: got %q, want the flipped byte reported", full, c)
		}
	}
	_, bad, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || len(bad[0].Mismatch) != 1 || bad[0].Read != 1 {
		t.Fatalf("hash after the flip: %+v, want one file read and one mismatch", bad)
	}
	// The old manifest is kept as evidence: the mismatch is still reported next time.
	_, bad, _ = Hash(t.Context(), root, mdir, noQuiet, testHash)
	if len(bad) != 1 || len(bad[0].Mismatch) != 1 {
		t.Fatalf("mismatch forgotten: %+v", bad)
	}

	// Maintain reports it as corrupt and does not resume from it.
	writeHF(t, root, 50, hfOpts{})
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, ManifestDir: mdir, QuietPeriod: -1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || rep.Corrupt[0] != "checkpoint-100" || rep.Resume == nil || rep.Resume.Name != "checkpoint-50" {
		t.Fatalf("corrupt %v resume %+v; want checkpoint-100 corrupt, resume checkpoint-50", rep.Corrupt, rep.Resume)
	}
}

// A file written within the racily-clean window is read again even though its stat
// key matches: a write in the same timestamp tick would not change it.
func TestHashRacilyClean(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	opt := HashOptions{racy: time.Hour}
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, opt); err != nil {
		t.Fatal(err)
	}
	_, again, err := Hash(t.Context(), root, mdir, noQuiet, opt)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Reused != 0 || again[0].Read != again[0].Files {
		t.Fatalf("racily clean files reused: %+v", again[0])
	}
}

// A manifest from another boot is not trusted: files are read again.
func TestHashOtherBoot(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, testHash); err != nil {
		t.Fatal(err)
	}
	m := readManifest(mdir, "checkpoint-100")
	m.BootID = "another-boot"
	if err := writeManifest(mdir, m); err != nil {
		t.Fatal(err)
	}
	_, again, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Reused != 0 {
		t.Fatalf("files hashed under another boot reused: %+v", again[0])
	}
}

// Pruning removes the manifests of what it deleted.
func TestPruneRemovesManifests(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	for _, s := range []int64{1, 2} {
		writeHF(t, root, s, hfOpts{})
	}
	rep, err := Maintain(t.Context(), MaintainOptions{Root: root, ManifestDir: mdir, Keep: 1, QuietPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Hashed) != 2 || len(rep.Pruned) != 1 {
		t.Fatalf("hashed %d pruned %v", len(rep.Hashed), rep.Pruned)
	}
	sums, side := ManifestPaths(mdir, "checkpoint-1")
	if exists(sums) || exists(side) {
		t.Error("manifest of the pruned checkpoint left behind")
	}
	if sums, _ := ManifestPaths(mdir, "checkpoint-2"); !exists(sums) {
		t.Error("manifest of the kept checkpoint missing")
	}
}

// A cancelled hash returns promptly with the context's error and leaks no reader.
func TestHashReaderCancel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	writeFile(t, p, make([]byte, 64<<20))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := hashReader(ctx, f, make([]byte, hashBufSize)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
