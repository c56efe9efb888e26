package shim

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	attempt   []byte
	observers []LineObserver
	// segments, when set, also sees every piece of a line that a \r ends: a tqdm bar
	// rewrites itself with \r and may not print a newline for a whole epoch, yet each
	// rewrite is progress.
	segments LineObserver
	lines    int64

	lastOutput atomic.Int64 // unix nanos of the last byte read
}

func newTee(log io.Writer, attempt int, observers []LineObserver) *tee {
	return &tee{
		log:       log,
		buf:       make([]byte, 0, logFlushSize+readBufSize),
		attempt:   []byte(" [" + strconv.Itoa(attempt) + "] "),
		observers: observers,
	}
}

// stream is the line state of one of the job's output streams.
type stream struct {
	inLine bool   // the current line's prefix is in the log already
	buf    []byte // the start of the current line, when it began in an earlier read
	trunc  bool
}

// pump copies r to dst and the log until r ends. Errors writing dst (our stdout went
// away) do not stop the copy into the log.
func (t *tee) pump(r io.Reader, dst io.Writer) {
	var st stream
	buf := make([]byte, readBufSize)
	var tsBuf [64]byte
	dstOK := dst != nil
	for {
		n, err := r.Read(buf)
		if n > 0 {
			t.lastOutput.Store(time.Now().UnixNano())
			chunk := buf[:n]
			if dstOK {
				if _, werr := dst.Write(chunk); werr != nil {
					dstOK = false
				}
			}
			prefix := time.Now().UTC().AppendFormat(tsBuf[:0], "2006-01-02T15:04:05.000Z07:00")
			t.mu.Lock()
			t.consume(&st, chunk, prefix)
			// A read that filled the buffer means more is waiting: gather it into
			// one log write. A short read means the pipe is drained: write now, so
			// the log is never behind a quiet job.
			if n < len(buf) {
				t.flush()
			}
			t.mu.Unlock()
		}
		if err != nil {
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

func (t *tee) flush() {
	if len(t.buf) > 0 {
		t.log.Write(t.buf)
		t.buf = t.buf[:0]
	}
}

func (t *tee) consume(st *stream, chunk, ts []byte) {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		seg := chunk
		if i >= 0 {
			seg = chunk[:i]
		}
		if !st.inLine {
			t.buf = append(t.buf, ts...)
			t.buf = append(t.buf, t.attempt...)
			st.inLine = true
		}
		t.buf = append(t.buf, seg...)
		if t.segments != nil {
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
		t.endLine(st, seg)
		if len(t.buf) >= logFlushSize {
			t.flush()
		}
		chunk = chunk[i+1:]
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
