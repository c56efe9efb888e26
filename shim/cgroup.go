package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/internal/cgroup"
)

// Cgroup modes of Options.Cgroup.
const (
	CgroupAuto = "auto" // a cgroup of the job's own where cgroup v2 delegation allows
	CgroupOff  = "off"  // never: the process sweep alone
)

// cgroupPrefix names the job cgroups trainwrap creates: cgroupPrefix + run id.
const cgroupPrefix = "trainwrap-"

// sentinelLeaf is the leaf of the job's cgroup that holds the sentinel guard, and
// nothing of the job.
const sentinelLeaf = "sentinel"

// jobCgroup is a cgroup v2 of the run's own, under the supervisor's cgroup; each
// attempt of the job is cloned (CLONE_INTO_CGROUP) into a fresh leaf of it,
// attempt-N: a process that clears its environment and calls setsid is still in it, and
// cgroup.kill ends all of them at once, as systemd's KillMode=control-group does. Only
// the job's processes are ever put in it, so its members are the job's by
// construction. A leaf is never reused: this kernel SIGKILLs every process later
// cloned into a cgroup that was once killed.
type jobCgroup struct {
	dir  string // the run's cgroup; processes live only in its leaves
	leaf string // the current attempt's, "" between attempts
	fd   int    // leaf, open for SysProcAttr.CgroupFD
}

// cgroupParent is the directory of the supervisor's own cgroup v2, read from
// /proc/self/cgroup and /proc/self/mountinfo.
func cgroupParent() (string, error) {
	m, err := cgroup.Self("")
	if err != nil {
		return "", err
	}
	if !m.HasUnified {
		return "", errors.New("no cgroup v2 hierarchy in /proc/self/cgroup")
	}
	rel := m.Unified
	self, err := procfs.Self()
	if err != nil {
		return "", err
	}
	mounts, err := self.MountInfo()
	if err != nil {
		return "", fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		// A mount may show a subtree only (a container's bind mount): our path must
		// lie inside it.
		root := strings.TrimSuffix(m.Root, "/")
		if rel != root && !strings.HasPrefix(rel, root+"/") {
			continue
		}
		return filepath.Join(m.MountPoint, strings.TrimPrefix(rel, root)), nil
	}
	return "", fmt.Errorf("no cgroup2 mount shows our cgroup %s", rel)
}

// newJobCgroup creates the job's cgroup for runID, or says why this machine offers
// none (no cgroup v2, no write access to our own cgroup, a kernel without cgroup.kill).
func newJobCgroup(runID string) (*jobCgroup, error) {
	parent, err := cgroupParent()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, cgroupPrefix+runID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("%s has no cgroup.kill (kernel older than 5.14)", dir)
	}
	return &jobCgroup{dir: dir, fd: -1}, nil
}

// startAttempt creates the leaf that attempt n is cloned into.
func (g *jobCgroup) startAttempt(n int) error {
	leaf := filepath.Join(g.dir, "attempt-"+strconv.Itoa(n))
	if err := os.Mkdir(leaf, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", leaf, err)
	}
	fd, err := unix.Open(leaf, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(leaf)
		return fmt.Errorf("open %s: %w", leaf, err)
	}
	g.leaf, g.fd = leaf, fd
	return nil
}

// endAttempt removes the attempt's leaf once its processes are gone.
func (g *jobCgroup) endAttempt(ctx context.Context) error {
	if g == nil || g.leaf == "" {
		return nil
	}
	unix.Close(g.fd)
	leaf := g.leaf
	g.leaf, g.fd = "", -1
	return removeCgroup(ctx, leaf)
}

// pids lists the processes of the job in the run's cgroup: every leaf but the
// sentinel's.
func (g *jobCgroup) pids() []int {
	if g == nil {
		return nil
	}
	return cgroupPids(g.dir, filepath.Join(g.dir, sentinelLeaf))
}

// openSentinelLeaf creates the sentinel's leaf and returns it open for CgroupFD.
func (g *jobCgroup) openSentinelLeaf() (int, error) {
	leaf := filepath.Join(g.dir, sentinelLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, fmt.Errorf("create %s: %w", leaf, err)
	}
	fd, err := unix.Open(leaf, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", leaf, err)
	}
	return fd, nil
}

// killAttemptLeaves kills every leaf of runID's cgroup dir but the sentinel's, which
// holds the caller: the sentinel's sweep when its supervisor is gone. It returns how many
// processes were in them.
func killAttemptLeaves(dir, runID string) (int, error) {
	if runID == "" || filepath.Base(dir) != cgroupPrefix+runID {
		return 0, fmt.Errorf("cgroup: %s is not the cgroup of run %q; not killing it", dir, runID)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name() == sentinelLeaf {
			continue
		}
		leaf := filepath.Join(dir, e.Name())
		n += len(cgroupPids(leaf, ""))
		if kerr := killCgroup(leaf); kerr != nil {
			err = kerr
		}
	}
	return n, err
}

// cgroupPids lists the processes in dir and the cgroups below it, except those in
// skip and below it ("" skips nothing).
func cgroupPids(dir, skip string) []int {
	var out []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if skip != "" && path == skip {
			return filepath.SkipDir
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// kill SIGKILLs every process of the current attempt, in the kernel, at once. Only
// the leaf: the next attempt's leaf must not descend from a killed cgroup.
func (g *jobCgroup) kill() error {
	if g == nil || g.leaf == "" {
		return nil
	}
	return killCgroup(g.leaf)
}

func killCgroup(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return fmt.Errorf("cgroup: kill %s: %w", dir, err)
	}
	return nil
}

// remove closes and removes the cgroup once it is empty. The job is gone by then, so a
// failure is only worth a warning.
func (g *jobCgroup) remove(ctx context.Context) error {
	if g == nil {
		return nil
	}
	if err := g.endAttempt(ctx); err != nil {
		return err
	}
	return removeCgroup(ctx, g.dir)
}

// removeCgroup removes dir and the cgroups below it, deepest first, retrying while
// the last killed processes leave them.
func removeCgroup(ctx context.Context, dir string) error {
	for {
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		var err error
		for i := len(dirs) - 1; i >= 0; i-- {
			if rerr := os.Remove(dirs[i]); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = rerr
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup: remove %s: %w", dir, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killCgroupOf kills and removes the job cgroup of runID under our own cgroup, when it
// exists: what a supervisor that died with its guard left behind. It returns how many
// processes were in it.
func killCgroupOf(ctx context.Context, runID string) (int, error) {
	parent, err := cgroupParent()
	if err != nil {
		return 0, nil // no cgroup v2: nothing of ours can be there
	}
	return killCgroupDir(ctx, filepath.Join(parent, cgroupPrefix+runID), runID)
}

// killCgroupDir kills every process in dir, a job cgroup of runID, and removes it. A
// path that does not name runID's cgroup is refused: trainwrap kills only what it can
// prove is the job's.
func killCgroupDir(ctx context.Context, dir, runID string) (int, error) {
	if runID == "" || filepath.Base(dir) != cgroupPrefix+runID {
		return 0, fmt.Errorf("cgroup: %s is not the cgroup of run %q; not killing it", dir, runID)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	n := len(cgroupPids(dir, filepath.Join(dir, sentinelLeaf))) // the job's, not the sentinel
	if err := killCgroup(dir); err != nil {
		return 0, err
	}
	return n, removeCgroup(ctx, dir)
}
