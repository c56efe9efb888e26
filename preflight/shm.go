package preflight

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// ShmCheck measures /dev/shm, through which PyTorch DataLoader workers hand tensors
// to the trainer: Docker's default of 64 MB kills workers with "bus error". It warns
// when the filesystem is smaller than Min or has less than Min free.
type ShmCheck struct {
	Path string
	Min  uint64
}

// Name is "shm".
func (*ShmCheck) Name() string { return "shm" }

// Run statfs's the shared-memory filesystem.
func (c *ShmCheck) Run(ctx context.Context) Result {
	path, minSize := c.Path, c.Min
	if path == "" {
		path = "/dev/shm"
	}
	if minSize == 0 {
		minSize = DefaultShmMin
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Result{Status: Warn, Reason: fmt.Sprintf("statfs %s: %v; DataLoader workers need shared memory (docker run --shm-size)", path, err)}
	}
	size := st.Blocks * uint64(st.Bsize)
	free := st.Bavail * uint64(st.Bsize)
	res := Result{Status: OK, Value: fmt.Sprintf("%s, %s free", formatBytes(size), formatBytes(free))}
	switch {
	case size < minSize:
		res.Status = Warn
		res.Reason = fmt.Sprintf("%s is only %s (want %s): DataLoader workers may die with a bus error; raise it (docker run --shm-size, or a larger tmpfs)", path, formatBytes(size), formatBytes(minSize))
	case free < minSize:
		res.Status = Warn
		res.Reason = fmt.Sprintf("%s has only %s free (want %s): leftover segments of an earlier job may be filling it", path, formatBytes(free), formatBytes(minSize))
	}
	return res
}
