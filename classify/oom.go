package classify

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// OOMKillCount reads the OOM-kill counter of the memory cgroup this process runs in:
// cgroup v2 memory.events "oom_kill"; cgroup v1 memory.oom_control "oom_kill" (newer
// kernels), else memory.failcnt (limit hits: a weaker sign). source names the file.
func OOMKillCount() (count int64, source string, err error) {
	return oomKillCount("/proc/self/cgroup", "/sys/fs/cgroup")
}

func oomKillCount(cgroupFile, mount string) (int64, string, error) {
	b, err := os.ReadFile(cgroupFile)
	if err != nil {
		return 0, "", fmt.Errorf("oom count: %w", err)
	}
	var v2, v1 string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
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
