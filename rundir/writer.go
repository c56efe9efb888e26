package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ReserveFile is the space the live supervisor keeps allocated in the run directory
// for its last words: on a full disk it is released so that the final state and the
// attempt records can still be written.
const ReserveFile = ".reserve"

// Sizes of what a Writer holds back.
const (
	// ReserveSize is enough for the final state.json and MaxPendingRecords records
	// of ordinary size, and nothing next to a disk that holds checkpoints.
	ReserveSize = 1 << 20
	// MaxPendingRecords bounds the records kept in memory while runs.jsonl cannot
	// be written; beyond it the oldest are dropped (and counted).
	MaxPendingRecords = 64
)

// Writer writes state.json and runs.jsonl for the live supervisor and keeps them
// truthful when the state directory's disk fills up: a record that cannot be
// written is kept in memory and written, in order, with the next write that
// succeeds; each kind of failure (state, record) is reported once per outage, and
// once more when writes succeed again; the final state and record (a terminal status,
// a decision other than restart) may use the space held in ReserveFile. A Writer is
// safe for concurrent use.
type Writer struct {
	dir Dir
	say func(msg string)

	mu      sync.Mutex
	pending []Record
	dropped int
	failing map[string]int // kind -> failed writes in the current outage
	reserve bool           // ReserveFile is allocated
}

// Kinds of write failure, each warned about once per outage.
const (
	kindState  = "state"
	kindRecord = "record"
)

// NewWriter returns the writer of the run directory d, and allocates ReserveFile
// (best effort: without it a full disk may keep the final state from being written).
// say receives one line per failure kind and outage ("warning: ..."), and one when
// writes succeed again.
func NewWriter(d Dir, say func(msg string)) *Writer {
	w := &Writer{dir: d, say: say, failing: map[string]int{}}
	w.reserve = allocate(w.reservePath(), ReserveSize) == nil
	return w
}

func (w *Writer) reservePath() string { return filepath.Join(w.dir.Path, ReserveFile) }

// WriteState writes state.json (atomically, see WriteState). On success it also
// writes the records still pending.
func (w *Writer) WriteState(s State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	final := s.Status == StatusSucceeded || s.Status == StatusGaveUp || s.Status == StatusStopped
	if final {
		// The last words: the pending records first, so that history agrees with
		// the final state, with the reserve if it takes that.
		w.flushLocked(true)
	}
	err := w.withReserve(final, func() error { return writeState(w.dir.State(), s, final) })
	if err != nil {
		w.failedLocked(kindState, err)
		return
	}
	w.recoveredLocked(kindState)
	w.flushLocked(false)
}

// AppendRecord appends r to runs.jsonl after any pending records, or keeps it
// pending when that fails.
func (w *Writer) AppendRecord(r Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, r)
	if n := len(w.pending) - MaxPendingRecords; n > 0 {
		w.dropped += n
		w.pending = append(w.pending[:0], w.pending[n:]...)
	}
	w.flushLocked(r.Decision != "" && r.Decision != DecisionRestart)
}

// Pending is the number of records not yet written.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Close writes what is still pending (with the reserve), removes ReserveFile, and
// returns an error holding, as JSON lines, any record that still could not be
// written, so that the caller can print it rather than lose it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked(true)
	if err := os.Remove(w.reservePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.say(fmt.Sprintf("warning: remove %s: %v", w.reservePath(), err))
	}
	w.reserve = false
	if len(w.pending) == 0 && w.dropped == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d attempt record(s) could not be written", w.dir.Runs(), len(w.pending)+w.dropped)
	if w.dropped > 0 {
		fmt.Fprintf(&b, " (%d lost: more than %d were pending)", w.dropped, MaxPendingRecords)
	}
	if len(w.pending) > 0 {
		b.WriteString("; here they are, for runs.jsonl:")
		for _, r := range w.pending {
			line, err := json.Marshal(r)
			if err == nil {
				b.WriteString("\n")
				b.Write(line)
			}
		}
	}
	return errors.New(b.String())
}

// flushLocked appends the pending records in order and stops at the first failure.
func (w *Writer) flushLocked(final bool) {
	if len(w.pending) == 0 {
		return
	}
	written := 0
	for _, r := range w.pending {
		err := w.withReserve(final, func() error { return AppendRecord(w.dir.Runs(), r) })
		if err != nil {
			w.failedLocked(kindRecord, err)
			break
		}
		written++
	}
	w.pending = append(w.pending[:0], w.pending[written:]...)
	if written > 0 && len(w.pending) == 0 {
		if w.failing[kindRecord] > 0 || w.dropped > 0 {
			msg := fmt.Sprintf("%s written again: %d pending attempt record(s) written", w.dir.Runs(), written)
			if w.dropped > 0 {
				msg += fmt.Sprintf(", %d older one(s) lost (more than %d were pending)", w.dropped, MaxPendingRecords)
				w.dropped = 0
			}
			w.say(msg)
		}
		delete(w.failing, kindRecord)
	}
}

// withReserve runs write; when it fails for want of space and final is set, it
// releases the reserve and tries once more.
func (w *Writer) withReserve(final bool, write func() error) error {
	err := write()
	if err == nil || !final || !w.reserve || !noSpace(err) {
		return err
	}
	if rerr := os.Remove(w.reservePath()); rerr != nil {
		return err
	}
	w.reserve = false
	return write()
}

func (w *Writer) failedLocked(kind string, err error) {
	w.failing[kind]++
	if w.failing[kind] > 1 {
		return
	}
	what := "state.json"
	if kind == kindRecord {
		what = "the attempt record"
	}
	w.say(fmt.Sprintf("warning: cannot write %s: %v; the job keeps running, trainwrap retries with every later write and keeps up to %d records in memory meanwhile (warned once until writes succeed again)", what, err, MaxPendingRecords))
}

func (w *Writer) recoveredLocked(kind string) {
	n := w.failing[kind]
	if n == 0 {
		return
	}
	delete(w.failing, kind)
	w.say(fmt.Sprintf("%s written again after %d failed write(s)", w.dir.State(), n))
	if !w.reserve {
		// Space came back: hold some for the last words again.
		w.reserve = allocate(w.reservePath(), ReserveSize) == nil
	}
}

func noSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// allocate makes path a file of size bytes whose blocks are really allocated
// (fallocate, or zeros where the filesystem lacks it), so that removing it frees
// them. A partial file is removed.
func allocate(path string, size int64) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	zeros := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			return err
		}
	}
	return f.Sync()
}
