package checkpoints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A file whose stat key changed in any of its parts is read again, and only that
// file; a change of content is reported, a change of stat alone is not. After the
// re-hash the manifest holds the new key, so the pass after reads nothing.
func TestHashRereadsChangedFile(t *testing.T) {
	const name = "model.safetensors"
	flip := func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0xff // the last tensor byte: the header stays valid
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b[len(b)-1:], int64(len(b)-1)); err != nil {
			t.Fatal(err)
		}
	}
	// Another mtime, in the past: one in the future would stay racily clean.
	retime := func(t *testing.T, p string) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, info.ModTime().Add(-time.Second), info.ModTime().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	keepMtime := func(t *testing.T, p string, change func()) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		change()
		if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		change   func(t *testing.T, p string)
		mismatch string // "" when the content is unchanged
	}{
		{"same size, new content, new mtime", func(t *testing.T, p string) { flip(t, p); retime(t, p) }, "rewritten since it was hashed"},
		{"same size and mtime, new content: only ctime tells", func(t *testing.T, p string) {
			keepMtime(t, p, func() { flip(t, p) })
		}, "rewritten since it was hashed"},
		{"touched: new mtime, same content", retime, ""},
		{"chmod: new ctime only", func(t *testing.T, p string) {
			if err := os.Chmod(p, 0o640); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"replaced by a copy: new inode, same size, mtime and content", func(t *testing.T, p string) {
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tmp := p + ".new"
			writeFile(t, tmp, b)
			if err := os.Chtimes(tmp, info.ModTime(), info.ModTime()); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, mdir := t.TempDir(), t.TempDir()
			dir := writeHF(t, root, 100, hfOpts{})
			_, first, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
			if err != nil {
				t.Fatal(err)
			}
			files := first[0].Files
			tc.change(t, filepath.Join(dir, name))
			_, again, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 1 || again[0].Read != 1 || again[0].Reused != files-1 {
				t.Fatalf("after the change: %+v, want %s alone read again", again, name)
			}
			got := strings.Join(again[0].Mismatch, "; ")
			if tc.mismatch == "" && got != "" {
				t.Fatalf("content unchanged, yet mismatch %q", got)
			}
			if tc.mismatch != "" && (!strings.HasPrefix(got, name+": xxh64") || !strings.HasSuffix(got, tc.mismatch)) {
				t.Fatalf("mismatch %q, want %s reported as %q", got, name, tc.mismatch)
			}
			if tc.mismatch != "" {
				return // the old manifest is kept as evidence, as TestHashIncrementalAndCorruption checks
			}
			_, third, err := Hash(t.Context(), root, mdir, noQuiet, testHash)
			if err != nil {
				t.Fatal(err)
			}
			if third[0].Read != 0 || third[0].Reused != files {
				t.Fatalf("the pass after the re-hash: %+v, want nothing read", third[0])
			}
		})
	}
}

// A pass that finds nothing new does not rewrite the manifest (an fsync per
// checkpoint per pass); one that only moves files out of the racily-clean window
// does, so that the pass after may trust them.
func TestHashRewritesManifestOnlyWhenItSaysMore(t *testing.T) {
	root, mdir := t.TempDir(), t.TempDir()
	writeHF(t, root, 100, hfOpts{})
	_, side := ManifestPaths(mdir, "checkpoint-100")
	ino := func() uint64 {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(side, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	// The files were written just now: within an hour's window they are racily clean
	// under this manifest and under the next, which therefore says nothing more.
	racy := HashOptions{racy: time.Hour}
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, racy); err != nil {
		t.Fatal(err)
	}
	before := ino()
	_, again, err := Hash(t.Context(), root, mdir, noQuiet, racy)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Read != again[0].Files {
		t.Fatalf("racily clean files not re-read: %+v", again[0])
	}
	if ino() != before {
		t.Fatal("a manifest that says nothing new was rewritten")
	}
	// A window as long as the first hash came after the last change: under the first
	// hash time some file is racily clean, under the next one none is. That is worth
	// writing, and the pass after reads nothing.
	m := readManifest(mdir, "checkpoint-100")
	var last int64
	for _, f := range m.Files {
		last = max(last, f.MtimeNS, f.CtimeNS)
	}
	window := HashOptions{racy: m.HashedAt.Sub(time.Unix(0, last))}
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, window); err != nil {
		t.Fatal(err)
	}
	if ino() == before {
		t.Fatal("a manifest whose later hash time lets its files be trusted was not rewritten")
	}
	_, third, err := Hash(t.Context(), root, mdir, noQuiet, window)
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Read != 0 {
		t.Fatalf("files out of the window were read again: %+v", third[0])
	}
}

// unreadableRootEnv, in a re-executed test binary, names the checkpoint root that
// process must hash and prune without reading a file; the process runs as a user
// who may stat the files but not open them.
const unreadableRootEnv = "CHECKPOINTS_TEST_UNREADABLE_ROOT"

// trustNow is noQuiet whose manifest trust skips the racily-clean wait.
var trustNow = ScanOptions{QuietPeriod: -1, IgnoreOpenFiles: true, racy: time.Nanosecond}

