package shim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/rundir"
)

// LineObserver receives every line of the job's output, without its newline. The
// slice is valid only during the call. Calls are serialised across the job's streams.
type LineObserver interface {
	ObserveLine(line []byte)
}

// LineObserverFunc adapts a function to LineObserver.
type LineObserverFunc func(line []byte)

// ObserveLine calls f(line).
func (f LineObserverFunc) ObserveLine(line []byte) { f(line) }

// maxObservedLine bounds what observers see of one line. The log and the terminal get
// every byte; a 50 MB line without a newline costs observers at most this much.
const maxObservedLine = 64 << 10

// readBufSize is the size of one read from the job's pipe or pty. Large reads keep
// syscalls and log flushes few when the job prints fast.
const readBufSize = 256 << 10

// logFlushSize is how much of the log tee gathers before one write: one write per
// read of the job's output at most, far fewer than one per line.
const logFlushSize = 256 << 10

// tee copies the job's output to trainwrap's own stdout/stderr byte for byte, to the
// log with a timestamp and attempt number in front of each line, and hands each line
// to the observers. One tee serves one attempt.
type tee struct {
	mu        sync.Mutex // serialises the log and the observers across streams
	log       io.Writer
	buf       []byte // log bytes not yet written
	attempt   int
	observers []LineObserver
	// quiet[k] is observers[k] when it can vouch for many lines at once (the
	// classifier), else nil; quietEnd[k] is where its word ends in the current read.
	quiet    []quietObserver
	quietEnd []int
	// segments, when set, also sees every piece of a line that a \r ends: a tqdm bar
	// rewrites itself with \r and may not print a newline for a whole epoch, yet each
	// rewrite is progress.
	segments LineObserver
	lines    int64

	lastOutput atomic.Int64 // unix nanos of the last byte read

	// After the job's end the pumps read on only while output keeps coming; see drain.
	dmu        sync.Mutex
	draining   bool
	drainCut   bool // stop now: the user asked to stop
	drainIdle  time.Duration
	drainUntil time.Time
	owed       map[io.Reader]int // bytes each stream held when the job ended
	cutShort   atomic.Int32      // streams still open when the drain ended
}

func newTee(log io.Writer, attempt int, observers []LineObserver) *tee {
	t := &tee{
		log:       log,
		buf:       make([]byte, 0, logFlushSize+readBufSize),
		attempt:   attempt,
		observers: observers,
		quiet:     make([]quietObserver, len(observers)),
		quietEnd:  make([]int, len(observers)),
	}
	for k, o := range observers {
		if q, ok := o.(quietObserver); ok {
			t.quiet[k] = q
		}
	}
	return t
}

// quietObserver is a LineObserver that can vouch for a stretch of a read at once
// (classify.Classifier): every line that ends before b[QuietUpTo(b)] needs only
// ObserveQuiet, which does what ObserveLine would at a fraction of its cost. Most
// healthy output is such lines.
type quietObserver interface {
	LineObserver
	QuietUpTo(b []byte) int
	ObserveQuiet(line []byte)
}

// chunkSkipper is a segments observer that can tell from a whole read that no line
// wholly inside it concerns it (the built-in step recogniser on output without a step).
type chunkSkipper interface {
	skipsChunk(chunk []byte) bool
}

// stream is the line state of one of the job's output streams.
type stream struct {
	inLine bool   // the current line's prefix is in the log already
	buf    []byte // the start of the current line, when it began in an earlier read
	trunc  bool
}

// pump copies r to the log, the observers and dst until r ends, or until the drain
// after the job's end gives up on it. The log comes first: dst is a termWriter, which
// may drop but never holds the log back for long.
func (t *tee) pump(r io.Reader, dst io.Writer) {
	var st stream
	buf := make([]byte, readBufSize)
	var tsBuf [64]byte
	f, nonblock := r.(*os.File)
	if nonblock {
		nonblock = isNonblocking(f)
	}
	for {
		if !t.beforeRead(r) {
			break
		}
		n, err := r.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			n, err = lastRead(r, buf)
		}
		if err == nil && n > 0 && n < len(buf) && nonblock {
			n = readWaiting(f, buf, n)
		}
		t.afterRead(r, n)
		if n > 0 {
			t.lastOutput.Store(time.Now().UnixNano())
			chunk := buf[:n]
			prefix := rundir.AppendLogPrefix(tsBuf[:0], time.Now(), t.attempt)
			t.mu.Lock()
			t.consume(&st, chunk, prefix)
			// A read that filled the buffer means more is waiting: gather it into
			// one log write. A short read means the pipe is drained: write now, so
			// the log is never behind a quiet job.
			if n < len(buf) {
				t.flush()
			}
			t.mu.Unlock()
			if dst != nil {
				dst.Write(chunk)
			}
		}
		if err != nil {
			// EOF on a pipe, EIO on a pty master: every writer is gone and every
			// byte they wrote has been read. A deadline: the drain gave up.
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.cutShort.Add(1)
			}
			break
		}
	}
	t.mu.Lock()
	if st.inLine {
		t.buf = append(t.buf, '\n')
		t.endLine(&st, nil)
	}
	t.flush()
	t.mu.Unlock()
}

