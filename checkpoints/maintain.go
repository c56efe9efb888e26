package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// MaintainOptions says what Maintain may do. The zero value (with Root set) keeps
// DefaultKeep checkpoints, quarantines rather than deletes, and hashes nothing.
type MaintainOptions struct {
	// Root is the checkpoint root.
	Root string
	// ManifestDir is where manifests live (the run dir's checkpoints/); empty skips
	// hashing.
	ManifestDir string
	// Keep is how many complete checkpoints to keep; zero means DefaultKeep, negative
	// keeps all.
	Keep int
	// DeleteIncomplete deletes incomplete checkpoints instead of quarantining them.
	DeleteIncomplete bool
	// MinFreeDisk: when the root's filesystem has fewer free bytes, keep only 1.
	MinFreeDisk uint64
	// QuietPeriod is ScanOptions.QuietPeriod.
	QuietPeriod time.Duration
	// DryRun plans and reports but moves, deletes, rewrites and hashes nothing; the
	// manifests are still compared.
	DryRun bool
	// Before, when above zero, keeps checkpoints saved at or after this step out of
	// the way: they are quarantined (moved, never deleted) for BeforeReason and never
	// chosen to resume from. A restart on a training anomaly sets it to the anomaly's
	// step, since a checkpoint saved after a loss spike holds the spiked weights.
	Before       int64
	BeforeReason string
	// racy overrides the racily-clean window of scanning and hashing, for tests.
	racy time.Duration
}

