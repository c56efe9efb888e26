package shim

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// job names the processes of one run: the current child, and everything that carries
// the run id or descends from us inside the job's group or session.
type job struct {
	runID    string
	guard    int // the guard process: ours, but not the job's
	sentinel int // the sentinel guard, in the job's cgroup: not the job's either
	// sweepHost makes procs scan every process for the run id: we are no subreaper,
	// so an orphan of the job may live outside our tree.
	sweepHost bool
	c         *child
	cg        *jobCgroup // every process in it is the job's; nil without one
}

// procs lists the live (not zombie) processes of the job. A process counts when it
// descends from this supervisor and is in the child's process group or session, or
// descends from the child, or is in the job's cgroup, or, where the kernel cannot
// list our descendants or we are no subreaper (sweepHost), carries
// TRAINWRAP_RUN_ID=<run id> anywhere on the machine (a random id: proof that we
// started it).
//
// As a subreaper we are an ancestor of every process of the job (an orphan comes back
// to us), so the walk down our own tree (/proc/PID/task/TID/children) finds them all
// without reading the other processes of the host; the host-wide scan for the run id
// is left to the sweep at the end of the run (supervisor.sweepRunID).
func (j job) procs() []proc.Info {
	self := os.Getpid()
	var tree []proc.Info
	if j.sweepHost || !proc.ChildrenSupported() {
		all, err := proc.All()
		if err != nil {
			return nil
		}
		tree = all
	} else {
		// A parent that dies while we walk hands its children to us after we read our
		// own list: walk again while the tree moved under us.
		for try := 0; try < 4; try++ {
			var settled bool
			tree, settled = j.walk(self)
			if settled {
				break
			}
		}
	}
	kids := make(map[int][]proc.Info, len(tree))
	for _, in := range tree {
		kids[in.PPID] = append(kids[in.PPID], in)
	}
	inJob := map[int]bool{}
	var out []proc.Info
	add := func(in proc.Info) {
		if !inJob[in.PID] && !in.Zombie() && in.PID != self && in.PID != j.guard && in.PID != j.sentinel {
			inJob[in.PID] = true
			out = append(out, in)
		}
	}
	// Descendants of the child, whatever their group or environment.
	if j.c != nil && !j.c.gone {
		queue := []int{j.c.id.PID}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, k := range kids[p] {
				add(k)
				queue = append(queue, k.PID)
			}
		}
	}
	// Our descendants (orphans re-parented to us) in the job's group or session.
	queue := []int{self}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			if k.PID == j.guard || k.PID == j.sentinel {
				continue
			}
			if j.c != nil && (k.PGID == j.c.pgid || (j.c.sid != 0 && k.SID == j.c.sid)) {
				add(k)
			}
			queue = append(queue, k.PID)
		}
	}
	// Everything in the job's cgroup, however it left the group, session and
	// environment.
	for _, pid := range j.cg.pids() {
		if in, err := proc.Stat(pid); err == nil && !in.Zombie() {
			add(in)
		}
	}
	// Anything that carries our run id, where our tree may not hold all of the job.
	if j.sweepHost || !proc.ChildrenSupported() {
		for _, in := range tree {
			if !inJob[in.PID] && !in.Zombie() && in.PID != self && in.PID != j.guard && in.PID != j.sentinel && proc.HasEnv(in.PID, rundir.RunIDEnv, j.runID) {
				add(in)
			}
		}
	}
	// The leader itself, while it is not yet reaped.
	if j.c != nil && !j.c.gone {
		if in, err := proc.Stat(j.c.id.PID); err == nil && in.StartTime == j.c.id.StartTime && !in.Zombie() {
			add(in)
		}
	}
	return out
}