// readWaiting adds to buf[:n] what f holds already, without waiting: a pty hands out at
// most 4 KiB a read, so gathering what waits makes one log write, one terminal copy and
// one look by the observers out of many. It stops at the first read that would block,
// at the end (EOF, EIO: the next Read reports it) and when buf is full.
func readWaiting(f *os.File, buf []byte, n int) int {
	for n < len(buf) {
		var k int
		var rerr error
		if err := control(f, func(fd int) { k, rerr = unix.Read(fd, buf[n:]) }); err != nil || rerr != nil || k <= 0 {
			break
		}
		n += k
	}
	return n
}

// isNonblocking reports whether f's descriptor is in non-blocking mode (a pipe from
// os.Pipe, the pty master once pollable): only then may readWaiting read it directly.
func isNonblocking(f *os.File) bool {
	var fl int
	var ferr error
	if err := control(f, func(fd int) { fl, ferr = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0) }); err != nil || ferr != nil {
		return false
	}
	return fl&unix.O_NONBLOCK != 0
}

// lastRead is one non-blocking read after a drain deadline: the poller reports an
// expired deadline without looking at the descriptor, so a stream whose writers have
// all gone since would pass for one that is still held. It returns io.EOF for the end,
// and os.ErrDeadlineExceeded, with what it read, when a holder is still there.
func lastRead(r io.Reader, buf []byte) (int, error) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, os.ErrDeadlineExceeded
	}
	var n int
	var rerr error
	if err := control(f, func(fd int) { n, rerr = unix.Read(fd, buf) }); err != nil {
		return 0, os.ErrDeadlineExceeded
	}
	switch {
	case rerr == nil && n == 0, errors.Is(rerr, unix.EIO):
		return 0, io.EOF
	case rerr == nil:
		return n, os.ErrDeadlineExceeded
	default:
		return 0, os.ErrDeadlineExceeded
	}
}

// beforeRead renews r's read deadline while draining: the drain measures the time
// the source has been silent, not the time the log took, so a slow log never cuts off
// output that is already waiting. It returns false when the drain was cut.
func (t *tee) beforeRead(r io.Reader) bool {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	if !t.draining {
		return true
	}
	if t.drainCut {
		t.cutShort.Add(1)
		return false
	}
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(t.drainDeadline(t.owed[r] > 0))
	}
	return true
}

// afterRead counts n bytes off what r owes from before the job's end.
func (t *tee) afterRead(r io.Reader, n int) {
	t.dmu.Lock()
	if t.draining && t.owed[r] > 0 {
		t.owed[r] -= n
	}
	t.dmu.Unlock()
}

// drainDeadline is the next read's deadline. Bytes the job wrote before it ended are
// read whatever the time (owed: they are in the kernel's buffer already, so the reads
// do not wait, and only a slow log or terminal could make them late); only what comes
// after is held to OutputDrainMax.
func (t *tee) drainDeadline(owed bool) time.Time {
	if owed {
		// A safety net only: these reads find their bytes waiting.
		return time.Now().Add(max(t.drainIdle, time.Second))
	}
	d := time.Now().Add(t.drainIdle)
	if d.After(t.drainUntil) {
		d = t.drainUntil
	}
	return d
}

// drain tells the pumps that the job is gone: they read what is there and what keeps
// coming, and stop at EOF (every writer closed), after idle without a byte (a process
// that escaped the job still holds the pipe or pty but is quiet), or at until (it
// keeps writing). The files stay in the runtime poller (spawn never calls Fd on them),
// so a deadline interrupts a read that is already waiting.
func (t *tee) drain(files []*os.File, idle time.Duration, until time.Time) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	t.draining, t.drainIdle, t.drainUntil = true, idle, until
	t.owed = make(map[io.Reader]int, len(files))
	for _, f := range files {
		var n int
		// TIOCINQ (FIONREAD, for a pipe as for a pty master): what waits in the pipe or the line
		// discipline now. Unknown is zero: then only the deadlines apply.
		_ = control(f, func(fd int) { n, _ = unix.IoctlGetInt(fd, unix.TIOCINQ) })
		t.owed[f] = n
		_ = f.SetReadDeadline(t.drainDeadline(n > 0))
	}
}

