package rundir

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// maxAsideTries bounds the search for a free aside name. Names carry nanoseconds, so
// a collision needs two moves in the same nanosecond or a clock that stands still;
// the counter then settles it within a handful of tries.
const maxAsideTries = 1000

// MoveAside renames path to path.corrupt-<UTC time with nanoseconds>, adding -1, -2,
// ... when that name is taken, and returns the new path. It never overwrites: the
// rename is done with RENAME_NOREPLACE, or where the filesystem lacks it, as a hard
// link (which fails on an existing name) followed by removing path. Both `run --force`
// and `preflight --fix` keep a corrupt state.json this way, so every corrupt copy a
// person may want to read survives, however often either is run.
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405.000000000Z")
	for i := 0; i < maxAsideTries; i++ {
		dst := base
		if i > 0 {
			dst = base + "-" + strconv.Itoa(i)
		}
		err := renameNoReplace(path, dst)
		if err == nil {
			return dst, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("move %s aside to %s: %w", path, dst, err)
		}
	}
	return "", fmt.Errorf("move %s aside: %d names %s-N are all taken; move some of them away", path, maxAsideTries, base)
}

// renameNoReplace renames old to new, failing with an error satisfying
// errors.Is(err, os.ErrExist) when new exists.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP) {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	// No RENAME_NOREPLACE here (an old kernel, some network filesystems): a hard link
	// fails on an existing name just the same, and the removal of old only follows
	// once new holds the file.
	if err := os.Link(old, new); err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("remove %s after linking it to %s: %w", old, new, err)
	}
	return nil
}
