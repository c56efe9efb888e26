package observe

import (
	"cmp"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// gone reports whether pid no longer runs (exited, or a zombie awaiting its reaper).
func gone(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestCommandHook(t *testing.T) {
	out := t.TempDir()
	t.Setenv("HOOK_OUT", out)
	// The hook must not inherit the run id: the supervisor kills every process that
	// carries it along with the job.
	t.Setenv(rundir.RunIDEnv, "r1")

	tests := []struct {
		name    string
		hook    string
		event   Event
		check   func(t *testing.T)
		stderr  string
		timeout time.Duration
	}{
		{
			name:  "event in env vars and JSON on stdin",
			hook:  `cat > "$HOOK_OUT/stdin.json"; env > "$HOOK_OUT/env.txt"`,
			event: Event{Kind: Exited, RunID: "r1", Attempt: 2, Class: "cuda_oom", ExitCode: 1, Step: 42, Suggestion: "Lower the batch size."},
			check: func(t *testing.T) {
				testkit.Eventually(t, time.Minute, "the hook's files", func() bool {
					_, err := os.Stat(filepath.Join(out, "env.txt"))
					return err == nil
				})
				b, err := os.ReadFile(filepath.Join(out, "stdin.json"))
				if err != nil {
					t.Fatal(err)
				}
				var p Payload
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatalf("stdin is not the JSON payload: %v: %s", err, b)
				}
				if p.Event != Exited || p.Class != "cuda_oom" || p.Step != 42 || p.ExitCode == nil || *p.ExitCode != 1 {
					t.Errorf("stdin payload: %+v", p)
				}
				env, err := os.ReadFile(filepath.Join(out, "env.txt"))
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(string(env), "\n")
				for _, want := range []string{"TRAINWRAP_EVENT=exited", "TRAINWRAP_CLASS=cuda_oom", "TRAINWRAP_EXIT_CODE=1",
					"TRAINWRAP_ATTEMPT=2", "TRAINWRAP_STEP=42", "TRAINWRAP_EVENT_RUN_ID=r1", "TRAINWRAP_SUGGESTION=Lower the batch size."} {
					if !contains(lines, want) {
						t.Errorf("hook env lacks %s", want)
					}
				}
				for _, l := range lines {
					if strings.HasPrefix(l, rundir.RunIDEnv+"=") {
						t.Errorf("hook inherited %s", l)
					}
				}
			},
		},
		{
			name:   "a failing hook is reported with its output",
			hook:   `echo "no route to pager" >&2; exit 3`,
			event:  Event{Kind: GaveUp, Class: "nccl", ExitCode: 73},
			stderr: "exit status 3: no route to pager",
		},
		{
			name:    "a hung hook's whole group is killed",
			hook:    `sleep 60 & echo $! > "$HOOK_OUT/bg.pid"; sleep 60`,
			event:   Event{Kind: Hang, StallTimeout: time.Minute},
			timeout: 300 * time.Millisecond,
			stderr:  "killed after 300ms",
			check: func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(out, "bg.pid"))
				if err != nil {
					t.Fatal(err)
				}
				pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil {
					t.Fatal(err)
				}
				testkit.Eventually(t, time.Minute, "the hook's background child to die", func() bool { return gone(pid) })
				if !gone(pid) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr testkit.Buffer
			gate := filepath.Join(out, "published")
			if err := os.Remove(gate); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			hook := tc.hook
			if tc.timeout == 0 {
				// The hook starts its work only once Publish has returned: a Publish
				// that waited for the hook would never return. (The hung hook's short
				// timeout would count this wait too; its own sleep proves enough.)
				hook = `while [ ! -e "$HOOK_OUT/published" ]; do sleep 0.01; done; ` + hook
			}
			o, err := New(context.Background(), Options{NotifyCommand: hook, Stderr: &stderr, CommandTimeout: cmp.Or(tc.timeout, time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			testkit.Returns(t, time.Minute, "Publish", func() { o.Publish(tc.event) })
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := o.Close(); err != nil { // waits for the hook
				t.Fatal(err)
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
