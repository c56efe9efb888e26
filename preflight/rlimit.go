package preflight

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// MinNoFile is the open-files soft limit under which a DataLoader with many workers
// (each tensor shared through a file descriptor) runs out with "Too many open files".
const MinNoFile = 4096

// RlimitCheck reports the RLIMIT_NOFILE the job will get and RLIMIT_MEMLOCK. Go raises
// its own soft NOFILE limit at start but hands children the original one, so the
// limit is measured in a child (/bin/sh), not read from this process. MEMLOCK warns
// only on hosts with InfiniBand devices, where RDMA needs it unlimited.
type RlimitCheck struct {
	// InfinibandDir defaults to /sys/class/infiniband.
	InfinibandDir string
}

// Name is "rlimits".
func (*RlimitCheck) Name() string { return "rlimits" }

// childNoFile returns the soft and hard NOFILE limits a child of this process gets.
func childNoFile(ctx context.Context) (soft, hard uint64, err error) {
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", "ulimit -Sn; ulimit -Hn").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("measure the job's open-files limit with /bin/sh: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("measure the job's open-files limit: /bin/sh printed %q", out)
	}
	parse := func(s string) (uint64, error) {
		if s == "unlimited" {
			return unix.RLIM_INFINITY, nil
		}
		return strconv.ParseUint(s, 10, 64)
	}
	if soft, err = parse(f[0]); err != nil {
		return 0, 0, fmt.Errorf("open-files soft limit %q: %w", f[0], err)
	}
	if hard, err = parse(f[1]); err != nil {
		return 0, 0, fmt.Errorf("open-files hard limit %q: %w", f[1], err)
	}
	return soft, hard, nil
}

// Run measures both limits.
func (c *RlimitCheck) Run(ctx context.Context) Result {
	res := Result{Status: OK}
	soft, hard, err := childNoFile(ctx)
	if err != nil {
		var rl unix.Rlimit
		if gerr := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); gerr != nil {
			return Result{Status: Warn, Reason: err.Error()}
		}
		// This process's limit may be higher than the job's: say so.
		soft, hard = rl.Cur, rl.Max
		res.Details = append(res.Details, err.Error()+"; showing trainwrap's own limit")
	}
	res.Value = "nofile " + formatLimit(soft) + "/" + formatLimit(hard)
	if soft < MinNoFile {
		res.Status = Warn
		hint := "raise it with ulimit -n"
		if hard > soft {
			hint = fmt.Sprintf("raise it with ulimit -n %s, or --fix for jobs this trainwrap starts", formatLimit(hard))
		}
		res.Reason = fmt.Sprintf("the job may open only %d files (want %d for DataLoader workers); %s", soft, MinNoFile, hint)
	}

	var ml unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &ml); err != nil {
		res.Details = append(res.Details, fmt.Sprintf("getrlimit memlock: %v", err))
		return res
	}
	res.Value += ", memlock " + formatMemlock(ml.Cur)
	if ml.Cur != unix.RLIM_INFINITY && c.hasInfiniband() {
		res.Status = worse(res.Status, Warn)
		res.Reason = joinReason(res.Reason, fmt.Sprintf("locked memory is limited to %s on a host with InfiniBand: RDMA (NCCL over IB) needs it unlimited (ulimit -l unlimited)", formatMemlock(ml.Cur)))
	}
	return res
}

// hasInfiniband reports whether the host has RDMA devices.
func (c *RlimitCheck) hasInfiniband() bool {
	dir := c.InfinibandDir
	if dir == "" {
		dir = "/sys/class/infiniband"
	}
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) > 0
}

// Fix raises the open-files soft limit to the hard limit. It uses syscall.Setrlimit,
// which also tells the Go runtime to hand the new limit to children, so the jobs this
// trainwrap starts get it; it cannot change the limit of any other process.
func (c *RlimitCheck) Fix(ctx context.Context) (string, error) {
	soft, hard, err := childNoFile(ctx)
	if err != nil {
		return "", err
	}
	if soft >= MinNoFile || hard <= soft {
		return "", nil
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: hard, Max: hard}); err != nil {
		return "", fmt.Errorf("raise the open-files limit to %s: %w", formatLimit(hard), err)
	}
	return fmt.Sprintf("raised the open-files soft limit from %d to %s for jobs this trainwrap starts", soft, formatLimit(hard)), nil
}

func formatLimit(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

func formatMemlock(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return formatBytes(v)
}
