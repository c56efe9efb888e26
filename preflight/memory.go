package preflight

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/internal/cgroup"
)

// MemoryCheck measures the memory the job can use: MemAvailable from /proc/meminfo,
// lowered by the memory cgroup's limit minus its usage when a limit applies (cgroup v2
// memory.max, or v1 memory.limit_in_bytes, along the whole path up to the root). It
// warns under MinAvailable.
type MemoryCheck struct {
	MinAvailable uint64
	// ProcRoot and CgroupRoot default to /proc and /sys/fs/cgroup; tests point them at
	// recorded trees of both cgroup layouts.
	ProcRoot   string
	CgroupRoot string
}

// Name is "memory".
func (*MemoryCheck) Name() string { return "memory" }

// cgroupMemory is the tightest memory limit found on our cgroup path.
type cgroupMemory struct {
	version string // "v1" or "v2"
	path    string // the cgroup whose limit is tightest
	limit   uint64
	usage   uint64
	room    uint64 // limit - usage, 0 when usage is over the limit
}

// Run reads /proc/meminfo and the cgroup files.
func (c *MemoryCheck) Run(ctx context.Context) Result {
	procRoot, cgRoot := c.ProcRoot, c.CgroupRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	if cgRoot == "" {
		cgRoot = "/sys/fs/cgroup"
	}
	minAvail := c.MinAvailable
	if minAvail == 0 {
		minAvail = DefaultMinFreeMemory
	}
	avail, err := memAvailable(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return Result{Status: Fail, Reason: err.Error()}
	}
	res := Result{Status: OK, Value: formatBytes(avail) + " available"}
	effective := avail
	cg, err := readCgroupMemory(procRoot, cgRoot)
	switch {
	case err != nil:
		// Not knowing the cgroup limit is worth saying, not worth failing for.
		res.Details = append(res.Details, "cgroup: "+err.Error())
	case cg != nil:
		room := cg.room
		res.Details = append(res.Details, fmt.Sprintf("cgroup %s %s: limit %s, %s used", cg.version, cg.path, formatBytes(cg.limit), formatBytes(cg.usage)))
		if room < effective {
			effective = room
			res.Value = fmt.Sprintf("%s available (cgroup %s limit %s, %s used)", formatBytes(room), cg.version, formatBytes(cg.limit), formatBytes(cg.usage))
		}
	}
	if effective < minAvail {
		res.Status = Warn
		res.Reason = fmt.Sprintf("only %s of memory available to the job (want %s); the OOM killer may end it", formatBytes(effective), formatBytes(minAvail))
	}
	return res
}

// memAvailable reads MemAvailable from a meminfo file.
func memAvailable(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemAvailable %q: %w", path, f[0], err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("%s has no MemAvailable line (kernel older than 3.14?)", path)
}

// readCgroupMemory finds our memory cgroup from procRoot/self/cgroup and returns the
// tightest limit on the path from it up to the root, or nil when no limit applies. A
// v1 memory controller wins over the v2 line: on a hybrid host the v2 hierarchy
// ("0::/") exists but does not hold the memory controller.
func readCgroupMemory(procRoot, cgRoot string) (*cgroupMemory, error) {
	m, err := cgroup.Self(procRoot)
	if err != nil {
		return nil, err
	}
	v1, haveV1 := m.V1["memory"]
	v2, haveV2 := m.Unified, m.HasUnified
	switch {
	case haveV1:
		return walkCgroup("v1", filepath.Join(cgRoot, "memory"), v1, "memory.limit_in_bytes", "memory.usage_in_bytes")
	case haveV2:
		return walkCgroup("v2", cgRoot, v2, "memory.max", "memory.current")
	}
	return nil, nil
}

// walkCgroup reads limitFile and usageFile in rel and each of its ancestors under
// mount, and returns the one with the least room. Inside a container the path that
// /proc/self/cgroup names may not exist in the mounted tree (the container sees its
// own cgroup as the root), so missing directories are skipped.
func walkCgroup(version, mount, rel, limitFile, usageFile string) (*cgroupMemory, error) {
	var best *cgroupMemory
	rel = filepath.Clean("/" + rel)
	for {
		dir := filepath.Join(mount, rel)
		limit, lerr := readCgroupValue(filepath.Join(dir, limitFile))
		usage, uerr := readCgroupValue(filepath.Join(dir, usageFile))
		if lerr == nil && uerr == nil && limit > 0 {
			room := uint64(0)
			if limit > usage {
				room = limit - usage
			}
			if best == nil || room < best.room {
				best = &cgroupMemory{version: version, path: rel, limit: limit, usage: usage, room: room}
			}
		} else if lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
			return nil, lerr
		}
		if rel == "/" {
			break
		}
		rel = filepath.Dir(rel)
	}
	return best, nil
}

// noLimit is what v1 reports for "unlimited": the largest page-aligned int64.
const noLimit = 1 << 62

// readCgroupValue reads a one-number cgroup file; "max" and v1's huge "unlimited"
// value read as 0, meaning no limit.
func readCgroupValue(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", path, s)
	}
	if v >= noLimit {
		return 0, nil
	}
	return v, nil
}
