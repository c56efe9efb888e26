package checkpoints

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultKeep is how many complete checkpoints pruning keeps when not told.
const DefaultKeep = 3

// Names of trainwrap's folders inside <root>/.trainwrap.
const (
	QuarantineDir = "quarantine"
	TrashDir      = "trash"
)

// action is one planned move of a checkpoint.
type action struct {
	c    *candidate
	dest string // QuarantineDir or TrashDir
	why  string
}

// plan decides what pruning does: the newest keep complete checkpoints stay, as do
// the resume point, the best one, every pointer target and anything in progress;
// incomplete ones newer than the resume point go to quarantine (or the trash with
// deleteIncomplete).
func plan(cands []*candidate, resume *candidate, keep int, deleteIncomplete bool) []action {
	var complete []*candidate
	for _, c := range cands {
		if c.Status == StatusComplete && c.Step >= 0 {
			complete = append(complete, c)
		}
	}
	sort.SliceStable(complete, func(i, j int) bool { return complete[i].Step > complete[j].Step })
	var out []action
	for i, c := range complete {
		if i < keep || c == resume || c.Best || c.Pinned {
			continue
		}
		out = append(out, action{c, TrashDir, fmt.Sprintf("beyond the newest %d complete", keep)})
	}
	for _, c := range cands {
		if c.Status != StatusIncomplete || c.unreadable {
			continue
		}
		switch {
		case deleteIncomplete && !c.Best && !(c.Pinned && resume == nil):
			// Never delete the best one: older transformers crash when it is missing.
			out = append(out, action{c, TrashDir, "incomplete: " + c.Reason})
		case c.Pinned && resume == nil:
			// A pointer names it and there is nothing to point at instead.
		case resume == nil || c.Step > resume.Step:
			out = append(out, action{c, QuarantineDir, "incomplete: " + c.Reason})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].c.Step < out[j].c.Step })
	return out
}

// freeBytes is the space available to unprivileged users on dir's filesystem.
func freeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// within reports whether p lies strictly inside root.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// openFilesMaxAge is how old the /proc scan that move consults may be. One scan reads
// every descriptor of every process (hundreds of readlinks): once per checkpoint it
// made pruning 1000 checkpoints take tens of seconds. A writer that opens a file and
// also writes is caught by the per-move quiet check regardless; only one that opens
// without writing, within this window, could be missed, a window of the same order as
// the one between any check and the rename.
const openFilesMaxAge = 250 * time.Millisecond

// openCache is the /proc scan of one pruning pass, redone when older than
// openFilesMaxAge.
type openCache struct {
	root string
	at   time.Time
	m    map[string]int
}

func (o *openCache) get() map[string]int {
	if o.m == nil || time.Since(o.at) > openFilesMaxAge {
		o.m, o.at = openFiles(o.root), time.Now()
	}
	return o.m
}

// move renames a checkpoint into <root>/.trainwrap/<dest>/, after proving it is still
// the same plain file or directory inside the root and still quiet. In the trash it is
// then removed; os.RemoveAll unlinks symlinks and never follows them.
func move(root string, a action, quiet time.Duration, open *openCache) (string, error) {
	c := a.c
	if !within(root, c.Path) {
		return "", fmt.Errorf("checkpoints: refuse to move %s: not inside %s", c.Path, root)
	}
	// Every parent must be a real directory: a symlinked parent could lead outside.
	if real, err := filepath.EvalSymlinks(filepath.Dir(c.Path)); err != nil || real != filepath.Dir(c.Path) {
		return "", fmt.Errorf("checkpoints: refuse to move %s: its parent is or passes through a symlink", c.Name)
	}
	info, err := os.Lstat(c.Path)
	if err != nil {
		return "", fmt.Errorf("checkpoints: move %s: %w", c.Name, err)
	}
	if info.Mode()&fs.ModeSymlink != 0 || info.IsDir() != c.isDir {
		return "", fmt.Errorf("checkpoints: refuse to move %s: it changed type since it was scanned", c.Name)
	}
	// A writer may have started since the scan: look again just before acting.
	again := &candidate{Checkpoint: Checkpoint{Path: c.Path, Name: c.Name}, layout: c.layout}
	if err := again.collect(); err != nil {
		return "", fmt.Errorf("checkpoints: move %s: %w", c.Name, err)
	}
	judgeBusy(again, open.get(), time.Now(), quiet)
	if again.Status == StatusInProgress {
		return "", fmt.Errorf("checkpoints: leave %s: %s", c.Name, again.Reason)
	}
	dir := filepath.Join(root, StateDirName, a.dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoints: %w", err)
	}
	base := strings.ReplaceAll(c.Name, "/", "__")
	dst := filepath.Join(dir, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = filepath.Join(dir, fmt.Sprintf("%s.%d", base, i))
	}
	if err := os.Rename(c.Path, dst); err != nil {
		return "", fmt.Errorf("checkpoints: move %s to %s: %w", c.Name, dst, err)
	}
	if a.dest == TrashDir {
		if err := os.RemoveAll(dst); err != nil {
			return dst, fmt.Errorf("checkpoints: remove %s: %w (it is in the trash; remove it by hand)", dst, err)
		}
	}
	return dst, nil
}
