package shim

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/proc"
)

// exitInfo is how the managed child ended.
type exitInfo struct {
	status syscall.WaitStatus
	at     time.Time
	err    error
}

// child is one running attempt of the job.
type child struct {
	id     proc.ID
	pgid   int
	sid    int
	exited chan exitInfo // receives exactly once
	gone   bool          // the exit was received: the pid and group may be reused
	pty    *os.File      // master side, nil without a pty
	outs   []outPipe     // what the tee reads
}

type outPipe struct {
	r   *os.File
	dst io.Writer
}

// spawnSpec says how to start the child.
type spawnSpec struct {
	argv   []string
	env    []string
	dir    string
	usePty bool
	stdout io.Writer
	stderr io.Writer
	cgroup *jobCgroup // clone the child into it; nil: stay in ours
}

// spawn starts the child on a goroutine locked to its OS thread for the child's whole
// life: Pdeathsig fires when the forking *thread* exits (golang/go#27505), so the
// thread must outlive the child. The same goroutine waits for the child, so nobody else
// can take its exit status; the reaper is told to keep its hands off that pid before
// the child can possibly exit.
func spawn(spec spawnSpec, r *reaper) (*child, error) {
	path, err := exec.LookPath(spec.argv[0])
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	cmd := &exec.Cmd{Path: path, Args: spec.argv, Env: spec.env, Dir: spec.dir}
	c := &child{exited: make(chan exitInfo, 1)}
	var closeAfterStart []*os.File
	if spec.usePty {
		closeAfterStart, err = c.ptyIO(cmd, spec)
	} else {
		closeAfterStart, err = c.pipeIO(cmd, spec)
	}
	if err != nil {
		return nil, err
	}
	if spec.cgroup != nil {
		// Born in the job's cgroup (clone3's CLONE_INTO_CGROUP): nothing it forks, even
		// before it could be moved, is outside.
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = spec.cgroup.fd
	}
	started := make(chan error, 1)
	go c.startAndWait(cmd, r, closeAfterStart, started)
	if err := <-started; err != nil {
		for _, o := range c.outs {
			o.r.Close()
		}
		return nil, fmt.Errorf("start %s: %w", spec.argv[0], err)
	}
	pid := cmd.Process.Pid
	c.id = proc.ID{PID: pid}
	c.pgid = pid
	if spec.usePty {
		c.sid = pid
	}
	// The start time is read now; if the child is already gone, a zero start time
	// matches no live process, which is what we want.
	if in, err := proc.Stat(pid); err == nil {
		c.id.StartTime = in.StartTime
	}
	return c, nil
}

// ptyIO gives cmd a new pty as its terminal, in a session of its own. It returns the
// slave, which is closed once the child has it.
func (c *child) ptyIO(cmd *exec.Cmd, spec spawnSpec) ([]*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// pty.Open reached the master through Fd, which leaves it in blocking mode,
	// out of the runtime poller: a read then ignores deadlines and Close, and a
	// process that escaped with the slave open would hold the pump forever.
	if master, err = pollable(master); err != nil {
		slave.Close()
		return nil, fmt.Errorf("open pty: %w", err)
	}
	c.pty = master
	c.resize()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
	c.outs = []outPipe{{r: master, dst: spec.stdout}}
	return []*os.File{slave}, nil
}

// pipeIO gives cmd pipes for stdout and stderr, in a process group of its own. It
// returns the write ends, which are closed once the child has them.
func (c *child) pipeIO(cmd *exec.Cmd, spec spawnSpec) ([]*os.File, error) {
	or, ow, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		or.Close()
		ow.Close()
		return nil, fmt.Errorf("pipe: %w", err)
	}
	// A larger pipe means fewer wake-ups for both sides when the job prints fast;
	// pipe-max-size (1 MiB by default) caps it, and failure only costs speed. Not
	// through Fd, which would take the read ends out of the poller (see pollable).
	for _, r := range []*os.File{or, er} {
		control(r, func(fd int) { unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 1<<20) })
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, ow, ew
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.outs = []outPipe{{r: or, dst: spec.stdout}, {r: er, dst: spec.stderr}}
	return []*os.File{ow, ew}, nil
}

// startAndWait starts cmd and waits for it on the calling goroutine, which it locks to
// its thread (see spawn). It sends the start's error to started, then the exit to
// c.exited.
func (c *child) startAndWait(cmd *exec.Cmd, r *reaper, closeAfterStart []*os.File, started chan<- error) {
	runtime.LockOSThread()
	// Never unlocked before the child is reaped; after that the thread may go.
	defer runtime.UnlockOSThread()
	r.mu.Lock()
	err := cmd.Start()
	if err == nil {
		r.protect(cmd.Process.Pid)
	}
	r.mu.Unlock()
	for _, f := range closeAfterStart {
		f.Close()
	}
	if err != nil {
		started <- err
		return
	}
	started <- nil
	werr := cmd.Wait()
	info := exitInfo{at: time.Now()}
	if cmd.ProcessState != nil {
		info.status, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
	} else {
		info.err = werr
	}
	r.unprotect(cmd.Process.Pid)
	c.exited <- info
}

// resize copies our terminal's window size to the child's pty, through the master's
// SyscallConn: pty.Setsize would call Fd and take the master out of the poller.
func (c *child) resize() {
	if c.pty == nil {
		return
	}
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if !isTerminal(f) {
			continue
		}
		ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			continue
		}
		control(c.pty, func(fd int) { _ = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
		return
	}
}

// pollable returns f as a file in the runtime poller: a non-blocking duplicate of its
// descriptor, wrapped by os.NewFile, which polls descriptors that are non-blocking
// already. Read deadlines then work and Close interrupts a waiting Read. f is closed;
// O_NONBLOCK is set on f's open file description only, not on the pty slave.
func pollable(f *os.File) (*os.File, error) {
	var nfd int
	var derr error
	if err := control(f, func(fd int) { nfd, derr = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), derr)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("set %s non-blocking: %w", f.Name(), err)
	}
	nf := os.NewFile(uintptr(nfd), f.Name())
	f.Close()
	return nf, nil
}

// control runs fn on f's descriptor without taking f out of the poller, as Fd would.
func control(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := rc.Control(func(fd uintptr) { fn(int(fd)) }); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

func isatty(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
