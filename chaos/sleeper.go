package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// sleeperLifetime bounds the orphan mode's grandchild, so that a supervisor that fails
// to kill it leaks a process for minutes, not forever.
const sleeperLifetime = 10 * time.Minute

// Sleep is the orphan mode's grandchild: it leaves the job's session with setsid,
// ignores SIGTERM, SIGINT and SIGHUP, and sleeps until SIGKILL, ctx, or
// sleeperLifetime ends it. Only a supervisor that tracks descendants past setsid (a
// subreaper) finds and kills it.
func Sleep(ctx context.Context) error {
	// setsid fails when already a group leader; the spawner makes sure we are not.
	if _, err := syscall.Setsid(); err != nil {
		return fmt.Errorf("chaos sleeper: setsid: %w", err)
	}
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(ctx, sleeperLifetime)
	defer cancel()
	<-ctx.Done()
	return nil
}

// spawnOrphan starts the sleeper and does not wait for it, so it outlives the trainer.
func (t *trainer) spawnOrphan() error {
	cmd := &exec.Cmd{
		Path:   t.exe,
		Args:   []string{"trainwrap", "chaos", "train", "--sleeper"},
		Env:    os.Environ(),
		Stdout: nil,
		Stderr: nil,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos train: start the orphan grandchild %s: %w", t.exe, err)
	}
	fmt.Fprintf(t.stderr, "[chaos] started worker pid %d; it will setsid and ignore SIGTERM\n", cmd.Process.Pid)
	// Its exit status is the subreaper's business; releasing keeps no zombie in here.
	return cmd.Process.Release()
}
