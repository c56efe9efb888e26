package preflight

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// Defaults of RunOptions: NHC's figures (5 s per command, 30 s for the whole check).
const (
	DefaultPerCheck = 5 * time.Second
	DefaultBudget   = 30 * time.Second
	// DefaultPerFix is longer than a check: a fix is asked for, and pruning or
	// quarantining checkpoints may hash files the manifests do not cover yet.
	DefaultPerFix = 2 * time.Minute
)

// All returns the full set of checks, run before the first attempt and by
// `trainwrap preflight`.
func All(cfg Config) []Check {
	cfg = cfg.withDefaults()
	dir := rundir.New(cfg.StateDir)
	return []Check{
		&DirsCheck{Dirs: runDirs(cfg, dir)},
		&DiskCheck{Paths: diskPaths(cfg, dir), MinFree: cfg.MinFreeDisk, CheckpointRoot: cfg.CheckpointRoot, ManifestDir: dir.Manifests(), Keep: cfg.Keep, QuietPeriod: cfg.QuietPeriod},
		&MemoryCheck{MinAvailable: cfg.MinFreeMemory},
		&ShmCheck{Path: "/dev/shm", Min: cfg.ShmMin},
		&RlimitCheck{},
		gpuCheck(cfg),
		// Fixes run in this order: state.json must parse before its leftovers can
		// be found, and killing a leftover may release the lock it inherited.
		&StateCheck{Dir: dir},
		&LeftoversCheck{Dir: dir},
		&LockCheck{Dir: dir},
		&JobConfigCheck{Files: cfg.JobConfigs},
		&RequireCheck{Paths: cfg.Require},
		&CommandCheck{Command: cfg.Command},
		&CheckpointCheck{Root: cfg.CheckpointRoot, ManifestDir: dir.Manifests(), QuietPeriod: cfg.QuietPeriod},
	}
}

// Quick returns the checks run between attempts: GPU health and disk. The run-dir
// checks would see the supervisor's own lock and job, and the inputs did not change.
func Quick(cfg Config) []Check {
	cfg = cfg.withDefaults()
	dir := rundir.New(cfg.StateDir)
	return []Check{
		gpuCheck(cfg),
		&DiskCheck{Paths: diskPaths(cfg, dir), MinFree: cfg.MinFreeDisk, CheckpointRoot: cfg.CheckpointRoot, ManifestDir: dir.Manifests(), Keep: cfg.Keep, QuietPeriod: cfg.QuietPeriod},
	}
}

// gpuCheck is the GPU check in a child process when cfg says how to start one, else
// in this process.
func gpuCheck(cfg Config) Check {
	if len(cfg.GPUExec) > 0 {
		return &ChildCheck{CheckName: "gpu", Argv: cfg.GPUExec}
	}
	return NewGPUCheck(cfg)
}

// runDirs are the directories trainwrap writes into.
func runDirs(cfg Config, dir rundir.Dir) []string {
	out := []string{dir.Path, cfg.LogDir}
	if cfg.CheckpointRoot != "" {
		out = append(out, cfg.CheckpointRoot)
	}
	return out
}

// diskPaths are the places whose filesystems must have room, labelled for the report.
func diskPaths(cfg Config, dir rundir.Dir) []DiskPath {
	out := []DiskPath{{Label: "run dir", Path: dir.Path}, {Label: "logs", Path: cfg.LogDir}}
	if cfg.CheckpointRoot != "" {
		out = append(out, DiskPath{Label: "checkpoints", Path: cfg.CheckpointRoot})
	}
	return out
}

// Names lists the names of checks, in order.
func Names(checks []Check) []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.Name()
	}
	return out
}

// Select keeps the checks named in only (all of them when only is empty). A name that
// matches no check is an error naming the valid ones.
func Select(checks []Check, only []string) ([]Check, error) {
	if len(only) == 0 {
		return checks, nil
	}
	names := Names(checks)
	for _, n := range only {
		if !slices.Contains(names, n) {
			sorted := slices.Clone(names)
			sort.Strings(sorted)
			return nil, fmt.Errorf("no check named %q; the checks are: %s", n, strings.Join(sorted, ", "))
		}
	}
	var out []Check
	for _, c := range checks {
		if slices.Contains(only, c.Name()) {
			out = append(out, c)
		}
	}
	return out, nil
}

