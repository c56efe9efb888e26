package shim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another live supervisor holds the run directory.
var ErrLocked = errors.New("run directory is in use")

// lockDir takes the run directory's flock without waiting. The kernel drops it when
// the process dies, however it dies, so a stale lock file never blocks a new run.
//
// `trainwrap preflight --fix` may unlink a stale lock file (under its flock). A
// supervisor that opened the old file just before would then hold a lock on an inode
// nobody else can see, while the next one locks a new file: both would run. So after
// locking, the inode we hold must still be the one at the path; if not, try again.
func lockDir(path string) (*os.File, error) {
	for try := 0; try < 5; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, ErrLocked
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &named) == nil && held.Ino == named.Ino && held.Dev == named.Dev {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps being replaced; is another tool removing it?", path)
}
