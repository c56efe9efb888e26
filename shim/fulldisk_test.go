package shim

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/rundir"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, so that a job can fill
// it for real and the supervisor's writes there fail with ENOSPC. It skips the test
// where mounting is not allowed (it needs CAP_SYS_ADMIN; CI's may lack it).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (mount needs CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the test tmpfs %s: %v", dir, err)
		}
	})
	return dir
}

// On a full state-dir disk no attempt record is lost, state.json ends truthful, and
// each kind of write failure is warned about once, not once per write. The job fills
// the tmpfs that holds the state dir; in one case it frees the space again in its next
// attempt, in the other the disk stays full to the end and the final state and record
// come out of the space the supervisor reserved.
func TestFullStateDiskLosesNoRecord(t *testing.T) {
	const fill = `cat /dev/zero > "$SD/fill" 2>/dev/null; i=0; while [ $i -lt 50 ]; do echo "line $i"; i=$((i+1)); done`
	cases := []struct {
		name      string
		script    string
		code      int
		status    string
		decisions []string
	}{
		{
			name: "space returns",
			script: `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then ` + fill + `; exit 1; fi
rm -f "$SD/fill"; echo freed; exit 0`,
			code: 0, status: rundir.StatusSucceeded,
			decisions: []string{rundir.DecisionRestart, rundir.DecisionDone},
		},
		{
			name:   "disk stays full to the end",
			script: `if [ "$TRAINWRAP_ATTEMPT" = 1 ]; then ` + fill + `; exit 1; fi; echo still full; exit 0`,
			code:   0, status: rundir.StatusSucceeded,
			decisions: []string{rundir.DecisionRestart, rundir.DecisionDone},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sd := filepath.Join(mountTmpfs(t, "4m"), "sd")
			t.Setenv("SD", sd)
			s := startSupervisor(t, testOptions{StateDir: sd, Pty: "never", BackoffInitial: time.Millisecond, BackoffMax: time.Millisecond,
				MaxRestartsInWindow: 5, RestartWindow: time.Minute}, "sh", "-c", tc.script)
			if code := s.wait(time.Minute); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, s.stderr.String())
			}
			stderr := s.stderr.String()
			st := s.state()
			if st.Status != tc.status || st.ExitCode == nil || *st.ExitCode != tc.code {
				t.Fatalf("state.json says %s (exit %v), want %s: the final state was lost\n%s", st.Status, st.ExitCode, tc.status, stderr)
			}
			recs := s.records()
			var got []string
			for _, r := range recs {
				got = append(got, r.Decision)
			}
			if strings.Join(got, ",") != strings.Join(tc.decisions, ",") {
				t.Fatalf("runs.jsonl decisions %v, want %v: a record was lost\n%s", got, tc.decisions, stderr)
			}
			if recs[0].Attempt != 1 || recs[0].ExitCode == nil || *recs[0].ExitCode != 1 {
				t.Fatalf("first record %+v, want attempt 1 exiting 1", recs[0])
			}
			for _, kind := range []string{"cannot write state.json", "cannot write the attempt record"} {
				if n := strings.Count(stderr, kind); n > 1 {
					t.Fatalf("%q warned %d times, want once\n%s", kind, n, stderr)
				}
			}
			if n := strings.Count(stderr, "no space left on device"); n < 1 || n > 3 {
				t.Fatalf("%d warnings name ENOSPC, want one per kind (state, record, job log)\n%s", n, stderr)
			}
		})
	}
}
