package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startSleeper starts `sleep` with extra environment and reaps it at cleanup.
func startSleeper(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func TestIdentityAndSignal(t *testing.T) {
	cmd := startSleeper(t)
	id, err := Identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if id.StartTime == 0 || !id.Alive() {
		t.Fatalf("identity %v: want a live process with a start time", id)
	}
	// The same pid with another start time is another process: never signalled.
	other := ID{PID: id.PID, StartTime: id.StartTime + 1}
	if other.Alive() {
		t.Fatal("a wrong start time counts as alive")
	}
	if err := Signal(other, syscall.SIGKILL); !errors.Is(err, ErrGone) {
		t.Fatalf("Signal with a wrong start time: %v, want ErrGone", err)
	}
	if !id.Alive() {
		t.Fatal("the process died from a signal meant for another")
	}
	if err := Signal(id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if id.Alive() {
		t.Fatal("alive after SIGKILL and reaping")
	}
	if err := Signal(id, syscall.SIGKILL); !errors.Is(err, ErrGone) {
		t.Fatalf("Signal to a dead process: %v, want ErrGone", err)
	}
}

func TestWithEnvAndSignalIfEnv(t *testing.T) {
	ours := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-1")
	theirs := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-2")
	found, err := WithEnv("TRAINWRAP_RUN_ID", "proc-test-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].PID != ours.Process.Pid {
		t.Fatalf("WithEnv found %+v, want only pid %d", found, ours.Process.Pid)
	}
	tid, _ := Identify(theirs.Process.Pid)
	if err := SignalIfEnv(tid, "TRAINWRAP_RUN_ID", "proc-test-1", syscall.SIGKILL); err == nil {
		t.Fatal("SignalIfEnv signalled a process without the run id")
	}
	if !tid.Alive() {
		t.Fatal("the other run's process died")
	}
	if err := SignalIfEnv(found[0].ID, "TRAINWRAP_RUN_ID", "proc-test-1", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ours.Wait()
}

// startGroup starts cmd in a process group of its own, killed whole at the test's end.
func startGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
}

func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300 & wait")
	startGroup(t, cmd)
	deadline := time.Now().Add(time.Minute)
	for {
		ds, err := Descendants(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		// A forked shell is "sh" until it has exec'd sleep: look again until both have.
		if len(ds) == 2 && ds[0].Comm == "sleep" && ds[1].Comm == "sleep" {
			for _, d := range ds {
				if d.PPID != cmd.Process.Pid || d.Comm != "sleep" {
					t.Fatalf("descendant %+v: want a sleep whose parent is %d", d, cmd.Process.Pid)
				}
				Signal(d.ID, syscall.SIGKILL)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descendants %+v, want 2 sleeps", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKillAllWithEnv(t *testing.T) {
	a := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-3")
	b := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-3")
	other := startSleeper(t, "TRAINWRAP_RUN_ID=proc-test-4")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Reap them as they die, as their parent would.
	done := make(chan struct{})
	go func() { a.Wait(); b.Wait(); close(done) }()
	n, err := KillAllWithEnv(ctx, "TRAINWRAP_RUN_ID", "proc-test-3")
	if err != nil || n != 2 {
		t.Fatalf("KillAllWithEnv = %d, %v; want 2 killed", n, err)
	}
	<-done
	if oid, err := Identify(other.Process.Pid); err != nil || !oid.Alive() {
		t.Fatal("a process of another run was killed")
	}
}

func TestParseStat(t *testing.T) {
	cases := []struct {
		name string
		line string
		want Info
		ok   bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 9876 8192 100 18446744073709551615",
			Info{ID: ID{PID: 42, StartTime: 9876}, PPID: 1, PGID: 42, SID: 42, State: "S", Comm: "sleep"}, true},
		// A comm may hold spaces and parentheses: the fields start after the last ')'.
		{"comm with ) and spaces", "7 (a) b (c) Z 3 5 6 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0",
			Info{ID: ID{PID: 7, StartTime: 55}, PPID: 3, PGID: 5, SID: 6, State: "Z", Comm: "a) b (c"}, true},
		{"truncated before starttime", "7 (x) S 1 1 1 0 -1", Info{}, false},
		{"no comm", "7 x S 1 1 1", Info{}, false},
		{"empty", "", Info{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseStat(tc.want.PID, []byte(tc.line))
			if tc.want.PID == 0 {
				got, ok = parseStat(7, []byte(tc.line))
			}
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("parseStat(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Stat reads what procfs reads: the raw reader agrees with the kernel's own fields for
// this process.
func TestStatOfSelf(t *testing.T) {
	in, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if in.PPID != os.Getppid() || in.PGID != syscall.Getpgrp() || in.StartTime == 0 || in.State == "" {
		t.Fatalf("Stat(self) = %+v; want ppid %d, pgid %d, a start time and a state", in, os.Getppid(), syscall.Getpgrp())
	}
}

// The tree walk finds what the kernel re-parents to a subreaper: a grandchild whose
// parent exited (a double fork) is then our child, and Tree(self) lists it with us
// as its parent.
func TestTreeFindsADoubleForkedGrandchild(t *testing.T) {
	if !ChildrenSupported() {
		t.Skip("no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) here")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The middle shell writes the grandchild's pid and exits; the grandchild stays.
	cmd := exec.Command("sh", "-c", `sleep 300 </dev/null >/dev/null 2>&1 & echo $! > "$1.tmp"; mv "$1.tmp" "$1"`, "sh", pidFile)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	})
	tree, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range tree {
		if in.PID == pid {
			if in.PPID != os.Getpid() {
				t.Fatalf("grandchild %+v: want us (%d) as its parent after its parent exited", in, os.Getpid())
			}
			return
		}
	}
	t.Fatalf("Tree(self) = %+v: the double-forked grandchild %d is missing", tree, pid)
}

// Tree and the host-wide scan agree on a process tree three levels deep.
func TestTreeMatchesTheHostScan(t *testing.T) {
	if !ChildrenSupported() {
		t.Skip("no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) here")
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `sh -c 'sleep 300 & sleep 300 & touch "$1"; wait' sh "$1" & wait`, "sh", filepath.Join(dir, "ready"))
	startGroup(t, cmd)
	deadline := time.Now().Add(time.Minute)
	for {
		tree, err := Tree(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		all, err := All()
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]bool{}
		parents := map[int]bool{cmd.Process.Pid: true}
		for changed := true; changed; {
			changed = false
			for _, in := range all {
				if parents[in.PPID] && !want[in.PID] {
					want[in.PID], parents[in.PID], changed = true, true, true
				}
			}
		}
		sleeps := 0
		got := map[int]bool{}
		for _, in := range tree {
			got[in.PID] = true
			if in.Comm == "sleep" {
				sleeps++
			}
		}
		if sleeps == 2 && len(tree) == 3 && fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Tree = %+v, host scan %v; want the same 3 processes, 2 of them sleeps", tree, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Watch says the process exited, and only once it has; one opened with a start time
// that is not the process's is refused, as for a pid reused by another process.
func TestWatch(t *testing.T) {
	cmd := startSleeper(t)
	id, err := Identify(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWatch(ID{PID: id.PID, StartTime: id.StartTime + 1}); !errors.Is(err, ErrGone) {
		t.Fatalf("NewWatch with a wrong start time: %v, want ErrGone", err)
	}
	w, err := NewWatch(id)
	if err != nil {
		t.Skipf("no pidfd here: %v", err)
	}
	defer w.Close()
	select {
	case <-w.Exited():
		t.Fatal("Exited is closed while the process runs")
	default:
	}
	if err := Signal(id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Exited():
	case <-time.After(time.Minute):
		t.Fatal("Exited not closed a minute after SIGKILL")
	}
}
