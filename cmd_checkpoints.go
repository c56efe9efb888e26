package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/trainwrap/trainwrap/checkpoints"
	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/rundir"
)

// CheckpointsCmd groups the checkpoint operations a person runs by hand; the
// supervisor runs the same code between attempts.
type CheckpointsCmd struct {
	List   CkptListCmd   `cmd:"" help:"List the checkpoints under DIR, oldest step first, with each verdict."`
	Verify CkptVerifyCmd `cmd:"" help:"Verify every checkpoint; exit 1 when the newest one is bad, naming file and reason."`
	Hash   CkptHashCmd   `cmd:"" help:"Hash complete checkpoints into xxh64sum manifests in the run dir; exit 1 on a mismatch."`
	Prune  CkptPruneCmd  `cmd:"" help:"Prune and quarantine by policy; a dry run unless --yes."`
}

// ckptArgs are the argument and flags every checkpoints subcommand takes.
type ckptArgs struct {
	Dir         string        `arg:"" optional:"" type:"path" help:"Checkpoint root (the job's output dir). Default: checkpoint_root from the run dir's state.json."`
	JSON        bool          `name:"json" help:"Print JSON instead of a table."`
	QuietPeriod time.Duration `name:"quiet-period" default:"3s" help:"A checkpoint with a file changed this recently is in progress (use more than 60s on NFS)."`
}

// root returns DIR, or the checkpoint root the supervisor recorded in state.json.
func (a *ckptArgs) root(g *Globals) (string, error) {
	if a.Dir != "" {
		return a.Dir, nil
	}
	dir := rundir.New(g.StateDir)
	st, err := rundir.ReadState(dir.State())
	if err == nil && st.CheckpointRoot != "" {
		fmt.Fprintf(g.Stderr, "trainwrap: checkpoint root %s (from %s)\n", st.CheckpointRoot, dir.State())
		return st.CheckpointRoot, nil
	}
	return "", exitcode.New(2, fmt.Errorf("checkpoints: no DIR given and %s records no checkpoint_root; name the checkpoint root, e.g. trainwrap checkpoints list ./output", dir.State()))
}

func (a *ckptArgs) scanOptions() checkpoints.ScanOptions {
	q := a.QuietPeriod
	if q == 0 {
		q = -1 // the flag's 0 means none; the option's 0 means the default
	}
	return checkpoints.ScanOptions{QuietPeriod: q}
}

// signalContext is cancelled by SIGINT or SIGTERM, so a long hash stops cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// CkptListCmd lists checkpoints.
type CkptListCmd struct {
	ckptArgs `embed:""`
}

// Run lists the checkpoints under the root with their verdicts.
func (c *CkptListCmd) Run(g *Globals) error {
	root, err := c.root(g)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	list, err := checkpoints.Scan(ctx, root, c.scanOptions())
	if err != nil {
		return exitcode.New(1, err)
	}
	if c.JSON {
		return writeJSON(g.Stdout, list)
	}
	printCheckpoints(g.Stdout, list, resumeOf(list))
	return nil
}

// CkptVerifyCmd verifies checkpoints, against their manifests when there are any.
type CkptVerifyCmd struct {
	ckptArgs `embed:""`
	Full     bool `help:"Re-read every file with a manifest, to find bit rot (stat-only otherwise)."`
}

// Run verifies every checkpoint and fails when the newest one is bad.
func (c *CkptVerifyCmd) Run(g *Globals) error {
	root, err := c.root(g)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	opt := c.scanOptions()
	opt.ManifestDir = rundir.New(g.StateDir).Manifests()
	opt.Full = c.Full
	list, err := checkpoints.Scan(ctx, root, opt)
	if err != nil {
		return exitcode.New(1, err)
	}
	if c.JSON {
		if err := writeJSON(g.Stdout, list); err != nil {
			return err
		}
	} else {
		printCheckpoints(g.Stdout, list, resumeOf(list))
	}
	if len(list) == 0 {
		return exitcode.New(1, fmt.Errorf("checkpoints: no checkpoints under %s", root))
	}
	newest := list[len(list)-1] // sorted by step
	switch newest.Status {
	case checkpoints.StatusIncomplete:
		return exitcode.New(1, fmt.Errorf("checkpoints: newest checkpoint %s is incomplete: %s", newest.Name, newest.Reason))
	case checkpoints.StatusInProgress:
		fmt.Fprintf(g.Stderr, "trainwrap: newest checkpoint %s is still being written: %s\n", newest.Name, newest.Reason)
	}
	return nil
}

// CkptHashCmd writes manifests.
type CkptHashCmd struct {
	ckptArgs     `embed:""`
	Full         bool `help:"Re-read every file even when its stat is unchanged."`
	IgnoreDevice bool `name:"ignore-device" help:"Leave the device number out of the stat key (NFS remounts change it)."`
}

