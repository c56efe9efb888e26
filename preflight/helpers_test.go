package preflight

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a fresh tmpfs with opts (for example "size=16m,nr_inodes=64") on
// a temporary directory and unmounts it when the test ends. It skips the test where
// mounting is not permitted (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); this test needs root", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillTo writes a file into dir until the filesystem has about free bytes left.
func fillTo(t *testing.T, dir string, free uint64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := st.Bavail * uint64(st.Bsize)
	if avail <= free {
		return
	}
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Real writes, not fallocate: tmpfs counts pages actually allocated.
	buf := make([]byte, 1<<16)
	for left := avail - free; left > 0; {
		n := min(left, uint64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
		left -= n
	}
}

// child is a process a test started; done closes when it has been reaped.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc starts argv with extra environment entries, and kills and reaps it when
// the test ends.
func startProc(t *testing.T, env []string, argv ...string) *child {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			t.Errorf("process %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	return c
}

// exited reports whether the child has exited within d.
func (c *child) exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// testDeadline bounds a check a test runs: long enough that only a hung check
// reaches it, however slow the machine, so no verdict depends on the machine's speed
// (the registry's own 5 s per check is a margin on a loaded CI machine).
const testDeadline = 10 * time.Minute

// runCheck runs one check the way the registry does, under testDeadline.
func runCheck(t *testing.T, c Check) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	return runOne(ctx, c, testDeadline)
}

// runChecks is Run with every limit opt leaves unset at testDeadline.
func runChecks(checks []Check, opt RunOptions) Report {
	if opt.PerCheck <= 0 {
		opt.PerCheck = testDeadline
	}
	if opt.Budget <= 0 {
		opt.Budget = testDeadline
	}
	if opt.PerFix <= 0 {
		opt.PerFix = testDeadline
	}
	return Run(context.Background(), checks, opt)
}

// wantResult fails the test when r has not the status or its reason lacks a part.
func wantResult(t *testing.T, r Result, status Status, reasonParts ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %s, want %s (value %q, reason %q)", r.Check, r.Status, status, r.Value, r.Reason)
	}
	for _, p := range reasonParts {
		if !strings.Contains(r.Reason, p) {
			t.Errorf("%s: reason %q lacks %q", r.Check, r.Reason, p)
		}
	}
}
