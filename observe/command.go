package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// command runs `sh -c CMD` for each notification, with the event in TRAINWRAP_* env
// vars and the JSON payload on stdin.
type command struct {
	cmd     string
	timeout time.Duration
	env     []string // the inherited environment, cleaned once
}

// newCommand prepares the notifier. The supervisor treats every process that carries
// TRAINWRAP_RUN_ID=<this run> as part of the job and kills it with the job, so the
// hook must not inherit that variable: it gets the id as TRAINWRAP_EVENT_RUN_ID.
func newCommand(cmd string, timeout time.Duration) *command {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, rundir.RunIDEnv+"=") {
			env = append(env, kv)
		}
	}
	return &command{cmd: cmd, timeout: timeout, env: env}
}

func (c *command) name() string { return "notify-command" }

// tailBuffer keeps the last max bytes written, so a chatty hook cannot grow memory.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// deliver runs the hook in a process group of its own and kills the whole group when
// it outlives the timeout, so a hook that hangs (a curl without --max-time) cannot
// pile up.
func (c *command) deliver(ctx context.Context, p Payload, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", c.cmd)
	// Setpgid and not Setsid: the supervisor's reaper leaves zombies of its own
	// session to their exec.Cmd.Wait, so this hook's status is not stolen.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group is ours: its leader is our unreaped child, so the id cannot
		// have been reused.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = bytes.NewReader(body)
	out := &tailBuffer{max: 2048}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(append([]string(nil), c.env...), eventEnv(p)...)
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %s", c.timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("%s", ee.ProcessState)
	}
	if msg := strings.TrimSpace(string(out.b)); msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// eventEnv is the event as environment variables, for hooks written in shell.
func eventEnv(p Payload) []string {
	env := []string{
		"TRAINWRAP_EVENT=" + string(p.Event),
		"TRAINWRAP_EVENT_RUN_ID=" + p.RunID,
		"TRAINWRAP_EVENT_TIME=" + p.Time,
		"TRAINWRAP_TEXT=" + p.Text,
		"TRAINWRAP_HOST=" + p.Host,
		"TRAINWRAP_ATTEMPT=" + strconv.Itoa(p.Attempt),
		"TRAINWRAP_STEP=" + strconv.FormatInt(p.Step, 10),
		"TRAINWRAP_CLASS=" + p.Class,
		"TRAINWRAP_SIGNAL=" + p.Signal,
		"TRAINWRAP_SUGGESTION=" + p.Suggestion,
		"TRAINWRAP_MESSAGE=" + p.Message,
	}
	if p.ExitCode != nil {
		env = append(env, "TRAINWRAP_EXIT_CODE="+strconv.Itoa(*p.ExitCode))
	}
	if p.Restarts > 0 {
		env = append(env, "TRAINWRAP_RESTARTS="+strconv.Itoa(p.Restarts))
	}
	if p.BackoffS > 0 {
		env = append(env, "TRAINWRAP_BACKOFF_S="+strconv.FormatFloat(p.BackoffS, 'f', -1, 64))
	}
	return env
}
