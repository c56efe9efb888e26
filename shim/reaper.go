package shim

import (
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/proc"
)

// lingerLimit is how long a zombie child that does not look like part of the job may
// wait for its own parent code (an exec.Cmd.Wait elsewhere in this process) before the
// reaper takes it anyway: a Wait that is running reaps at once, so a zombie this old has
// nobody waiting for it.
const lingerLimit = 5 * time.Second

// reaper reaps zombie children that nobody else waits for: descendants of the job that
// were re-parented to us (we are a child subreaper, or PID 1). It never reaps a
// protected pid (the managed child, whose status its own goroutine waits for), and it
// leaves alone, for a while, zombies that look like children started by other code in
// this process, so that their exec.Cmd.Wait gets their status.
type reaper struct {
	mu        sync.Mutex
	protected map[int]bool
	jobPGID   int
	jobSID    int
	selfSID   int
	firstSeen map[int]time.Time
	reaped    int
}

func newReaper() *reaper {
	sid, _ := unix.Getsid(0)
	return &reaper{protected: map[int]bool{}, firstSeen: map[int]time.Time{}, selfSID: sid}
}

// protect must be called with r.mu held.
func (r *reaper) protect(pid int) { r.protected[pid] = true }

func (r *reaper) unprotect(pid int) {
	r.mu.Lock()
	delete(r.protected, pid)
	r.mu.Unlock()
}

func (r *reaper) setJob(pgid, sid int) {
	r.mu.Lock()
	r.jobPGID, r.jobSID = pgid, sid
	r.mu.Unlock()
}

// reap reaps what it may and reports whether zombies were left for later.
func (r *reaper) reap() (pending bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all, err := ownChildren()
	if err != nil {
		return false
	}
	self := os.Getpid()
	now := time.Now()
	seen := map[int]bool{}
	for _, in := range all {
		if in.PPID != self || !in.Zombie() || r.protected[in.PID] {
			continue
		}
		seen[in.PID] = true
		job := (r.jobPGID != 0 && in.PGID == r.jobPGID) || in.SID != r.selfSID || (r.jobSID != 0 && in.SID == r.jobSID)
		if !job {
			first, ok := r.firstSeen[in.PID]
			if !ok {
				r.firstSeen[in.PID] = now
				pending = true
				continue
			}
			if now.Sub(first) < lingerLimit {
				pending = true
				continue
			}
		}
		var ws syscall.WaitStatus
		if pid, _ := syscall.Wait4(in.PID, &ws, syscall.WNOHANG, nil); pid == in.PID {
			r.reaped++
		}
		delete(r.firstSeen, in.PID)
	}
	for pid := range r.firstSeen {
		if !seen[pid] {
			delete(r.firstSeen, pid)
		}
	}
	return pending
}

// reapAll reaps every zombie child except protected ones, at the end of supervision.
func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	all, err := ownChildren()
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, in := range all {
		if in.PPID == self && in.Zombie() && !r.protected[in.PID] {
			var ws syscall.WaitStatus
			if pid, _ := syscall.Wait4(in.PID, &ws, syscall.WNOHANG, nil); pid == in.PID {
				r.reaped++
			}
		}
	}
}

// ownChildren lists this process's children, zombies included. It reads only our own
// children's stat files where the kernel lists children (/proc/PID/task/TID/children),
// so a SIGCHLD costs a few reads however many processes the host runs; without that,
// it scans every process.
func ownChildren() ([]proc.Info, error) {
	self := os.Getpid()
	if !proc.ChildrenSupported() {
		return proc.All()
	}
	pids, err := proc.Children(self)
	if err != nil {
		return nil, err
	}
	out := make([]proc.Info, 0, len(pids))
	for _, pid := range pids {
		if in, err := proc.Stat(pid); err == nil && in.PPID == self {
			out = append(out, in)
		}
	}
	return out, nil
}

// becomeSubreaper makes orphaned descendants of the job come back to us instead of
// init, so that they can be found and killed, and reaped.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
