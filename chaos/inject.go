package chaos

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// Injection modes of Inject.
const (
	InjectHang = "hang" // SIGSTOP every process of the job: the stall detector must fire
	InjectKill = "kill" // SIGKILL the job's leader, as the OOM killer would
	InjectTerm = "term" // SIGTERM the job's leader
)

// InjectModes lists the modes Inject accepts.
var InjectModes = []string{InjectHang, InjectKill, InjectTerm}

// Target is one process Inject signalled.
type Target struct {
	proc.Info
	// Leader is set for the supervised child itself.
	Leader bool
	// ByEnv is set when only its TRAINWRAP_RUN_ID ties it to the job (it left the
	// child's tree); it is then signalled only while that still holds.
	ByEnv bool
}

// Inject perturbs the job that the live supervisor of stateDir runs. Only processes
// proven to be the job's are signalled: the child recorded in state.json (pid and start
// time must match), its descendants, and processes carrying the run's
// TRAINWRAP_RUN_ID; never the supervisor or its guard. It returns the processes it
// signalled.
func Inject(stateDir, mode string, log io.Writer) ([]Target, error) {
	var sig syscall.Signal
	switch mode {
	case InjectHang:
		sig = syscall.SIGSTOP
	case InjectKill:
		sig = syscall.SIGKILL
	case InjectTerm:
		sig = syscall.SIGTERM
	default:
		return nil, fmt.Errorf("chaos inject: unknown mode %q; use one of %s", mode, strings.Join(InjectModes, ", "))
	}
	dir := rundir.New(stateDir)
	st, err := rundir.ReadState(dir.State())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("chaos inject: no job recorded in %s (no state.json); start one with trainwrap run, or pass its --state-dir", dir.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("chaos inject: %w", err)
	}
	sup := proc.ID{PID: st.Supervisor.PID, StartTime: st.Supervisor.StartTime}
	if !sup.Alive() {
		return nil, fmt.Errorf("chaos inject: the supervisor recorded in %s (pid %d) is not running; nothing to perturb", dir.State(), st.Supervisor.PID)
	}
	if st.Child == nil {
		return nil, fmt.Errorf("chaos inject: the supervisor in %s has no job running now (status %s); try again once it runs", dir.Path, st.Status)
	}
	leader := proc.ID{PID: st.Child.PID, StartTime: st.Child.StartTime}
	if !leader.Alive() {
		return nil, fmt.Errorf("chaos inject: the job recorded in %s (pid %d) is not running (status %s); try again once it runs", dir.State(), st.Child.PID, st.Status)
	}
	targets, err := jobProcesses(st, leader)
	if err != nil {
		return nil, fmt.Errorf("chaos inject: %w", err)
	}
	if mode != InjectHang {
		targets = targets[:1] // the leader comes first
	}
	var done []Target
	for _, t := range targets {
		var err error
		if t.ByEnv {
			err = proc.SignalIfEnv(t.ID, rundir.RunIDEnv, st.RunID, sig)
		} else {
			err = proc.Signal(t.ID, sig)
		}
		if errors.Is(err, proc.ErrGone) {
			continue // it exited between the scan and the signal: nothing to perturb
		}
		if err != nil {
			return done, fmt.Errorf("chaos inject: %s to pid %d: %w", sig, t.PID, err)
		}
		fmt.Fprintf(log, "chaos inject: sent %s to pid %d (%s)%s of run %s\n", signalName(sig), t.PID, t.Comm, leaderNote(t.Leader), st.RunID)
		done = append(done, t)
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("chaos inject: the job of run %s exited before it could be signalled", st.RunID)
	}
	return done, nil
}

// jobProcesses lists the job's live processes, the leader first: the child, its
// descendants, and processes that carry the run id (those that setsid'd away and were
// reparented). The supervisor and its guard carry the run id too and are left out.
func jobProcesses(st rundir.State, leader proc.ID) ([]Target, error) {
	info, err := proc.Stat(leader.PID)
	if err != nil || info.StartTime != leader.StartTime {
		return nil, fmt.Errorf("job leader pid %d: %w", leader.PID, proc.ErrGone)
	}
	out := []Target{{Info: info, Leader: true}}
	seen := map[int]bool{leader.PID: true, st.Supervisor.PID: true}
	if st.Guard != nil {
		seen[st.Guard.PID] = true
	}
	desc, err := proc.Descendants(leader.PID)
	if err != nil {
		return nil, fmt.Errorf("descendants of pid %d: %w", leader.PID, err)
	}
	tagged, err := proc.WithEnv(rundir.RunIDEnv, st.RunID)
	if err != nil {
		return nil, fmt.Errorf("processes of run %s: %w", st.RunID, err)
	}
	for i, p := range append(desc, tagged...) {
		if seen[p.PID] || p.Zombie() {
			continue
		}
		seen[p.PID] = true
		out = append(out, Target{Info: p, ByEnv: i >= len(desc)})
	}
	return out, nil
}

func leaderNote(leader bool) string {
	if leader {
		return ", the job's leader,"
	}
	return ""
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGSTOP:
		return "SIGSTOP"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
