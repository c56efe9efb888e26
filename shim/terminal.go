package shim

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// termQueueSize bounds what waits for a slow terminal, per stream. It holds many reads
// of readBufSize, so a terminal that is only slower in bursts never loses a byte.
const termQueueSize = 4 << 20

// termPatience is how long the job's output may wait for a terminal that has taken
// nothing at all (Ctrl-S, a stopped `| tee`, a pager nobody pages): after that the
// terminal copy drops what does not fit, so the job, the log and the classifier go on.
// A terminal that takes bytes, however slowly, is waited for, as a pipe would be.
const termPatience = 2 * time.Second

// termWriteMax bounds one write to the terminal, so that the progress of a slow reader
// shows in small steps and the queue frees room as it goes.
const termWriteMax = 64 << 10

// termWriter copies the job's output to one of trainwrap's own streams from a goroutine
// of its own, through a bounded queue: a stopped reader of our stdout holds up neither
// the job nor the supervisor, it only loses its copy (counted in dropped). It lives for
// the whole run, so output keeps its order across attempts and a write stuck in the
// kernel ties up one goroutine, not one per attempt.
type termWriter struct {
	w        io.Writer
	patience time.Duration // termPatience unless the Options say otherwise

	mu           sync.Mutex
	ring         []byte
	head, n      int // queued bytes: ring[head:] then ring[:...], n in all
	busy         int // bytes at head being written now
	stuck        bool
	failed       bool // the stream went away (EPIPE): nothing more is copied or counted
	closed       bool
	lastProgress time.Time     // last completed write, or when the queue stopped being empty
	progress     chan struct{} // closed and replaced after each completed write
	wake         chan struct{}
	done         chan struct{}

	dropped atomic.Int64 // bytes the terminal never got
}

// newTermWriter starts the goroutine that writes to w.
func newTermWriter(w io.Writer, patience time.Duration) *termWriter {
	if patience <= 0 {
		patience = termPatience
	}
	tw := &termWriter{
		w:        w,
		patience: patience,
		ring:     make([]byte, termQueueSize),
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	go tw.run()
	return tw
}

// Write queues a copy of p and never fails: when the queue is full and the terminal has
// taken nothing for termPatience, p is dropped and counted instead.
func (tw *termWriter) Write(p []byte) (int, error) {
	if tw == nil {
		return len(p), nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	for {
		if tw.failed || tw.closed {
			return len(p), nil
		}
		if len(tw.ring)-tw.n >= len(p) {
			tw.enqueue(p)
			return len(p), nil
		}
		if tw.stuck || len(p) > len(tw.ring) {
			tw.dropped.Add(int64(len(p)))
			return len(p), nil
		}
		wait := tw.patience - time.Since(tw.lastProgress)
		if wait <= 0 {
			tw.stuck = true
			continue
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		ch := tw.progress
		tw.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
		}
		tw.mu.Lock()
	}
}

func (tw *termWriter) enqueue(p []byte) {
	if tw.n == 0 {
		tw.lastProgress = time.Now()
	}
	tail := (tw.head + tw.n) % len(tw.ring)
	c := copy(tw.ring[tail:], p)
	copy(tw.ring, p[c:])
	tw.n += len(p)
	select {
	case tw.wake <- struct{}{}:
	default:
	}
}

func (tw *termWriter) run() {
	defer close(tw.done)
	tw.mu.Lock()
	for {
		for tw.n == 0 && !tw.closed {
			tw.mu.Unlock()
			<-tw.wake
			tw.mu.Lock()
		}
		if tw.n == 0 {
			tw.mu.Unlock()
			return
		}
		seg := min(tw.n, len(tw.ring)-tw.head, termWriteMax)
		chunk := tw.ring[tw.head : tw.head+seg]
		tw.busy = seg
		tw.mu.Unlock()
		_, err := tw.w.Write(chunk)
		tw.mu.Lock()
		tw.busy = 0
		tw.head = (tw.head + seg) % len(tw.ring)
		tw.n -= seg
		tw.lastProgress = time.Now()
		tw.stuck = false
		if err != nil {
			// Our stdout went away: the job keeps running, its output goes to the log.
			tw.failed = true
			tw.head, tw.n = 0, 0
		}
		close(tw.progress)
		tw.progress = make(chan struct{})
	}
}

// flush waits until the queue is written, or until the terminal has taken nothing for
// termPatience; what is still queued then is dropped and counted.
func (tw *termWriter) flush() {
	if tw == nil {
		return
	}
	tw.mu.Lock()
	for tw.n > 0 && !tw.failed {
		wait := tw.patience - time.Since(tw.lastProgress)
		if tw.stuck || wait <= 0 {
			tw.stuck = true
			// The write in progress still reads its bytes from the ring; the rest goes.
			tw.dropped.Add(int64(tw.n - tw.busy))
			tw.n = tw.busy
			break
		}
		ch := tw.progress
		tw.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		tw.mu.Lock()
	}
	tw.mu.Unlock()
}

// close flushes and then lets the writing goroutine end once its queue is empty. A
// write stuck in the kernel keeps that goroutine; nothing waits for it.
func (tw *termWriter) close() {
	if tw == nil {
		return
	}
	tw.flush()
	tw.mu.Lock()
	tw.closed = true
	tw.mu.Unlock()
	select {
	case tw.wake <- struct{}{}:
	default:
	}
}
