package classify

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/internal/cgroup"
)

// OOMKillCount reads the OOM-kill counter of the memory cgroup this process runs in:
// cgroup v2 memory.events "oom_kill"; cgroup v1 memory.oom_control "oom_kill" (newer
// kernels), else memory.failcnt (limit hits: a weaker sign). source names the file.
func OOMKillCount() (count int64, source string, err error) {
	return oomKillCount("", "/sys/fs/cgroup")
}

// oomKillCount reads procRoot's self/cgroup ("" is /proc) and the counters under the
// cgroup mount.
func oomKillCount(procRoot, mount string) (int64, string, error) {
	m, err := cgroup.Self(procRoot)
	if err != nil {
		return 0, "", fmt.Errorf("oom count: %w", err)
	}
	v1, v2 := m.V1["memory"], m.Unified
	if v1 != "" {
		dir := filepath.Join(mount, "memory", v1)
		if n, err := keyed(filepath.Join(dir, "memory.oom_control"), "oom_kill"); err == nil {
			return n, filepath.Join(dir, "memory.oom_control"), nil
		}
		if n, err := plain(filepath.Join(dir, "memory.failcnt")); err == nil {
			return n, filepath.Join(dir, "memory.failcnt"), nil
		}
	}
	if v2 != "" {
		// Walk up: a leaf without the memory controller has no memory.events.
		for dir := filepath.Join(mount, v2); strings.HasPrefix(dir, mount); dir = filepath.Dir(dir) {
			f := filepath.Join(dir, "memory.events")
			if n, err := keyed(f, "oom_kill"); err == nil {
				return n, f, nil
			}
			if dir == mount {
				break
			}
		}
	}
	return 0, "", fmt.Errorf("oom count: no memory cgroup counter found for this process")
}

func keyed(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

func plain(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
