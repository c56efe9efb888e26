package preflight

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/checkpoints"

	"golang.org/x/sys/unix"
)

// DiskPath is one place that needs room, with the label the report uses for it.
type DiskPath struct {
	Label string
	Path  string
}

// DiskCheck measures free bytes and free inodes on the filesystems of the run dir,
// the log dir and the checkpoint root. It warns under MinFree or 10% free, and fails
// under a tenth of either; inodes warn under 10% free and fail under 1%. Its fix
// prunes checkpoints through the checkpoints package's policy, and nothing else.
type DiskCheck struct {
	Paths   []DiskPath
	MinFree uint64
	// CheckpointRoot, ManifestDir and Keep drive the fix; without a root there is
	// nothing the fix may delete.
	CheckpointRoot string
	ManifestDir    string
	Keep           int
	QuietPeriod    time.Duration
}

// Name is "disk".
func (*DiskCheck) Name() string { return "disk" }

// diskUsage is what statfs says of one filesystem.
type diskUsage struct {
	label, path        string
	free, total        uint64
	freeFiles, files   uint64
	dev                uint64
	status             Status
	reason             string
	measuredOnAncestor string // set when path does not exist yet
}

// Run statfs's every path (or its nearest existing ancestor, since a run dir that
// does not exist yet will be created on that filesystem) and judges the worst one.
func (c *DiskCheck) Run(ctx context.Context) Result {
	if len(c.Paths) == 0 {
		return Result{Status: Skip, Reason: "no paths to check"}
	}
	minFree := c.MinFree
	if minFree == 0 {
		minFree = DefaultMinFreeDisk
	}
	seen := map[uint64]*diskUsage{}
	var order []*diskUsage
	var errs []string
	for _, p := range c.Paths {
		if ctx.Err() != nil {
			return Result{Status: Fail, Reason: fmt.Sprintf("cancelled: %v", ctx.Err())}
		}
		u, err := statDisk(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if prev, ok := seen[u.dev]; ok {
			prev.label += ", " + u.label // one filesystem, reported once
			continue
		}
		judgeDisk(u, minFree)
		seen[u.dev] = u
		order = append(order, u)
	}
	res := Result{Status: OK}
	if len(errs) > 0 {
		res.Status = Fail
		res.Reason = strings.Join(errs, "; ")
	}
	var worst *diskUsage
	for _, u := range order {
		d := fmt.Sprintf("%s (%s): %s free of %s, %d inodes free", u.label, u.path, formatBytes(u.free), formatBytes(u.total), u.freeFiles)
		if u.measuredOnAncestor != "" {
			d += " (does not exist yet; measured on " + u.measuredOnAncestor + ")"
		}
		res.Details = append(res.Details, d)
		if worst == nil || u.status.rank() > worst.status.rank() || (u.status == worst.status && u.free < worst.free) {
			worst = u
		}
		if u.status != OK {
			res.Reason = joinReason(res.Reason, u.reason)
		}
		res.Status = worse(res.Status, u.status)
	}
	if worst != nil {
		res.Value = fmt.Sprintf("%s free on %s", formatBytes(worst.free), worst.label)
	}
	if len(order) == 1 {
		res.Details = nil // the value already says it all
	}
	return res
}

// statDisk statfs's p, or its nearest existing ancestor.
func statDisk(p DiskPath) (*diskUsage, error) {
	path, err := filepath.Abs(p.Path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", p.Label, p.Path, err)
	}
	at := path
	var st unix.Statfs_t
	for {
		err = unix.Statfs(at, &st)
		if err == nil || !errors.Is(err, unix.ENOENT) || at == filepath.Dir(at) {
			break
		}
		at = filepath.Dir(at)
	}
	if err != nil {
		return nil, fmt.Errorf("statfs %s %s: %w", p.Label, at, err)
	}
	var fi unix.Stat_t
	if err := unix.Stat(at, &fi); err != nil {
		return nil, fmt.Errorf("stat %s %s: %w", p.Label, at, err)
	}
	u := &diskUsage{
		label:     p.Label,
		path:      path,
		free:      st.Bavail * uint64(st.Bsize),
		total:     st.Blocks * uint64(st.Bsize),
		freeFiles: st.Ffree,
		files:     st.Files,
		dev:       fi.Dev,
	}
	if at != path {
		u.measuredOnAncestor = at
	}
	return u, nil
}

// judgeDisk sets the status and reason of u: warn when free bytes are under minFree
// or under 10% of the filesystem, fail under a tenth of either; inodes warn under 10%
// free and fail under 1%.
func judgeDisk(u *diskUsage, minFree uint64) {
	u.status = OK
	warnAt := max(minFree, u.total/10)
	failAt := warnAt / 10
	switch {
	case u.free < failAt:
		u.status = Fail
		u.reason = fmt.Sprintf("%s: only %s free on %s (under %s); the next checkpoint or log write will fail with ENOSPC", u.label, formatBytes(u.free), u.path, formatBytes(failAt))
	case u.free < warnAt:
		u.status = Warn
		u.reason = fmt.Sprintf("%s: %s free on %s (under %s); free space or prune checkpoints (--fix)", u.label, formatBytes(u.free), u.path, formatBytes(warnAt))
	}
	// Some filesystems (btrfs, some network ones) report no inode counts: nothing to judge.
	if u.files > 0 {
		pct := float64(u.freeFiles) * 100 / float64(u.files)
		switch {
		case pct < 1:
			u.status = Fail
			u.reason = joinReason(u.reason, fmt.Sprintf("%s: %d inodes free on %s (%.1f%%); creating files will fail", u.label, u.freeFiles, u.path, pct))
		case pct < 10:
			u.status = worse(u.status, Warn)
			u.reason = joinReason(u.reason, fmt.Sprintf("%s: %d inodes free on %s (%.1f%%)", u.label, u.freeFiles, u.path, pct))
		}
	}
}

// Fix prunes checkpoints through the checkpoints package's policy, and only when the
// checkpoint root's own filesystem is short of space: pruning cannot help any other.
// It never deletes anything else.
func (c *DiskCheck) Fix(ctx context.Context) (string, error) {
	if c.CheckpointRoot == "" {
		return "", errors.New("no --checkpoint-dir given, so there are no checkpoints the fix may prune; free space by hand")
	}
	u, err := statDisk(DiskPath{Label: "checkpoints", Path: c.CheckpointRoot})
	if err != nil {
		return "", err
	}
	minFree := c.MinFree
	if minFree == 0 {
		minFree = DefaultMinFreeDisk
	}
	if judgeDisk(u, minFree); u.status == OK {
		return "", fmt.Errorf("the checkpoint root's filesystem has room (%s free): pruning would not help; free space by hand", formatBytes(u.free))
	}
	return pruneCheckpoints(ctx, checkpoints.MaintainOptions{Root: c.CheckpointRoot, ManifestDir: c.ManifestDir, Keep: c.Keep, MinFreeDisk: minFree, QuietPeriod: c.QuietPeriod})
}
