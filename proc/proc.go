// Package proc identifies processes by pid plus start time and signals only the ones
// proven to be the ones meant: a pid alone may have been reused by an unrelated process
// between the moment we looked and the moment we kill.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// ErrGone is returned when the process is dead or its pid now belongs to another
// process (a different start time).
var ErrGone = errors.New("process is gone")

// ID is a process identity: pid plus start time in clock ticks since boot.
type ID struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// String is pid@starttime, as logs and errors show a process.
func (id ID) String() string { return fmt.Sprintf("%d@%d", id.PID, id.StartTime) }

// Info is what /proc/PID/stat says of one process.
type Info struct {
	ID
	PPID  int
	PGID  int
	SID   int
	State string
	Comm  string
}

// Stat reads /proc/PID/stat.
func Stat(pid int) (Info, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return Info{}, fmt.Errorf("proc: %w", err)
	}
	return stat(fs, pid)
}

func stat(fs procfs.FS, pid int) (Info, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return Info{}, fmt.Errorf("proc %d: %w", pid, ErrGone)
	}
	st, err := p.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("proc %d: %w", pid, ErrGone)
	}
	return Info{
		ID:    ID{PID: pid, StartTime: st.Starttime},
		PPID:  st.PPID,
		PGID:  st.PGRP,
		SID:   st.Session,
		State: st.State,
		Comm:  st.Comm,
	}, nil
}

// Identify returns the identity of the live process pid.
func Identify(pid int) (ID, error) {
	in, err := Stat(pid)
	if err != nil {
		return ID{}, err
	}
	return in.ID, nil
}

// Self is the identity of this process.
func Self() (ID, error) { return Identify(os.Getpid()) }

// Alive reports whether the process named by id still runs (a zombie counts as dead).
func (id ID) Alive() bool {
	in, err := Stat(id.PID)
	return err == nil && in.StartTime == id.StartTime && in.State != "Z"
}

// All lists every process visible in /proc. Processes that exit while we look are
// skipped.
func All() ([]Info, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	d, err := os.Open(procfs.DefaultMountPoint)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if in, err := stat(fs, pid); err == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// Descendants lists the live descendants of pid (not pid itself), children before
// grandchildren. Zombies are included: they still need reaping, not killing.
func Descendants(pid int) ([]Info, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	children := make(map[int][]Info, len(all))
	for _, in := range all {
		children[in.PPID] = append(children[in.PPID], in)
	}
	var out []Info
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out, nil
}

// Catches reports whether pid has installed a handler for sig (the SigCgt mask of
// /proc/PID/status). A process without one would die of, say, SIGUSR1's default
// action, so a forwarded warning must skip it.
func Catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || sig < 1 || sig > 64 {
		return false
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("SigCgt:")); ok {
			mask, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// HasEnv reports whether the environment of pid holds key=value. It is false when the
// environment cannot be read (another user's process, or gone).
func HasEnv(pid int, key, value string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	want := []byte(key + "=" + value)
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// WithEnv lists the live processes (not zombies) whose environment holds key=value,
// excluding this process.
func WithEnv(key, value string) ([]Info, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []Info
	for _, in := range all {
		if in.PID == self || in.State == "Z" {
			continue
		}
		if HasEnv(in.PID, key, value) {
			out = append(out, in)
		}
	}
	return out, nil
}

// Signal sends sig to the process named by id, and only to it: it opens a pidfd,
// checks the start time through /proc while holding it, and signals through the pidfd,
// so a pid recycled in between cannot be hit. It returns ErrGone (wrapped) when the
// process is dead or is another one.
func Signal(id ID, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %v: %w", id, ErrGone)
		}
		return fmt.Errorf("signal %v: pidfd_open: %w", id, err)
	}
	defer unix.Close(fd)
	in, err := Stat(id.PID)
	if err != nil || in.StartTime != id.StartTime {
		return fmt.Errorf("signal %v: %w", id, ErrGone)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %v: %w", id, ErrGone)
		}
		return fmt.Errorf("signal %v: %w", id, err)
	}
	return nil
}

// SignalIfEnv is Signal that also requires key=value in the process's environment,
// checked while the pidfd is held: the proof used for processes of an earlier
// supervisor, whose parentage is lost.
func SignalIfEnv(id ID, key, value string, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		return fmt.Errorf("signal %v: %w", id, ErrGone)
	}
	defer unix.Close(fd)
	in, err := Stat(id.PID)
	if err != nil || in.StartTime != id.StartTime {
		return fmt.Errorf("signal %v: %w", id, ErrGone)
	}
	if !HasEnv(id.PID, key, value) {
		return fmt.Errorf("signal %v: %s=%s not in its environment: not ours", id, key, value)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signal %v: %w", id, err)
	}
	return nil
}

// KillAllWithEnv SIGKILLs every process carrying key=value, again and again (a dying
// parent may still fork), until none is left or ctx ends. It returns how many it
// killed; err is ctx's error when some were still alive at the end.
func KillAllWithEnv(ctx context.Context, key, value string) (int, error) {
	killed := map[ID]bool{}
	for {
		left, err := WithEnv(key, value)
		if err != nil {
			return len(killed), err
		}
		if len(left) == 0 {
			return len(killed), nil
		}
		for _, in := range left {
			if SignalIfEnv(in.ID, key, value, syscall.SIGKILL) == nil {
				killed[in.ID] = true
			}
		}
		select {
		case <-ctx.Done():
			return len(killed), fmt.Errorf("kill processes with %s=%s: %d left: %w", key, value, len(left), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
