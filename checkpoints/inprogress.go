package checkpoints

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// openFiles maps each file under root that a live process holds open to that
// process's pid, from /proc/*/fd. A checkpoint with such a file is still being written
// (async checkpoint writers can outlive the trainer). Processes whose fds cannot be read
// (other users') are skipped: without privileges the scan sees only what it may.
func openFiles(root string) map[string]int {
	out := map[string]int{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	prefix := root + string(filepath.Separator)
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			target = strings.TrimSuffix(target, " (deleted)")
			if strings.HasPrefix(target, prefix) {
				out[target] = pid
			}
		}
	}
	return out
}
