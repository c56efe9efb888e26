package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRlimitNoFile lowers this process's open-files soft limit, which children then
// inherit, and checks that the check measures the child's limit and that --fix
// raises it for the children again. It changes process-wide state, so it does not
// run in parallel.
func TestRlimitNoFile(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max < MinNoFile {
		t.Skipf("hard open-files limit %d is under %d: cannot test the fix", orig.Max, MinNoFile)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 1000, Max: orig.Max}); err != nil {
		t.Fatal(err)
	}
	c := &RlimitCheck{InfinibandDir: t.TempDir()}
	r := runCheck(t, c)
	wantResult(t, r, Warn, "the job may open only 1000 files", fmt.Sprintf("ulimit -n %d", orig.Max))

	rep := runChecks([]Check{c}, RunOptions{Fix: true})
	got := rep.Results[0]
	wantResult(t, got, OK)
	if want := fmt.Sprintf("raised the open-files soft limit from 1000 to %d for jobs this trainwrap starts", orig.Max); got.Fixed != want {
		t.Errorf("Fixed %q, want %q", got.Fixed, want)
	}
	if want := fmt.Sprintf("nofile %d/%d", orig.Max, orig.Max); got.Value[:len(want)] != want {
		t.Errorf("value %q, want it to start with %q", got.Value, want)
	}
}

// TestRlimitMemlockWithInfiniband: a limited MEMLOCK warns only on a host with RDMA
// devices (a directory with one device entry stands in for /sys/class/infiniband).
func TestRlimitMemlockWithInfiniband(t *testing.T) {
	var ml unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &ml); err != nil {
		t.Fatal(err)
	}
	if ml.Cur == unix.RLIM_INFINITY {
		t.Skip("MEMLOCK is unlimited here: nothing to warn about")
	}
	ib := t.TempDir()
	if err := os.Mkdir(filepath.Join(ib, "mlx5_0"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantResult(t, runCheck(t, &RlimitCheck{InfinibandDir: ib}), Warn, "RDMA", "ulimit -l unlimited")
	noIB := runCheck(t, &RlimitCheck{InfinibandDir: t.TempDir()})
	if strings.Contains(noIB.Reason, "RDMA") {
		t.Errorf("warned about RDMA on a host without InfiniBand: %q", noIB.Reason)
	}
}
