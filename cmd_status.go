package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/shim"
	"github.com/trainwrap/trainwrap/training"
)

// StatusCmd prints what the supervisor of the run dir is doing now, or did last.
type StatusCmd struct {
	JSON bool `help:"Print state.json as JSON, with a field saying whether the supervisor is alive." name:"json"`
}

// Run prints the status.
func (c *StatusCmd) Run(g *Globals) error {
	dir := rundir.New(g.StateDir)
	st, err := rundir.ReadState(dir.State())
	if errors.Is(err, os.ErrNotExist) {
		return exitcode.New(1, fmt.Errorf("no run recorded in %s (no state.json); start one with trainwrap -- CMD, or point --state-dir at its run dir", dir.Path))
	}
	if err != nil {
		return exitcode.New(1, err)
	}
	alive := st.Supervisor.PID != 0 && proc.ID{PID: st.Supervisor.PID, StartTime: st.Supervisor.StartTime}.Alive()
	if c.JSON {
		out := struct {
			rundir.State
			SupervisorAlive bool `json:"supervisor_alive"`
		}{st, alive}
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	status := st.Status
	live := st.Status == rundir.StatusRunning || st.Status == rundir.StatusStarting || st.Status == rundir.StatusBackoff || st.Status == rundir.StatusStopping
	switch {
	case alive:
		status += " (supervisor alive)"
	case live:
		status += " (supervisor dead: it was killed or crashed; the next trainwrap run on this directory cleans up)"
	}
	fmt.Fprintf(w, "run\t%s\n", st.RunID)
	fmt.Fprintf(w, "status\t%s\n", status)
	fmt.Fprintf(w, "supervisor\tpid %d\n", st.Supervisor.PID)
	fmt.Fprintf(w, "command\t%s\n", strings.Join(st.Command, " "))
	if len(st.Adjustments) > 0 {
		// Smart recovery changed the job: what the attempt runs now, and each change.
		fmt.Fprintf(w, "attempt runs\t%s\n", strings.Join(st.AttemptCommand, " "))
		if env := envText(st.AttemptEnv); env != "" {
			fmt.Fprintf(w, "with env\t%s\n", env)
		}
		for _, a := range st.Adjustments {
			fmt.Fprintf(w, "adjusted\tattempt %d: %s (after %s)\n", a.Attempt, a, a.Class)
		}
	}
	fmt.Fprintf(w, "attempt\t%d (restarts %d)\n", st.Attempt, st.Restarts)
	if st.Child != nil {
		fmt.Fprintf(w, "job\tpid %d, group %d\n", st.Child.PID, st.Child.PGID)
	}
	fmt.Fprintf(w, "step\t%d\n", st.Step)
	if !st.LastProgress.IsZero() {
		fmt.Fprintf(w, "last progress\t%s (%s ago)\n", st.LastProgress.Format(time.RFC3339), time.Since(st.LastProgress).Round(time.Second))
	}
	if st.LastClass != "" {
		fmt.Fprintf(w, "last crash\t%s\n", st.LastClass)
	}
	if st.ResumeFrom != "" {
		fmt.Fprintf(w, "resume from\t%s\n", st.ResumeFrom)
	}
	if st.NextStart != nil {
		fmt.Fprintf(w, "next start\t%s\n", st.NextStart.Format(time.RFC3339))
	}
	if st.ExitCode != nil {
		fmt.Fprintf(w, "exit code\t%d\n", *st.ExitCode)
	}
	if st.LogWriteErrors > 0 {
		fmt.Fprintf(w, "log write errors\t%d\n", st.LogWriteErrors)
	}
	if st.MetricsWriteErrors > 0 {
		fmt.Fprintf(w, "metrics write errors\t%d\n", st.MetricsWriteErrors)
	}
	for _, a := range st.Anomalies {
		fmt.Fprintf(w, "anomaly\t%s\n", anomalyLine(a))
	}
	fmt.Fprintf(w, "updated\t%s\n", st.Updated.Format(time.RFC3339))
	return w.Flush()
}

// HistoryCmd prints one row per attempt from runs.jsonl.
type HistoryCmd struct {
	JSON bool `help:"Print the records as JSON lines." name:"json"`
}

// Run prints the history.
func (c *HistoryCmd) Run(g *Globals) error {
	dir := rundir.New(g.StateDir)
	recs, torn, err := rundir.ReadRecords(dir.Runs())
	if err != nil {
		return exitcode.New(1, err)
	}
	if w := torn.Warning(); w != "" {
		fmt.Fprintf(g.Stderr, "trainwrap: warning: %s\n", w)
	}
	if len(recs) == 0 {
		if _, serr := os.Stat(dir.Path); serr != nil {
			return exitcode.New(1, fmt.Errorf("no run directory at %s; point --state-dir at one", dir.Path))
		}
		fmt.Fprintln(g.Stdout, "no attempts recorded yet")
		return nil
	}
	if c.JSON {
		enc := json.NewEncoder(g.Stdout)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ATTEMPT\tSTART\tDURATION\tEXIT\tCLASS\tSTEPS\tRESUMED FROM\tDECISION")
	for _, r := range recs {
		exit := "-"
		switch {
		case r.Signal != "":
			exit = r.Signal
		case r.ExitCode != nil:
			exit = fmt.Sprint(*r.ExitCode)
		}
		resumed := r.ResumedFrom
		if resumed == "" {
			resumed = "-"
		} else {
			resumed = shortPath(resumed)
		}
		decision := r.Decision
		if r.Decision == rundir.DecisionRestart {
			decision = fmt.Sprintf("restart after %s", (time.Duration(r.BackoffMS) * time.Millisecond).Round(10*time.Millisecond))
			if strings.HasPrefix(r.Reason, "--on-anomaly restart") {
				decision += " (on anomaly)"
			}
		} else if r.Reason != "" && r.Decision == rundir.DecisionGiveUp {
			decision = "give up: " + r.Reason
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d→%d\t%s\t%s\n", r.Attempt, r.Start.Local().Format("2006-01-02 15:04:05"),
			time.Duration(r.DurationS*float64(time.Second)).Round(10*time.Millisecond), exit, r.Class, r.StepStart, r.StepEnd, resumed, decision)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	writeAdjustments(g.Stdout, recs)
	writeAnomalies(g.Stdout, recs)
	return nil
}

// writeAnomalies lists, under the history table, what the training-metrics detector
// found in each attempt.
func writeAnomalies(w io.Writer, recs []rundir.Record) {
	header := false
	for _, r := range recs {
		if len(r.Anomalies) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nanomalies:")
			header = true
		}
		for _, a := range r.Anomalies {
			fmt.Fprintf(w, "  %s\n", anomalyLine(a))
		}
		if r.AnomaliesDropped > 0 {
			fmt.Fprintf(w, "  attempt %d: %d more not recorded\n", r.Attempt, r.AnomaliesDropped)
		}
	}
}

// anomalyLine is one anomaly for people: when, which attempt and step, what.
func anomalyLine(a training.Anomaly) string {
	return fmt.Sprintf("%s attempt %d step %d: %s: %s", a.Time.Local().Format("2006-01-02 15:04:05"), a.Attempt, a.Step, a.Kind, a.Message)
}

// writeAdjustments lists, under the history table, what smart recovery changed
// before each attempt, and the command that attempt ran.
func writeAdjustments(w io.Writer, recs []rundir.Record) {
	var byAttempt = map[int][]rundir.Adjustment{}
	for _, r := range recs {
		for _, a := range r.Adjustments {
			byAttempt[a.Attempt] = append(byAttempt[a.Attempt], a)
		}
	}
	if len(byAttempt) == 0 {
		return
	}
	fmt.Fprintln(w, "\nsmart recovery:")
	for _, r := range recs {
		as := byAttempt[r.Attempt]
		if len(as) == 0 {
			continue
		}
		parts := make([]string, len(as))
		for i, a := range as {
			parts[i] = a.String()
		}
		fmt.Fprintf(w, "  attempt %d (after %s): %s\n", r.Attempt, as[0].Class, strings.Join(parts, ", "))
		fmt.Fprintf(w, "    ran: %s\n", strings.Join(r.Command, " "))
		if env := envText(r.Env); env != "" {
			fmt.Fprintf(w, "    env: %s\n", env)
		}
	}
}

// envText is env as sorted KEY=VALUE words.
func envText(env map[string]string) string {
	keys := slices.Sorted(maps.Keys(env))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + env[k]
	}
	return strings.Join(parts, " ")
}

func shortPath(p string) string {
	if wd, err := os.Getwd(); err == nil && strings.HasPrefix(p, wd+"/") {
		return p[len(wd)+1:]
	}
	return p
}

// GuardCmd is the internal guard process started by every supervisor.
type GuardCmd struct {
	RunID           string `help:"Run id whose processes to sweep." required:""`
	SupervisorPID   int    `help:"Pid of the supervisor." required:""`
	SupervisorStart uint64 `help:"Start time of the supervisor (clock ticks since boot)." required:""`
	Cgroup          string `help:"The job's cgroup directory, killed as a whole." placeholder:"DIR"`
	Sentinel        bool   `help:"This guard runs inside the job's cgroup: kill the attempts' leaves, not the whole cgroup."`
}

// Run waits for the supervisor to go, then sweeps.
func (c *GuardCmd) Run(g *Globals) error {
	return shim.RunGuard(context.Background(), shim.GuardOptions{
		RunID:      c.RunID,
		Supervisor: proc.ID{PID: c.SupervisorPID, StartTime: c.SupervisorStart},
		Stdin:      os.Stdin,
		Ready:      os.Stdout,
		Stderr:     g.Stderr,
		Signals:    g.Signals,
		Cgroup:     c.Cgroup,
		Sentinel:   c.Sentinel,
	})
}