// MaintainReport is what Maintain found and did (or, in a dry run, would do).
type MaintainReport struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
	// Resume is the highest-step complete checkpoint that verifies, or nil.
	Resume *Checkpoint `json:"resume,omitempty"`
	// Pruned, Quarantined and Corrupt hold checkpoint names relative to the root.
	Pruned      []string     `json:"pruned,omitempty"`
	Quarantined []string     `json:"quarantined,omitempty"`
	Corrupt     []string     `json:"corrupt,omitempty"`
	BytesFreed  int64        `json:"bytes_freed"`
	Hashed      []HashResult `json:"hashed,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	// Actions says for each checkpoint in Pruned and Quarantined what was done to it,
	// why, and how big it was, in the order done.
	Actions []Action `json:"actions,omitempty"`
}

// Action values of Action.Action.
const (
	ActionDelete     = "delete"
	ActionQuarantine = "quarantine"
)

// Action is one checkpoint that Maintain deleted or quarantined (or, in a dry run,
// would have).
type Action struct {
	Checkpoint string `json:"checkpoint"` // relative to the root
	Action     string `json:"action"`     // ActionDelete or ActionQuarantine
	Reason     string `json:"reason"`
	Bytes      int64  `json:"bytes"`
}

// Maintain is what runs between attempts, once the job's processes are gone: verify
// every checkpoint, hash the complete ones (incrementally, manifests in ManifestDir),
// choose the resume point, quarantine incomplete checkpoints newer than it, prune per
// policy, and rewrite DeepSpeed's latest or Megatron's tracker when they name another
// checkpoint. It never writes inside a checkpoint directory. An error means it could
// not look at all; failures of single actions are Notes.
func Maintain(ctx context.Context, opt MaintainOptions) (MaintainReport, error) {
	var rep MaintainReport
	sopt := ScanOptions{QuietPeriod: opt.QuietPeriod, ManifestDir: opt.ManifestDir, racy: opt.racy}
	// Hashing below compares the manifests; the scan only uses them to judge
	// unchanged checkpoints without opening a file.
	sopt.trustOnly = !opt.DryRun
	res, err := scan(ctx, opt.Root, sopt)
	if err != nil {
		return rep, err
	}
	rep.Notes = append(rep.Notes, res.notes...)
	rep.Notes = append(rep.Notes, res.pointerNotes()...)
	var pending []*Manifest
	if !opt.DryRun && opt.ManifestDir != "" {
		hashed, p, err := res.hashAll(ctx, opt.ManifestDir, HashOptions{DropCache: true, racy: opt.racy})
		rep.Hashed, pending = hashed, p
		if err != nil {
			if ctx.Err() != nil {
				// Keep what was hashed.
				return rep, errors.Join(err, writeManifests(opt.ManifestDir, pending))
			}
			rep.Notes = append(rep.Notes, err.Error())
		}
	}
	for _, c := range res.cands {
		if c.Status == StatusIncomplete && strings.HasPrefix(c.Reason, "corrupt: ") {
			rep.Corrupt = append(rep.Corrupt, c.Name)
		}
	}
	cands, after := splitBefore(res.cands, opt.Before)
	resume := chooseResume(cands)
	keep := opt.Keep
	switch {
	case keep == 0:
		keep = DefaultKeep
	case keep < 0:
		keep = len(res.cands) + 1
	}
	if opt.MinFreeDisk > 0 {
		free, err := freeBytes(res.root)
		switch {
		case err != nil:
			rep.Notes = append(rep.Notes, err.Error())
		case free < opt.MinFreeDisk && keep > 1:
			rep.Notes = append(rep.Notes, fmt.Sprintf("free space %s is below --min-free-disk %s: keeping only the newest complete checkpoint", FormatSize(free), FormatSize(opt.MinFreeDisk)))
			keep = 1
		}
	}
	verb := ""
	if opt.DryRun {
		verb = "would "
	}
	actions := plan(cands, resume, keep, opt.DeleteIncomplete)
	for _, c := range after {
		why := opt.BeforeReason
		if why == "" {
			why = fmt.Sprintf("saved at or after step %d", opt.Before)
		}
		actions = append(actions, action{c, QuarantineDir, why})
	}
	open := &openCache{root: res.root}
	for _, a := range actions {
		if !opt.DryRun {
			if _, err := move(res.root, a, sopt.quiet(), open); err != nil {
				rep.Notes = append(rep.Notes, err.Error())
				continue
			}
			if opt.ManifestDir != "" {
				if err := removeManifest(opt.ManifestDir, a.c.Name); err != nil {
					rep.Notes = append(rep.Notes, err.Error())
				}
			}
		}
		if a.dest == TrashDir {
			rep.Pruned = append(rep.Pruned, a.c.Name)
			rep.BytesFreed += a.c.Size
			rep.Actions = append(rep.Actions, Action{a.c.Name, ActionDelete, a.why, a.c.Size})
			rep.Notes = append(rep.Notes, fmt.Sprintf("%sdelete %s (%s): %s", verb, a.c.Name, FormatSize(uint64(a.c.Size)), a.why))
		} else {
			rep.Quarantined = append(rep.Quarantined, a.c.Name)
			rep.Actions = append(rep.Actions, Action{a.c.Name, ActionQuarantine, a.why, a.c.Size})
			rep.Notes = append(rep.Notes, fmt.Sprintf("%squarantine %s (%s) to %s: %s", verb, a.c.Name, FormatSize(uint64(a.c.Size)), filepath.Join(StateDirName, QuarantineDir), a.why))
		}
	}
	for _, f := range res.pointerFixes(resume) {
		if !opt.DryRun {
			if err := f.apply(); err != nil {
				rep.Notes = append(rep.Notes, err.Error())
				continue
			}
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%srewrite %s (%s) to %q", verb, res.rel(f.path), f.was, f.content))
	}
	gone := map[string]bool{}
	for _, n := range append(append([]string{}, rep.Pruned...), rep.Quarantined...) {
		gone[n] = true
	}
	// Manifests only for what is still there: writing one (an fsync) for a
	// checkpoint pruned a moment later was most of a pass that prunes hundreds.
	var write []*Manifest
	for _, m := range pending {
		if !gone[m.Checkpoint] {
			write = append(write, m)
		}
	}
	if err := writeManifests(opt.ManifestDir, write); err != nil {
		rep.Notes = append(rep.Notes, err.Error())
	}
	for _, c := range res.cands {
		if opt.DryRun || !gone[c.Name] {
			rep.Checkpoints = append(rep.Checkpoints, c.Checkpoint)
		}
	}
	if resume != nil {
		r := resume.Checkpoint
		rep.Resume = &r
	}
	return rep, nil
}

// splitBefore separates the checkpoints of a step at or after before (when above zero)
// from the rest. One in progress stays where it is: it is never touched.
func splitBefore(cands []*candidate, before int64) (kept, after []*candidate) {
	if before <= 0 {
		return cands, nil
	}
	for _, c := range cands {
		if c.Step >= before && c.Status != StatusInProgress && !c.unreadable {
			after = append(after, c)
		} else {
			kept = append(kept, c)
		}
	}
	return kept, after
}