// cutDrain ends the drain at once: the user asked to stop.
func (t *tee) cutDrain(files []*os.File) {
	t.dmu.Lock()
	defer t.dmu.Unlock()
	t.drainCut = true
	for _, f := range files {
		_ = f.SetReadDeadline(time.Unix(1, 0))
	}
}

func (t *tee) flush() {
	if len(t.buf) > 0 {
		t.log.Write(t.buf)
		t.buf = t.buf[:0]
	}
}

func (t *tee) consume(st *stream, chunk, prefix []byte) {
	// What one look at the whole read settles for every line wholly inside it: without
	// a \r there is no bar segment to hand on, and the step recogniser may have
	// nothing to find. The classifier's word is asked for line by line below.
	noCR, skipSegs := true, false
	if t.segments != nil {
		noCR = bytes.IndexByte(chunk, '\r') < 0
		if cs, ok := t.segments.(chunkSkipper); ok && noCR {
			skipSegs = cs.skipsChunk(chunk)
		}
	}
	for k := range t.quietEnd {
		t.quietEnd[k] = -1
	}
	whole := chunk
	pos := 0 // where chunk starts in whole
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		seg := chunk
		if i >= 0 {
			seg = chunk[:i]
		}
		inside := !st.inLine // the line starts in this read: all of it is in whole
		if !st.inLine {
			t.buf = append(t.buf, prefix...)
			st.inLine = true
		}
		t.buf = append(t.buf, seg...)
		if !noCR {
			t.carriageReturns(seg)
		}
		if i < 0 {
			st.observe(seg)
			if len(t.buf) >= logFlushSize {
				t.flush()
			}
			return
		}
		t.buf = append(t.buf, '\n')
		if inside {
			t.endWholeLine(st, seg, whole, pos, pos+i, skipSegs)
		} else {
			t.endLine(st, seg)
		}
		if len(t.buf) >= logFlushSize {
			t.flush()
		}
		chunk = chunk[i+1:]
		pos += i + 1
	}
}

// endWholeLine is endLine for a line that began in this read: line is whole[start:end].
// An observer that vouched for this part of the read gets the cheap call.
func (t *tee) endWholeLine(st *stream, line, whole []byte, start, end int, skipSegs bool) {
	st.inLine = false
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	t.lines++
	for k, o := range t.observers {
		q := t.quiet[k]
		if q == nil {
			o.ObserveLine(line)
			continue
		}
		if t.quietEnd[k] < start {
			// Its word so far ended before this line (or none was asked): ask again
			// from here, after whatever the last full look changed.
			t.quietEnd[k] = start + q.QuietUpTo(whole[start:])
		}
		if end < t.quietEnd[k] {
			q.ObserveQuiet(line)
		} else {
			o.ObserveLine(line)
		}
	}
	if t.segments != nil && !skipSegs {
		if j := bytes.LastIndexByte(line, '\r'); j >= 0 {
			t.segments.ObserveLine(line[j+1:])
		} else {
			t.segments.ObserveLine(line)
		}
	}
}

