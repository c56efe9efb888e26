package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// LeftoversCheck finds processes of an earlier run that outlived their supervisor:
// processes whose environment carries TRAINWRAP_RUN_ID=<run id in state.json> while
// the supervisor that state.json names (pid + start time) is dead. A GPU job that
// survives its supervisor holds GPU memory and ports and makes the next attempt fail.
// The fix kills exactly those processes with SIGKILL, each through a pidfd after
// re-checking its start time and run id, so a recycled pid is never hit.
type LeftoversCheck struct {
	Dir rundir.Dir
}

// Name is "leftovers".
func (*LeftoversCheck) Name() string { return "leftovers" }

// find returns the leftovers, the state they belong to, and whether the supervisor is
// alive (then they are its live job, not leftovers).
func (c *LeftoversCheck) find() ([]proc.Info, rundir.State, bool, error) {
	st, err := rundir.ReadState(c.Dir.State())
	if err != nil {
		return nil, st, false, err
	}
	if st.RunID == "" {
		return nil, st, false, nil
	}
	sup := proc.ID{PID: st.Supervisor.PID, StartTime: st.Supervisor.StartTime}
	if st.Supervisor.PID != 0 && sup.Alive() {
		return nil, st, true, nil
	}
	ps, err := proc.WithEnv(rundir.RunIDEnv, st.RunID)
	if err != nil {
		return nil, st, false, fmt.Errorf("list processes of run %s: %w", st.RunID, err)
	}
	return ps, st, false, nil
}

// Run lists the leftovers.
func (c *LeftoversCheck) Run(ctx context.Context) Result {
	ps, st, alive, err := c.find()
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Result{Status: OK, Value: "none (no earlier run)"}
	case errors.Is(err, rundir.ErrCorruptState):
		return Result{Status: Skip, Reason: "state.json is corrupt, so the earlier run's id is unknown (see state)"}
	case err != nil:
		return Result{Status: Fail, Reason: err.Error()}
	case alive:
		return Result{Status: OK, Value: fmt.Sprintf("supervisor pid %d is alive", st.Supervisor.PID)}
	case len(ps) == 0:
		return Result{Status: OK, Value: "none"}
	}
	res := Result{Status: Fail, Value: fmt.Sprintf("%d processes", len(ps))}
	pids := make([]string, len(ps))
	for i, p := range ps {
		pids[i] = fmt.Sprint(p.PID)
		res.Details = append(res.Details, fmt.Sprintf("pid %d (%s) of run %s", p.PID, p.Comm, st.RunID))
	}
	res.Reason = fmt.Sprintf("processes of run %s outlived supervisor pid %d: %s (--fix kills them)", st.RunID, st.Supervisor.PID, strings.Join(pids, ", "))
	return res
}

// Fix kills the leftovers with SIGKILL, each only if its start time and run id still
// match at the moment of the signal.
func (c *LeftoversCheck) Fix(ctx context.Context) (string, error) {
	ps, st, _, err := c.find()
	if err != nil || len(ps) == 0 {
		return "", nil
	}
	var killed []string
	var dying []proc.ID
	var errs []error
	for _, p := range ps {
		err := proc.SignalIfEnv(p.ID, rundir.RunIDEnv, st.RunID, syscall.SIGKILL)
		switch {
		case err == nil:
			killed = append(killed, fmt.Sprint(p.PID))
			dying = append(dying, p.ID)
		case errors.Is(err, proc.ErrGone):
			// It ended on its own between the listing and the kill.
		default:
			errs = append(errs, err)
		}
	}
	// SIGKILL is delivered at once but the exit takes a moment; wait, so that the
	// check run after the fix does not report them again.
	if err := waitGone(ctx, dying); err != nil {
		errs = append(errs, err)
	}
	changed := ""
	if len(killed) > 0 {
		changed = fmt.Sprintf("killed leftover processes of run %s: %s", st.RunID, strings.Join(killed, ", "))
	}
	return changed, errors.Join(errs...)
}

// waitGone polls until every process in ids is dead (a zombie counts as dead) or ctx
// ends.
func waitGone(ctx context.Context, ids []proc.ID) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := 0
		for _, id := range ids {
			if id.Alive() {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d killed processes still alive: %w", alive, ctx.Err())
		case <-tick.C:
		}
	}
}
