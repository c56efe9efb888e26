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

// ManifestFile is one file's entry in a manifest sidecar: its stat key and hash.
type ManifestFile struct {
	Path    string `json:"path"` // relative to the checkpoint root, as in the .xxh64 file
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
// the checkpoint is hashed afresh.
func readManifest(dir, name string) *Manifest {
	_, side := ManifestPaths(dir, name)
	var m Manifest
	if err := readJSONFile(side, &m); err != nil || m.Version != manifestVersion {
		return nil
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
	var b strings.Builder
	for _, f := range m.Files {
		if strings.ContainsAny(f.Path, "\n\\") {
			// xxh64sum escapes such names in a way older versions do not read back.
			return fmt.Errorf("checkpoints: manifest: file name %q cannot be written to an xxh64sum manifest", f.Path)
		}
		fmt.Fprintf(&b, "%s  %s\n", f.XXH64, f.Path)
	}
	if err := rundir.WriteFileAtomic(sums, []byte(b.String()), 0o644); err != nil {
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