// An unchanged, hashed checkpoint is neither hashed nor structure-checked again by
// Hash or Maintain: proven by a second pass, as another user, over files that user
// cannot open. Any read would fail with EACCES and show as an error or an
// incomplete checkpoint.
func TestHashUnchangedOpensNoFile(t *testing.T) {
	if root := os.Getenv(unreadableRootEnv); root != "" {
		unreadablePass(t, root)
		return
	}
	if os.Geteuid() != 0 {
		// As an ordinary user a file can be made unreadable only by chmod, which
		// changes its ctime and so its stat key. TestHashIncrementalAndCorruption
		// checks the same by the read counters.
		t.Skip("needs root, to run the second pass as another user")
	}
	top := t.TempDir()
	root, mdir := filepath.Join(top, "root"), filepath.Join(top, "manifests")
	for _, s := range []int64{100, 200} {
		writeHF(t, root, s, hfOpts{sharded: true})
		writeDCP(t, filepath.Join(root, "dcp", fmt.Sprintf("step_%d", s)), 2)
	}
	if _, _, err := Hash(t.Context(), root, mdir, noQuiet, testHash); err != nil {
		t.Fatal(err)
	}
	// Directories searchable by all, files readable by their owner (root) alone, but
	// for the manifests and HF's trainer_state.json, which every scan reads to find
	// the best checkpoint (a framework record, not checkpoint data).
	if err := filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o755
		} else if strings.HasPrefix(p, mdir) || d.Name() == "trainer_state.json" {
			mode = 0o644
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	// Chmod changed every ctime: hash once more, as root, so the manifests hold the
	// keys the other user will see.
	if _, again, err := Hash(t.Context(), root, mdir, trustNow, testHash); err != nil || len(again) != 4 {
		t.Fatalf("re-hash after chmod: %+v, %v", again, err)
	}
	if err := os.Chmod(filepath.Dir(top), 0o755); err != nil { // t.TempDir's parent is 0700
		t.Fatal(err)
	}
	// The test binary may sit in a directory only root can search: run a copy.
	exe := filepath.Join(top, "checkpoints.test")
	copyFile(t, os.Args[0], exe, 0o755)
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestHashUnchangedOpensNoFile$", "-test.v")
	cmd.Env = append(os.Environ(), unreadableRootEnv+"="+root, "CHECKPOINTS_TEST_MANIFESTS="+mdir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "unreadable pass: ok") {
		t.Fatalf("second pass as another user: %v\n%s", err, out)
	}
}

// unreadablePass is the re-executed half of TestHashUnchangedOpensNoFile.
func unreadablePass(t *testing.T, root string) {
	mdir := os.Getenv("CHECKPOINTS_TEST_MANIFESTS")
	// The control: this user really cannot read the checkpoint files.
	probe := filepath.Join(root, "checkpoint-100", "config.json")
	if _, err := os.ReadFile(probe); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("reading %s as uid %d: %v, want permission denied", probe, os.Geteuid(), err)
	}
	list, results, err := Hash(t.Context(), root, mdir, trustNow, testHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.Status != StatusComplete {
			t.Errorf("%s: %s, want complete without reading", c.Name, c)
		}
	}
	for _, r := range results {
		if r.Read != 0 || r.Reused != r.Files || len(r.Mismatch) > 0 {
			t.Errorf("hash: %+v, want nothing read", r)
		}
	}
	if len(results) != 4 {
		t.Errorf("hashed %d checkpoints, want 4", len(results))
	}
	rep, err := Maintain(context.Background(), MaintainOptions{Root: root, ManifestDir: mdir, Keep: -1, QuietPeriod: -1, racy: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checkpoints {
		if c.Status != StatusComplete {
			t.Errorf("maintain: %s: %s, want complete without reading", c.Name, c)
		}
	}
	if len(rep.Pruned)+len(rep.Quarantined)+len(rep.Corrupt) > 0 {
		b, _ := json.Marshal(rep)
		t.Errorf("maintain acted: %s", b)
	}
	if !t.Failed() {
		t.Log("unreadable pass: ok")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// With DropCache, a file hashing brought into the page cache is evicted after, and a
// file that was cached before (a checkpoint just written, or about to be loaded)
// keeps its pages.
func TestHashDropCacheEvictsOnlyWhatItReadIn(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "shard.bin")
	writeFile(t, p, make([]byte, 4*hashBufSize))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size := int64(4 * hashBufSize)
	evict := func() {
		t.Helper()
		if err := f.Sync(); err != nil { // dirty pages cannot be dropped
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
	}
	evict()
	if cached(f, size) {
		t.Skip("this filesystem keeps pages after FADV_DONTNEED (tmpfs?): nothing to observe")
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	fi := fileInfo{rel: "shard.bin", path: p, size: info.Size(), mtime: info.ModTime()}
	k := statKey(info)
	fi.ctime, fi.ino, fi.dev = time.Unix(0, k.ctime), k.ino, k.dev
	buf := make([]byte, hashBufSize)
	if _, _, err := hashOne(t.Context(), fi, buf, true); err != nil {
		t.Fatal(err)
	}
	if cached(f, size) {
		t.Fatal("a file that was not cached stayed cached after hashing with DropCache")
	}
	if _, err := io.Copy(io.Discard, io.NewSectionReader(f, 0, size)); err != nil {
		t.Fatal(err)
	}
	if !cached(f, size) {
		t.Fatal("a file just read is not reported cached: the check is not checking")
	}
	if _, _, err := hashOne(t.Context(), fi, buf, true); err != nil {
		t.Fatal(err)
	}
	if !cached(f, size) {
		t.Fatal("a file that was cached before was evicted by hashing with DropCache")
	}
}