// walk lists the processes below root, the guards' subtrees left out. settled is false
// when the tree changed while it looked: a process listed as a child had another
// parent by the time it was read (its parent died and it came to us), or a process
// died between being listed and its children being read.
func (j job) walk(root int) (tree []proc.Info, settled bool) {
	settled = true
	type edge struct{ parent, child int }
	var queue []edge
	push := func(parent int) bool {
		kids, err := proc.Children(parent)
		if err != nil {
			return false
		}
		for _, k := range kids {
			queue = append(queue, edge{parent, k})
		}
		return true
	}
	if !push(root) {
		return nil, true
	}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		if seen[e.child] || e.child == j.guard || e.child == j.sentinel {
			continue
		}
		in, err := proc.Stat(e.child)
		if err != nil {
			continue // gone and reaped: nothing of it is left
		}
		if in.PPID != e.parent {
			// Its pid was reused, or it was re-parented to an ancestor we already read.
			settled = false
			continue
		}
		seen[e.child] = true
		tree = append(tree, in)
		if in.Zombie() {
			// It gave its children to us as it died, perhaps after we read our list.
			settled = false
			continue
		}
		if !push(e.child) {
			settled = false
		}
	}
	return tree, settled
}

// signalGroup sends sig to the child's process group, but only while its leader is
// known alive (not yet reaped): then the group id cannot have been reused.
func (j job) signalGroup(sig syscall.Signal) bool {
	if j.c == nil || j.c.gone {
		return false
	}
	return syscall.Kill(-j.c.pgid, sig) == nil
}

// signalCatchers sends sig to every process of the job that has a handler for it:
// SLURM's SIGUSR1 warning must reach each rank (torchrun forwards nothing, and under
// torch 1.13 the ranks share its group), but not torchrun itself or a DataLoader
// worker, which have no handler and would die of the default action.
func (j job) signalCatchers(sig syscall.Signal) int {
	n := 0
	for _, in := range j.procs() {
		if proc.Catches(in.PID, sig) && proc.Signal(in.ID, sig) == nil {
			n++
		}
	}
	return n
}

// signalAbort sends SIGABRT, on a stall, to every process-group leader of the job and
// to every process that handles SIGABRT (Python's fault handler does), so each rank
// dumps its stacks whatever group it is in.
func (j job) signalAbort() int {
	n := 0
	for _, in := range j.procs() {
		if (in.PID == in.PGID || proc.Catches(in.PID, syscall.SIGABRT)) && proc.Signal(in.ID, syscall.SIGABRT) == nil {
			n++
		}
	}
	return n
}

// signalAll sends sig to every live process of the job, each through a pidfd checked
// against its start time.
func (j job) signalAll(sig syscall.Signal) int {
	n := 0
	for _, in := range j.procs() {
		if proc.Signal(in.ID, sig) == nil {
			n++
		}
	}
	return n
}

// killAll SIGKILLs the job until no process of it is left or ctx ends, reaping orphans
// in between. It returns the number of processes still alive.
func (j job) killAll(ctx context.Context, r *reaper) int {
	for {
		left := j.procs()
		if len(left) == 0 {
			r.reap()
			return 0
		}
		// The cgroup first: it reaches a process forked since procs() looked.
		_ = j.cg.kill()
		for _, in := range left {
			_ = proc.Signal(in.ID, syscall.SIGKILL)
		}
		r.reap()
		if !waitExits(ctx, left, 20*time.Millisecond) {
			return len(j.procs())
		}
	}
}

// waitGone waits until no process of the job is left, or ctx ends. It returns true when
// the job is gone.
func (j job) waitGone(ctx context.Context, r *reaper, poll time.Duration) bool {
	for {
		r.reap()
		left := j.procs()
		if len(left) == 0 {
			return true
		}
		if !waitExits(ctx, left, poll) {
			return false
		}
	}
}

// waitExits waits until every process in left has exited, each on its pidfd, so the
// last exit is seen the moment it happens rather than at the next poll; or until poll
// has passed (a process forked meanwhile has no pidfd here: the caller looks again);
// or until ctx ends, when it returns false. A process whose pidfd cannot be opened is
// gone already, or is one the poll covers.
func waitExits(ctx context.Context, left []proc.Info, poll time.Duration) bool {
	ws := make([]*proc.Watch, 0, len(left))
	for _, in := range left {
		if w, err := proc.NewWatch(in.ID); err == nil {
			ws = append(ws, w)
		}
	}
	defer func() {
		for _, w := range ws {
			w.Close()
		}
	}()
	t := time.NewTimer(poll)
	defer t.Stop()
	for _, w := range ws {
		select {
		case <-w.Exited():
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if len(ws) < len(left) {
		// Some could not be watched: give them the poll.
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