// Run hashes every complete checkpoint into the run dir's manifests.
func (c *CkptHashCmd) Run(g *Globals) error {
	root, err := c.root(g)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	dir := rundir.New(g.StateDir).Manifests()
	sopt := c.scanOptions()
	sopt.IgnoreDevice = c.IgnoreDevice
	list, results, err := checkpoints.Hash(ctx, root, dir, sopt, checkpoints.HashOptions{Full: c.Full, IgnoreDevice: c.IgnoreDevice})
	if err != nil {
		return exitcode.New(1, err)
	}
	if c.JSON {
		if err := writeJSON(g.Stdout, struct {
			Checkpoints []checkpoints.Checkpoint `json:"checkpoints"`
			Hashed      []checkpoints.HashResult `json:"hashed"`
		}{list, results}); err != nil {
			return err
		}
	}
	bad := 0
	for _, r := range results {
		if !c.JSON {
			fmt.Fprintf(g.Stdout, "%s: %d files, %d read (%s), %d unchanged\n", r.Checkpoint, r.Files, r.Read, checkpoints.FormatSize(uint64(r.BytesRead)), r.Reused)
		}
		for _, m := range r.Mismatch {
			bad++
			fmt.Fprintf(g.Stderr, "trainwrap: %s: CORRUPT %s\n", r.Checkpoint, m)
		}
	}
	if !c.JSON {
		fmt.Fprintf(g.Stdout, "manifests in %s (check one with: cd %s && xxh64sum -c MANIFEST.xxh64)\n", dir, root)
	}
	if bad > 0 {
		return exitcode.New(1, fmt.Errorf("checkpoints: %d file(s) no longer match their manifest", bad))
	}
	return nil
}

// CkptPruneCmd prunes by policy.
type CkptPruneCmd struct {
	ckptArgs         `embed:""`
	Keep             int    `default:"3" help:"Complete checkpoints to keep, newest by step. The newest, the best and pointer targets are always kept."`
	DeleteIncomplete bool   `name:"delete-incomplete" cmdline:"" help:"Delete incomplete checkpoints instead of quarantining them."`
	MinFreeDisk      string `name:"min-free-disk" placeholder:"SIZE" help:"When free space is below SIZE (e.g. 50GB), keep only the newest complete checkpoint."`
	Yes              bool   `cmdline:"" help:"Do it; without --yes prune only prints what it would do."`
}

// Run prunes, quarantines and rewrites pointers, or says what it would.
func (c *CkptPruneCmd) Run(g *Globals) error {
	root, err := c.root(g)
	if err != nil {
		return err
	}
	var minFree uint64
	if c.MinFreeDisk != "" {
		if minFree, err = checkpoints.ParseSize(c.MinFreeDisk); err != nil {
			return exitcode.New(2, fmt.Errorf("--min-free-disk: %w", err))
		}
	}
	if c.Keep < 1 {
		return exitcode.New(2, fmt.Errorf("--keep %d: keep at least 1 checkpoint", c.Keep))
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := checkpoints.Maintain(ctx, checkpoints.MaintainOptions{
		Root: root, ManifestDir: rundir.New(g.StateDir).Manifests(), Keep: c.Keep,
		DeleteIncomplete: c.DeleteIncomplete, MinFreeDisk: minFree,
		QuietPeriod: c.scanOptions().QuietPeriod, DryRun: !c.Yes,
	})
	if err != nil {
		return exitcode.New(1, err)
	}
	if c.JSON {
		return writeJSON(g.Stdout, rep)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(g.Stdout, n)
	}
	if rep.Resume != nil {
		fmt.Fprintf(g.Stdout, "resume point: %s (step %d)\n", rep.Resume.Name, rep.Resume.Step)
	} else {
		fmt.Fprintln(g.Stdout, "resume point: none (no complete checkpoint)")
	}
	if len(rep.Pruned)+len(rep.Quarantined) == 0 {
		fmt.Fprintln(g.Stdout, "nothing to prune")
	} else if !c.Yes {
		fmt.Fprintf(g.Stdout, "dry run: %s would be freed; run again with --yes to do it\n", checkpoints.FormatSize(uint64(rep.BytesFreed)))
	} else {
		fmt.Fprintf(g.Stdout, "freed %s\n", checkpoints.FormatSize(uint64(rep.BytesFreed)))
	}
	return nil
}

// resumeOf is the checkpoint the supervisor would resume from.
func resumeOf(list []checkpoints.Checkpoint) string {
	name := ""
	var step int64 = -1
	for _, c := range list {
		if c.Status == checkpoints.StatusComplete && c.Step >= step && c.Step >= 0 {
			name, step = c.Name, c.Step
		}
	}
	return name
}

func printCheckpoints(w io.Writer, list []checkpoints.Checkpoint, resume string) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no checkpoints found")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tLAYOUT\tSIZE\tFILES\tNAME\tNOTE")
	for _, c := range list {
		var note []string
		if c.Name == resume {
			note = append(note, "resume")
		}
		if c.Best {
			note = append(note, "best")
		}
		if c.Pinned {
			note = append(note, "pinned")
		}
		if c.Reason != "" {
			note = append(note, c.Reason)
		}
		step := fmt.Sprint(c.Step)
		if c.Step < 0 {
			step = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", step, c.Status, c.Layout, checkpoints.FormatSize(uint64(c.Size)), c.Files, c.Name, strings.Join(note, "; "))
	}
	tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return errors.Join(errors.New("checkpoints: write JSON"), err)
	}
	return nil
}
