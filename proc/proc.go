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
	"sync"
	"syscall"
	"time"

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

// Zombie reports whether the process has exited and waits to be reaped: it runs no
// more and has closed its descriptors, though its pid still names it.
func (in Info) Zombie() bool { return in.State == "Z" }

// Stat reads /proc/PID/stat.
func Stat(pid int) (Info, error) {
	var buf [1024]byte
	b, err := readSmall(statPath(pid), buf[:])
	if err != nil {
		return Info{}, fmt.Errorf("proc %d: %w", pid, ErrGone)
	}
	in, ok := parseStat(pid, b)
	if !ok {
		return Info{}, fmt.Errorf("proc %d: unreadable stat %q: %w", pid, b, ErrGone)
	}
	return in, nil
}

// statPath is /proc/PID/stat, built without fmt: Stat runs for every process of a job
// on every SIGCHLD.
func statPath(pid int) string {
	var b [32]byte
	out := append(b[:0], "/proc/"...)
	out = strconv.AppendInt(out, int64(pid), 10)
	out = append(out, "/stat"...)
	return string(out)
}

// readSmall reads a small procfs file into buf with raw system calls: os.Open would
// register the descriptor with the runtime poller (two fcntls and a failing epoll_ctl
// per file), which for procfs buys nothing.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// parseStat parses a /proc/PID/stat line (proc(5)): "pid (comm) state ppid pgrp
// session ... starttime(22nd) ...". The comm may hold spaces and parentheses, so the
// fields start after its last ')'.
func parseStat(pid int, b []byte) (Info, bool) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open || closing+2 > len(b) {
		return Info{}, false
	}
	in := Info{ID: ID{PID: pid}, Comm: string(b[open+1 : closing])}
	rest := b[closing+2:]
	// Field 3 (state) is index 0 here; starttime, field 22, is index 19.
	for i := 0; i <= 19; i++ {
		sp := bytes.IndexByte(rest, ' ')
		f := rest
		if sp >= 0 {
			f = rest[:sp]
		}
		switch i {
		case 0:
			in.State = string(f)
		case 1, 2, 3, 19:
			v, err := strconv.ParseUint(string(bytes.TrimSpace(f)), 10, 64)
			if err != nil {
				return Info{}, false
			}
			switch i {
			case 1:
				in.PPID = int(v)
			case 2:
				in.PGID = int(v)
			case 3:
				in.SID = int(v)
			case 19:
				in.StartTime = v
			}
		}
		if sp < 0 {
			if i < 19 {
				return Info{}, false
			}
			break
		}
		rest = rest[sp+1:]
	}
	return in, true
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
	return err == nil && in.StartTime == id.StartTime && !in.Zombie()
}

// All lists every process visible in /proc. Processes that exit while we look are
// skipped. It reads one file per process on the host: the last resort, where the
// kernel cannot name the processes wanted (Tree, a cgroup's cgroup.procs).
func All() ([]Info, error) {
	d, err := os.Open("/proc")
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
		if in, err := Stat(pid); err == nil {
			out = append(out, in)
		}
	}
	return out, nil
}

// Children lists the pids of pid's children, from /proc/PID/task/TID/children of each
// of its threads (a child belongs to the thread that forked it, and an orphan to the
// thread of its new reaper that took it). A zombie child is listed until it is reaped.
// It needs CONFIG_PROC_CHILDREN; see ChildrenSupported.
func Children(pid int) ([]int, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tids, err := readDirNames(dir)
	if err != nil {
		return nil, fmt.Errorf("proc %d: %w", pid, ErrGone)
	}
	var out []int
	var buf [4096]byte
	for _, tid := range tids {
		b, err := readSmall(dir+"/"+tid+"/children", buf[:])
		if err != nil {
			continue // the thread ended while we looked
		}
		if len(b) == len(buf) {
			// More children than one read holds: read the whole file.
			if b, err = os.ReadFile(dir + "/" + tid + "/children"); err != nil {
				continue
			}
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// readDirNames lists a procfs directory with raw system calls (see readSmall).
func readDirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	var buf [4096]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// ChildrenSupported reports whether this kernel has /proc/PID/task/TID/children
// (CONFIG_PROC_CHILDREN); without it Tree and Descendants scan every process.
func ChildrenSupported() bool { return childrenSupported() }

// childrenSupported is asked once: the kernel's configuration does not change.
var childrenSupported = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/children")
	return err == nil
})

// Tree lists the descendants of pid (not pid itself), children before grandchildren,
// zombies included, reading only the processes of that tree. Each one's parent is
// checked against the tree: a pid that a child held, reaped and reused by an unrelated
// process between the two reads is left out. A process forked, or re-parented into the
// tree, while Tree walks may be missed: callers that need none left look again.
func Tree(pid int) ([]Info, error) {
	kids, err := Children(pid)
	if err != nil {
		return nil, err
	}
	var out []Info
	type edge struct{ parent, child int }
	queue := make([]edge, 0, len(kids))
	for _, k := range kids {
		queue = append(queue, edge{pid, k})
	}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if seen[e.child] {
			continue
		}
		in, err := Stat(e.child)
		if err != nil || in.PPID != e.parent {
			continue
		}
		seen[e.child] = true
		out = append(out, in)
		if in.Zombie() {
			continue // a zombie has no children of its own any more
		}
		gk, err := Children(e.child)
		if err != nil {
			continue
		}
		for _, g := range gk {
			queue = append(queue, edge{e.child, g})
		}
	}
	return out, nil
}

// Descendants lists the live descendants of pid (not pid itself), children before
// grandchildren. Zombies are included: they still need reaping, not killing. It walks
// the tree through /proc/PID/task/TID/children where the kernel has it, and scans
// every process otherwise.
func Descendants(pid int) ([]Info, error) {
	if ChildrenSupported() {
		return Tree(pid)
	}
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
		if in.PID == self || in.Zombie() {
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

// Watch is a pidfd of one process, readable once the process exits: waiting on it
// costs no wake-up until then, unlike a poll of /proc.
type Watch struct {
	f      *os.File
	exited chan struct{}
}

// NewWatch opens a pidfd on the process named by id, checking its start time while
// the pidfd is held. It returns ErrGone (wrapped) when the process is dead or is
// another one, and another error where the kernel has no pidfd (before Linux 5.10,
// which added PIDFD_NONBLOCK): then the caller has to poll.
func NewWatch(id ID) (*Watch, error) {
	fd, err := unix.PidfdOpen(id.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("watch %v: %w", id, ErrGone)
		}
		return nil, fmt.Errorf("watch %v: pidfd_open: %w", id, err)
	}
	if !id.Alive() {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %v: %w", id, ErrGone)
	}
	// Non-blocking, so os.NewFile puts it in the runtime's poller: the goroutine below
	// sleeps in epoll, not on a thread of its own.
	w := &Watch{f: os.NewFile(uintptr(fd), "pidfd:"+id.String()), exited: make(chan struct{})}
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.f.Close()
		return nil, fmt.Errorf("watch %v: %w", id, err)
	}
	go func() {
		// A pidfd has nothing to read; it polls readable once the process has exited.
		// The first call asks the kernel, so an exit before the poller knew is seen.
		err := rc.Read(func(fd uintptr) bool {
			p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(p, 0)
			return n > 0
		})
		if err == nil {
			close(w.exited)
		}
	}()
	return w, nil
}

// Exited is closed once the process has exited (a zombie has exited); never, after
// Close.
func (w *Watch) Exited() <-chan struct{} { return w.exited }

// Close releases the pidfd.
func (w *Watch) Close() error { return w.f.Close() }
