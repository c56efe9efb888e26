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
// state.json.corrupt-<time>, never deleting it.
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

// Fix renames a corrupt state.json to state.json.corrupt-<UTC time>, keeping it for a
// person to read.
func (c *StateCheck) Fix(ctx context.Context) (string, error) {
	path := c.Dir.State()
	if _, err := rundir.ReadState(path); !errors.Is(err, rundir.ErrCorruptState) {
		return "", nil
	}
	dst := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("move corrupt %s aside: %w", path, err)
	}
	return "moved corrupt state.json to " + dst, nil
}
