package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/checkpoints"
)

// CheckpointCheck verifies the newest checkpoint under the checkpoint root (its
// layout's own completeness rules, and its xxh64 manifest when one was written), so a
// job that resumes from "the newest" does not load a half-written or rotten one. Its
// fix quarantines the newest when it is bad, through the checkpoints package, so the
// resume point falls back to the previous complete checkpoint; it prunes nothing.
type CheckpointCheck struct {
	Root        string
	ManifestDir string
	// QuietPeriod is checkpoints.ScanOptions.QuietPeriod.
	QuietPeriod time.Duration
}

// Name is "checkpoint".
func (*CheckpointCheck) Name() string { return "checkpoint" }

// Run scans the root and judges its newest checkpoint.
func (c *CheckpointCheck) Run(ctx context.Context) Result {
	if c.Root == "" {
		return Result{Status: Skip, Reason: "no --checkpoint-dir given"}
	}
	if _, err := os.Stat(c.Root); errors.Is(err, os.ErrNotExist) {
		return Result{Status: Skip, Reason: fmt.Sprintf("%s does not exist yet", c.Root)}
	}
	list, err := checkpoints.Scan(ctx, c.Root, checkpoints.ScanOptions{ManifestDir: c.ManifestDir, QuietPeriod: c.QuietPeriod})
	if err != nil {
		return Result{Status: Fail, Reason: err.Error()}
	}
	if len(list) == 0 {
		return Result{Status: OK, Value: "none yet"}
	}
	newest := list[len(list)-1] // Scan sorts by step ascending
	var fallback *checkpoints.Checkpoint
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Status == checkpoints.StatusComplete {
			fallback = &list[i]
			break
		}
	}
	res := Result{Status: OK, Value: fmt.Sprintf("%s (%s, step %d) %s", newest.Name, newest.Layout, newest.Step, newest.Status)}
	switch newest.Status {
	case checkpoints.StatusComplete:
	case checkpoints.StatusInProgress:
		// Being written: nothing to judge yet, and never to be touched.
		res.Reason = "the newest checkpoint is still being written: " + newest.Reason
	default:
		res.Status = Warn
		then := "the job will start from scratch"
		if fallback != nil {
			then = "resume will use " + fallback.Name
		}
		res.Reason = fmt.Sprintf("newest checkpoint %s is %s; %s (--fix quarantines it, so a job that loads the newest one does not crash on it)", newest.Name, newest.String(), then)
	}
	return res
}

// Fix quarantines incomplete or corrupt checkpoints newer than the newest complete one
// (into <root>/.trainwrap/quarantine, moved, never deleted): checkpoints.Maintain with
// Keep < 0, which keeps every complete checkpoint.
func (c *CheckpointCheck) Fix(ctx context.Context) (string, error) {
	if c.Root == "" {
		return "", nil
	}
	rep, err := checkpoints.Maintain(ctx, checkpoints.MaintainOptions{Root: c.Root, ManifestDir: c.ManifestDir, Keep: -1, QuietPeriod: c.QuietPeriod})
	if err != nil {
		return "", fmt.Errorf("quarantine checkpoints: %w", err)
	}
	if len(rep.Quarantined) == 0 {
		return "", fmt.Errorf("nothing was quarantined: %s", strings.Join(rep.Notes, "; "))
	}
	return fmt.Sprintf("quarantined %s to %s/%s", strings.Join(rep.Quarantined, ", "), checkpoints.StateDirName, checkpoints.QuarantineDir), nil
}

// pruneCheckpoints frees space through the checkpoint policy: checkpoints.Maintain
// keeps the newest opt.Keep complete checkpoints (only the newest one when the
// filesystem is under opt.MinFreeDisk), the resume point, the best one and every
// pointer target, and leaves anything being written alone.
func pruneCheckpoints(ctx context.Context, opt checkpoints.MaintainOptions) (string, error) {
	rep, err := checkpoints.Maintain(ctx, opt)
	if err != nil {
		return "", fmt.Errorf("prune checkpoints: %w", err)
	}
	var parts []string
	if len(rep.Pruned) > 0 {
		parts = append(parts, fmt.Sprintf("pruned %s (%s freed)", strings.Join(rep.Pruned, ", "), formatBytes(uint64(rep.BytesFreed))))
	}
	if len(rep.Quarantined) > 0 {
		parts = append(parts, fmt.Sprintf("quarantined %s", strings.Join(rep.Quarantined, ", ")))
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("no checkpoint may be pruned under the policy (keep %d complete); free space by hand", opt.Keep)
	}
	return strings.Join(parts, "; "), nil
}
