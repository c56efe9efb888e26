package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// DirsCheck makes sure the directories trainwrap writes into (run dir, logs,
// checkpoint root) exist and are writable. Its fix creates the missing ones; it
// cannot make a read-only one writable.
type DirsCheck struct {
	Dirs []string
}

// Name is "dirs".
func (*DirsCheck) Name() string { return "dirs" }

// Run checks each directory with access(2), which also reports a read-only mount
// (EROFS) to root, who passes every permission check.
func (c *DirsCheck) Run(ctx context.Context) Result {
	res := Result{Status: OK, Value: fmt.Sprintf("%d dirs", len(c.Dirs))}
	var missing []string
	for _, d := range c.Dirs {
		fi, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			missing = append(missing, d)
			res.Status = worse(res.Status, Warn)
			continue
		case err != nil:
			res.Status = Fail
			res.Reason = joinReason(res.Reason, fmt.Sprintf("stat %s: %v", d, err))
			continue
		case !fi.IsDir():
			res.Status = Fail
			res.Reason = joinReason(res.Reason, fmt.Sprintf("%s is not a directory; move it away or choose another path", d))
			continue
		}
		if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
			res.Status = Fail
			res.Reason = joinReason(res.Reason, fmt.Sprintf("%s is not writable (%v); fix its permissions or mount, or choose another path", d, err))
		}
	}
	if len(missing) > 0 {
		res.Reason = joinReason(res.Reason, fmt.Sprintf("missing: %s (--fix creates them)", strings.Join(missing, ", ")))
	}
	return res
}

// Fix creates the missing directories.
func (c *DirsCheck) Fix(ctx context.Context) (string, error) {
	var made []string
	for _, d := range c.Dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return strings.Join(made, ", "), fmt.Errorf("create %s: %w", d, err)
		}
		made = append(made, d)
	}
	if len(made) == 0 {
		return "", nil
	}
	return "created " + strings.Join(made, ", "), nil
}