// endLine hands the finished line to the observers. last is the line's final
// segment; a line that began in an earlier read is assembled in st.buf first, so the
// common case (a whole line inside one read) copies nothing.
func (t *tee) endLine(st *stream, last []byte) {
	st.inLine = false
	line := last
	if len(st.buf) > 0 || st.trunc {
		st.observe(last)
		line = st.buf
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	t.lines++
	for _, o := range t.observers {
		o.ObserveLine(line)
	}
	if t.segments != nil {
		if j := bytes.LastIndexByte(line, '\r'); j >= 0 {
			t.segments.ObserveLine(line[j+1:])
		} else {
			t.segments.ObserveLine(line)
		}
	}
	st.buf = st.buf[:0]
	st.trunc = false
}

// carriageReturns hands the segment observer what follows each \r in seg, up to the
// next \r or the end of this read: a bar writes "\r<state>" in one write, so its newest
// state is complete here even though the line will not end for a long time.
func (t *tee) carriageReturns(seg []byte) {
	for {
		j := bytes.IndexByte(seg, '\r')
		if j < 0 {
			return
		}
		seg = seg[j+1:]
		piece := seg
		if k := bytes.IndexByte(seg, '\r'); k >= 0 {
			piece = seg[:k]
		}
		if len(piece) > 0 {
			t.segments.ObserveLine(piece)
		}
	}
}

// observe appends seg to the observed line, keeping at most maxObservedLine bytes.
// A progress bar rewritten with \r keeps only its newest state when the line is full.
func (st *stream) observe(seg []byte) {
	if len(st.buf)+len(seg) <= maxObservedLine {
		st.buf = append(st.buf, seg...)
		return
	}
	if j := bytes.LastIndexByte(seg, '\r'); j >= 0 {
		st.buf = st.buf[:0]
		seg = seg[j+1:]
	}
	room := maxObservedLine - len(st.buf)
	if room > len(seg) {
		room = len(seg)
	}
	if room > 0 {
		st.buf = append(st.buf, seg[:room]...)
	}
	st.trunc = true
}

// logSink writes to the log file and never fails: the job must not stop because its
// log cannot be written. Failures are counted and the first is reported on stderr.
type logSink struct {
	w        io.Writer
	stderr   io.Writer
	failures atomic.Int64
	once     sync.Once
}

func (l *logSink) Write(p []byte) (int, error) {
	if l.w == nil {
		return len(p), nil
	}
	if _, err := l.w.Write(p); err != nil {
		l.failures.Add(1)
		l.once.Do(func() {
			fmt.Fprintf(l.stderr, "trainwrap: cannot write the job log (%v); the job keeps running, its output still reaches this terminal; further failures are counted in state.json\n", err)
		})
	}
	return len(p), nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return f != nil && isatty(int(f.Fd()))
}

// stopDrainIdle is the drain's silence limit once a stop was asked for: output that is
// already in the pipe is read at once, so this only bounds the wait for a holder.
const stopDrainIdle = 250 * time.Millisecond

// drainOutput reads the job's last output once its processes are gone, then closes
// the pipes or the pty. A process that escaped the sweep and still holds them costs at
// most OutputDrainIdle of silence or OutputDrainMax in all, and a stop signal ends the
// wait at once: nothing here may keep trainwrap from exiting.
func (s *supervisor) drainOutput(ctx context.Context, t *tee, c *child, pumpsDone <-chan struct{}, res *attemptResult) {
	files := make([]*os.File, 0, len(c.outs))
	for _, o := range c.outs {
		files = append(files, o.r)
	}
	idle := s.o.OutputDrainIdle
	if res.stopSig != 0 {
		// The user is waiting for us to stop: take what is there, wait for no one.
		idle = min(idle, stopDrainIdle)
	}
	t.drain(files, idle, time.Now().Add(s.o.OutputDrainMax))
	cut := false
	stop := func(why string) {
		if !cut {
			cut = true
			s.logf("%s while reading the job's last output: stopping now", why)
			t.cutDrain(files)
		}
	}
	ctxDone := ctx.Done()
	for done := false; !done; {
		select {
		case <-pumpsDone:
			done = true
		case <-ctxDone:
			ctxDone = nil
			if res.stopSig == 0 {
				res.stopSig = syscall.SIGTERM
			}
			stop("cancelled")
		case sig := <-s.sigs:
			switch ss := sig.(syscall.Signal); ss {
			case syscall.SIGCHLD:
				s.reaper.reap()
			case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT:
				if res.stopSig == 0 {
					res.stopSig = ss
				}
				stop("received " + signalName(ss))
			}
		}
	}
	for _, f := range files {
		f.Close()
	}
	if n := t.cutShort.Load(); n > 0 && !cut {
		s.logf("a process outside the job still holds its output (%d stream(s)); stopped reading after %s of silence or %s in all", n, idle, s.o.OutputDrainMax)
	}
}

// flushTerminals waits for the terminal copies to catch up, within termPatience of
// no progress, and returns the bytes they dropped since the run began.
func (s *supervisor) flushTerminals() int64 {
	s.outTerm.flush()
	s.errTerm.flush()
	return s.terminalDrops()
}

// terminalDrops is the number of bytes the terminal copies dropped since the run began.
func (s *supervisor) terminalDrops() int64 {
	var n int64
	for _, tw := range []*termWriter{s.outTerm, s.errTerm} {
		if tw != nil {
			n += tw.dropped.Load()
		}
	}
	return n
}

// stderr is where trainwrap's own messages go: through the same queue as the job's
// stderr, so they keep their order and a stuck reader of our stderr cannot stop us.
func (s *supervisor) stderr() io.Writer {
	if s.errTerm != nil {
		return s.errTerm
	}
	return s.o.Stderr
}
