package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// StateCheck makes sure state.json parses. Its fix moves a corrupt one aside as
// state.json.corrupt-<time>, never deleting it or an earlier corrupt copy.
type StateCheck struct {
	Dir rundir.Dir
}

// Name is "state".
func (*StateCheck) Name() string { return "state" }

// Run reads state.json with rundir.ReadState.
func (c *StateCheck) Run(ctx context.Context) Result {
	st, err := rundir.ReadState(c.Dir.State())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Result{Status: OK, Value: "none yet"}
	case errors.Is(err, rundir.ErrCorruptState):
		return Result{Status: Fail, Value: "corrupt", Reason: err.Error()}
	case err != nil:
		return Result{Status: Fail, Reason: err.Error()}
	}
	return Result{Status: OK, Value: fmt.Sprintf("run %s, attempt %d, %s", st.RunID, st.Attempt, st.Status)}
}

// Fix renames a corrupt state.json to state.json.corrupt-<UTC time> (rundir.MoveAside,
// the same as `run --force`), keeping it for a person to read.
func (c *StateCheck) Fix(ctx context.Context) (string, error) {
	path := c.Dir.State()
	if _, err := rundir.ReadState(path); !errors.Is(err, rundir.ErrCorruptState) {
		return "", nil
	}
	dst, err := rundir.MoveAside(path, time.Now())
	if err != nil {
		return "", err
	}
	return "moved corrupt state.json to " + dst, nil
}
