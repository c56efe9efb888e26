package checkpoints

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
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

// writeManifest writes the .xxh64 file then the sidecar, each atomically; the sidecar
// last, so a crash between them leaves an old sidecar that no longer matches and is
// simply redone.
func writeManifest(dir string, m *Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoints: manifest dir %s: %w", dir, err)
	}
	sums, side := ManifestPaths(dir, m.Checkpoint)
	b := formatSums(m.Files)
	if err := rundir.WriteFileAtomic(sums, b, 0o644); err != nil {
		return fmt.Errorf("checkpoints: manifest: %w", err)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoints: manifest: %w", err)
	}
	if err := rundir.WriteFileAtomic(side, append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("checkpoints: manifest: %w", err)
	}
	return nil
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