// RunOptions tune Run. The zero value runs every check with the default timeouts and
// fixes nothing.
type RunOptions struct {
	// PerCheck bounds each check's Run (and each Fix) [5s].
	PerCheck time.Duration
	// Budget bounds the checks of the whole preflight [30s]; fixes run after it.
	Budget time.Duration
	// PerFix bounds each Fix [2m].
	PerFix time.Duration
	// Fix calls the Fix of each check that warned or failed, then runs it again.
	Fix bool
	// Only keeps the checks with these names; names that match none are ignored
	// here (use Select to reject them).
	Only []string
}

// Report is the outcome of Run, in the order the checks were given.
type Report struct {
	Results  []Result      `json:"results"`
	Duration time.Duration `json:"duration_ns"`
}

// Run runs the checks concurrently, each under PerCheck and all under Budget. A check
// that does not return in time is reported as fail, "timed out after 5s", and left
// behind: its goroutine cannot be stopped from outside, but nothing waits for it.
// With Fix, the fixes run one at a time in check order (a missing run dir must be
// created before anything is written into it), and each fixed check runs again so
// the report shows the state after the fix.
func Run(ctx context.Context, checks []Check, opt RunOptions) Report {
	start := time.Now()
	if opt.PerCheck <= 0 {
		opt.PerCheck = DefaultPerCheck
	}
	if opt.Budget <= 0 {
		opt.Budget = DefaultBudget
	}
	if opt.PerFix <= 0 {
		opt.PerFix = DefaultPerFix
	}
	if len(opt.Only) > 0 {
		checks = slices.DeleteFunc(slices.Clone(checks), func(c Check) bool { return !slices.Contains(opt.Only, c.Name()) })
	}
	budget, cancel := context.WithTimeout(ctx, opt.Budget)
	defer cancel()

	results := make([]Result, len(checks))
	done := make(chan int, len(checks))
	for i, c := range checks {
		go func() {
			results[i] = runOne(budget, c, opt.PerCheck)
			done <- i
		}()
	}
	for range checks {
		<-done
	}

	if opt.Fix {
		for i, c := range checks {
			f, ok := c.(Fixer)
			if !ok || (results[i].Status != Warn && results[i].Status != Fail) {
				continue
			}
			changed, err := fixOne(ctx, c.Name(), f, opt.PerFix)
			again := runOne(ctx, c, opt.PerCheck)
			again.Fixed = changed
			if err != nil {
				again.Reason = joinReason(again.Reason, "fix failed: "+err.Error())
				again.Status = worse(again.Status, Warn)
			}
			results[i] = again
		}
	}
	return Report{Results: results, Duration: time.Since(start)}
}

// runOne runs c under its own timeout, in a goroutine of its own so that a check that
// ignores its context still cannot hold up the report.
func runOne(ctx context.Context, c Check, limit time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	ch := make(chan Result, 1) // buffered: a late check must not block forever on send
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- Result{Status: Fail, Reason: fmt.Sprintf("check crashed: %v", p)}
			}
		}()
		ch <- c.Run(ctx)
	}()
	var r Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r = Result{Status: Fail, Reason: timeoutReason(ctx, limit, time.Since(start))}
	}
	r.Check = c.Name()
	r.Duration = time.Since(start)
	if r.Status == "" {
		r.Status = Fail
		r.Reason = joinReason(r.Reason, "check returned no status")
	}
	return r
}

// fixOne runs a Fix under the per-check timeout, like runOne.
func fixOne(ctx context.Context, name string, f Fixer, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	type out struct {
		changed string
		err     error
	}
	ch := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- out{err: fmt.Errorf("%s fix crashed: %v", name, p)}
			}
		}()
		c, err := f.Fix(ctx)
		ch <- out{c, err}
	}()
	select {
	case o := <-ch:
		return o.changed, o.err
	case <-ctx.Done():
		return "", fmt.Errorf("%s fix %s", name, timeoutReason(ctx, limit, time.Since(start)))
	}
}

// timeoutReason words why a check's context ended after elapsed: its own limit, the
// whole preflight's budget, or the caller's cancellation.
func timeoutReason(ctx context.Context, limit, elapsed time.Duration) string {
	switch {
	case ctx.Err() != context.DeadlineExceeded:
		return fmt.Sprintf("cancelled: %v", context.Cause(ctx))
	case elapsed >= limit:
		return fmt.Sprintf("timed out after %s", limit)
	}
	return fmt.Sprintf("preflight budget ran out after %s", elapsed.Round(time.Millisecond))
}

// joinReason appends b to a with "; ".
func joinReason(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
