package checkpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// manifestVersion is bumped when the sidecar format changes incompatibly; an older
// sidecar is then ignored and its checkpoint hashed afresh.
const manifestVersion = 1

// ManifestFile is one file's entry in a manifest sidecar: its stat key and hash. Path
// is byte-exact, relative to the checkpoint root as in the .xxh64 file; in JSON a
// path that is not UTF-8 also has a path_b64 field (see names.go).
type ManifestFile struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Inode   uint64 `json:"inode"`
	Device  uint64 `json:"device"`
	XXH64   string `json:"xxh64"`
}

// Manifest is the JSON sidecar of one checkpoint's .xxh64 manifest.
type Manifest struct {
	Version    int            `json:"version"`
	Root       string         `json:"root"`
	Checkpoint string         `json:"checkpoint"`
	BootID     string         `json:"boot_id"`
	HashedAt   time.Time      `json:"hashed_at"`
	Files      []ManifestFile `json:"files"`
}

// ManifestPaths returns the .xxh64 manifest and .json sidecar paths of the
// checkpoint named name (relative to its root) in dir. The manifest lists paths
// relative to the root: check it with `cd ROOT && xxh64sum -c MANIFEST`.
func ManifestPaths(dir, name string) (sums, sidecar string) {
	base := url.PathEscape(name)
	return filepath.Join(dir, base+".xxh64"), filepath.Join(dir, base+".json")
}

// readManifest loads a checkpoint's sidecar; a missing or unreadable one is nil, and
// the checkpoint is hashed afresh. So is one that disagrees with its .xxh64 file: a
// crash between writing the two, or a sidecar from before names were kept byte-exact,
// whose non-UTF-8 names JSON had turned into U+FFFD.
func readManifest(dir, name string) *Manifest {
	sums, side := ManifestPaths(dir, name)
	var m Manifest
	if err := readJSONFile(side, &m); err != nil || m.Version != manifestVersion {
		return nil
	}
	b, err := os.ReadFile(sums)
	if err != nil {
		return nil
	}
	lines, err := parseSums(b)
	if err != nil || len(lines) != len(m.Files) {
		return nil
	}
	for i, l := range lines {
		if l.Path != m.Files[i].Path || l.XXH64 != m.Files[i].XXH64 {
			return nil
		}
	}
	return &m
}

// writeManifest writes one checkpoint's manifest; see writeManifests.
func writeManifest(dir string, m *Manifest) error {
	return writeManifests(dir, []*Manifest{m})
}

// syncWorkers is how many fsyncs run at once: enough for the filesystem journal to
// commit them as a group (on ext4, 300 small fsyncs took 620 ms one after another and
// 55 ms 64 at a time), few enough threads blocked in the kernel.
const syncWorkers = 64

// writeManifests writes each manifest's .xxh64 file and sidecar through temporary
// files and renames, .xxh64 first, then fsyncs the directory once. Only the sidecar is
// fsynced before its rename: readManifest accepts a pair only when the .xxh64 file
// agrees with the sidecar line by line, so a crash that loses or truncates an
// un-fsynced .xxh64 file leaves a pair that is ignored and hashed afresh, never a
// stale manifest that is believed. One fsync per manifest instead of four, run in
// parallel, after every temporary file is written: creating files while fsyncs are
// forcing journal commits makes each create wait for one.
func writeManifests(dir string, ms []*Manifest) (err error) {
	if len(ms) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoints: manifest dir %s: %w", dir, err)
	}
	var files []pendingFile // per manifest: .xxh64, then sidecar
	defer func() {
		if err != nil {
			for _, p := range files {
				os.Remove(p.tmp) // a no-op for those already renamed
			}
		}
	}()
	for _, m := range ms {
		sums, side := ManifestPaths(dir, m.Checkpoint)
		p, err := writeTemp(dir, sums, formatSums(m.Files))
		if err != nil {
			return err
		}
		files = append(files, p)
		js, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("checkpoints: manifest %s: %w", side, err)
		}
		if p, err = writeTemp(dir, side, append(js, '\n')); err != nil {
			return err
		}
		files = append(files, p)
	}
	errs := make([]error, len(ms))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(syncWorkers, len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = syncPath(files[2*i+1].tmp)
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, p := range files {
		if err := os.Rename(p.tmp, p.path); err != nil {
			return fmt.Errorf("checkpoints: manifest: %w", err)
		}
	}
	// Best effort, as in rundir.WriteFileAtomic: the renames are already visible, and
	// some filesystems refuse to fsync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// pendingFile is a written temporary file that becomes path on rename.
type pendingFile struct{ tmp, path string }

// writeTemp writes data to a temporary sibling of path, through a raw descriptor as
// in hashOne (an *os.File costs five more calls per open), and closes it.
func writeTemp(dir, path string, data []byte) (pendingFile, error) {
	// CreateTemp's 0600 would need a chmod per file; O_EXCL with the mode wanted is
	// one call, and the pid keeps two passes from sharing a name.
	tmp := fmt.Sprintf("%s/.%s.tmp-%d", dir, filepath.Base(path), os.Getpid())
	open := func() (int, error) {
		return unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	}
	fd, err := open()
	if err == unix.EEXIST {
		// Left by a pass that crashed with this pid: ours to replace.
		if err = unix.Unlink(tmp); err == nil {
			fd, err = open()
		}
	}
	if err != nil {
		return pendingFile{}, fmt.Errorf("checkpoints: manifest %s: %w", tmp, err)
	}
	p := pendingFile{tmp: tmp, path: path}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			unix.Unlink(tmp)
			return pendingFile{}, fmt.Errorf("checkpoints: manifest %s: %w", tmp, err)
		}
		data = data[n:]
	}
	if err := unix.Close(fd); err != nil {
		unix.Unlink(tmp)
		return pendingFile{}, fmt.Errorf("checkpoints: manifest %s: %w", tmp, err)
	}
	return p, nil
}

// syncPath fsyncs the file at path through a new descriptor: fsync flushes the file,
// whichever descriptor asks, and the files need not all stay open meanwhile.
func syncPath(path string) error {
	fd, err := openRead(path)
	if err != nil {
		return fmt.Errorf("checkpoints: manifest: fsync: %w", err)
	}
	defer unix.Close(fd)
	for {
		err := unix.Fsync(fd)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("checkpoints: manifest %s: fsync: %w", path, err)
		}
		return nil
	}
}

// bootID identifies this boot of the kernel; files hashed under another boot may have
// lost unwritten pages in a crash without an mtime change, so they are read again.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// removeManifest deletes a pruned checkpoint's manifest; a missing one is fine.
func removeManifest(dir, name string) error {
	sums, side := ManifestPaths(dir, name)
	for _, p := range []string{sums, side} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoints: remove manifest %s: %w", p, err)
		}
	}
	return nil
}
