package checkpoints

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// layout recognises one framework's checkpoints and knows what a complete one holds.
type layout interface {
	// name is the Layout value of its checkpoints.
	name() string
	// match reports whether entry (in dir) is one of its checkpoints, and its step.
	match(dir string, entry fs.DirEntry) (step int64, ok bool)
	// check returns why a checkpoint whose files each passed verifyFile is still not
	// complete, or "".
	check(c *candidate) string
}

// layouts in the order they are tried: the specific before the generic.
var layouts = []layout{hfLayout{}, deepspeedLayout{}, megatronLayout{}, lightningLayout{}, dcpLayout{}, genericLayout{}}

// fileInfo is one regular file of a checkpoint.
type fileInfo struct {
	rel   string // relative to the checkpoint (its base name for a single-file checkpoint)
	path  string
	size  int64
	mtime time.Time
	ctime time.Time
	ino   uint64
	dev   uint64
}

// candidate is a checkpoint being judged.
type candidate struct {
	Checkpoint
	layout layout
	isDir  bool
	files  []fileInfo
	// changed is the latest mtime or ctime of any of its files or directories, and
	// changedRel the name of that entry.
	changed    time.Time
	changedRel string
	// unreadable is set when its files could not be listed; pruning leaves it alone.
	unreadable bool
	// old is its manifest as read from oldDir during this pass (nil when it has
	// none), so that trusting and hashing it read the sidecar once.
	old    *Manifest
	oldDir string
}

// manifest returns c's manifest in dir, reading it at most once per pass.
func (c *candidate) manifest(dir string) *Manifest {
	if c.oldDir != dir {
		c.old, c.oldDir = readManifest(dir, c.Name), dir
	}
	return c.old
}

// has reports whether the checkpoint holds a file with this relative path.
func (c *candidate) has(rel string) bool {
	for _, f := range c.files {
		if f.rel == rel {
			return true
		}
	}
	return false
}

// under returns the files below the relative directory dir, with rel made relative to it.
func (c *candidate) under(dir string) []fileInfo {
	var out []fileInfo
	p := dir + "/"
	for _, f := range c.files {
		if len(f.rel) > len(p) && f.rel[:len(p)] == p {
			g := f
			g.rel = f.rel[len(p):]
			out = append(out, g)
		}
	}
	return out
}

// stepIn parses the first submatch of re in s as a step.
func stepIn(re *regexp.Regexp, s string) (int64, bool) {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// dirHas reports whether dir/name exists (without following a final symlink).
func dirHas(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, name))
	return err == nil
}
