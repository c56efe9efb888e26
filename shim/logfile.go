package shim

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"
)

// logFile is train.log. lumberjack rotates it, with its own compression off: lumberjack
// gzips inside Write's goroutine at the default level (44% of the supervisor's CPU at
// full output speed), writes the .gz in place (a kill leaves a torn one) and counts a
// backup twice while both forms exist. Here one background goroutine, on a thread at
// the lowest CPU and I/O priority, gzips each rotated backup to NAME.gz.tmp once the
// output pauses (compressQuiet), renames it into place and keeps exactly maxBackups
// backups, compressed or not.
type logFile struct {
	lj         *lumberjack.Logger
	max        int64
	maxBackups int
	dir        string
	prefix     string // "train-" of train-<timestamp>.log
	ext        string // ".log"

	mu     sync.Mutex // guards size and opened: Write mirrors lumberjack's rotation rule
	size   int64
	opened bool
	// lastWrite is when Write last ran (unix nanos): the compressor waits for a pause.
	lastWrite atomic.Int64

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once

	// chunk, when set, is called after each chunk a compression writes to its .gz.tmp:
	// a test's seam to stop the compressor mid-file at a known point.
	chunk func(tmp string)
}

// logCompressChunk is how much compression reads between checks for cancellation.
const logCompressChunk = 256 << 10

// compressQuiet is how long the log must go without a write before a rotated backup is
// compressed. Compressing costs more CPU per byte than the copy of the output itself
// (gzip at its fastest level: about a fifth of the supervisor's CPU at full speed), so
// during a burst it would take a core from the job and the copy even at nice 19, where
// the job's own pipe keeps both cores busy. compressMaxDelay bounds the wait for a job
// that never pauses; its backups are then compressed while it prints, as before.
const (
	compressQuiet    = time.Second
	compressMaxDelay = time.Minute
)

// newLogFile opens the rotating log at name (created on first Write) and starts its
// compressor, which first tidies what an earlier run left: a stale .gz.tmp, uncompressed
// backups and backups over the cap.
func newLogFile(name string, maxSizeMB, maxBackups int) *logFile {
	return newLogFileHooked(name, maxSizeMB, maxBackups, nil)
}

func newLogFileHooked(name string, maxSizeMB, maxBackups int, chunk func(string)) *logFile {
	base := filepath.Base(name)
	ext := filepath.Ext(base)
	ctx, cancel := context.WithCancel(context.Background())
	l := &logFile{
		// MaxBackups 0 and Compress false: lumberjack prunes nothing, so the
		// compressor is the only one that removes files and cannot race it.
		lj:         &lumberjack.Logger{Filename: name, MaxSize: maxSizeMB},
		max:        int64(maxSizeMB) << 20,
		maxBackups: maxBackups,
		dir:        filepath.Dir(name),
		prefix:     strings.TrimSuffix(base, ext) + "-",
		ext:        ext,
		kick:       make(chan struct{}, 1),
		cancel:     cancel,
		done:       make(chan struct{}),
		chunk:      chunk,
	}
	l.kick <- struct{}{}
	go l.compressor(ctx)
	return l
}

// Write appends p, and wakes the compressor when lumberjack rotated to take it. The
// rule is lumberjack's: an existing file is rotated at open when p would reach the
// limit, an open one when p would pass it; a write over the limit is refused.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(p))
	rotated := false
	if n <= l.max {
		if !l.opened {
			l.opened = true
			if st, err := os.Stat(l.lj.Filename); err == nil {
				if st.Size()+n >= l.max {
					rotated = true
				} else {
					l.size = st.Size()
				}
			}
		} else if l.size+n > l.max {
			rotated = true
			l.size = 0
		}
	}
	l.lastWrite.Store(time.Now().UnixNano())
	w, err := l.lj.Write(p)
	l.size += int64(w)
	if rotated {
		select {
		case l.kick <- struct{}{}:
		default: // a pass is already due; it lists the directory and sees this one too
		}
	}
	return w, err
}

// Close closes the log and stops the compressor. A backup being compressed is left
// uncompressed (the next run compresses it), never as a partial .gz; the cap is applied
// once more before returning.
func (l *logFile) Close() error {
	err := l.lj.Close()
	l.closed.Do(func() {
		l.cancel()
		<-l.done
		if perr := l.prune(); perr != nil && err == nil {
			err = perr
		}
	})
	return err
}

// compressor runs passes until cancelled, on a thread of its own at nice 19 and the
// idle I/O class, so compressing never competes with the job's output. The thread is
// never unlocked, so it exits with the goroutine instead of lending its priority to
// other goroutines.
func (l *logFile) compressor(ctx context.Context) {
	defer close(l.done)
	runtime.LockOSThread()
	tid := unix.Gettid()
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	const ioprioWhoProcess, ioprioClassIdle, ioprioClassShift = 1, 3, 13
	_, _, _ = unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		}
		if !l.waitQuiet(ctx) {
			return
		}
		if err := l.pass(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "trainwrap: warning: rotated logs in %s: %v\n", l.dir, err)
		}
	}
}

// waitQuiet waits until the log has had no write for compressQuiet, or for
// compressMaxDelay at most; false when cancelled first.
func (l *logFile) waitQuiet(ctx context.Context) bool {
	deadline := time.Now().Add(compressMaxDelay)
	for {
		wait := compressQuiet - time.Since(time.Unix(0, l.lastWrite.Load()))
		if wait <= 0 || !time.Now().Before(deadline) {
			return true
		}
		t := time.NewTimer(min(wait, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// backup is one rotated log, by its uncompressed name; plain and gz say which forms exist.
type backup struct {
	name      string
	plain, gz bool
}

// backups lists the rotated logs oldest first (their names hold the UTC time) and
// removes .gz.tmp files, which only an interrupted compression of this log leaves.
func (l *logFile) backups() ([]backup, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.dir, err)
	}
	byName := map[string]*backup{}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, l.prefix) || e.IsDir() {
			continue
		}
		stem, form := n, ""
		for _, suf := range []string{".gz.tmp", ".gz"} {
			if strings.HasSuffix(n, l.ext+suf) {
				stem, form = strings.TrimSuffix(n, suf), suf
				break
			}
		}
		if !strings.HasSuffix(stem, l.ext) {
			continue
		}
		if _, err := time.Parse("2006-01-02T15-04-05.000", strings.TrimSuffix(strings.TrimPrefix(stem, l.prefix), l.ext)); err != nil {
			continue // not a lumberjack backup name
		}
		if form == ".gz.tmp" {
			if err := os.Remove(filepath.Join(l.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove stale %s: %w", n, err)
			}
			continue
		}
		b := byName[stem]
		if b == nil {
			b = &backup{name: stem}
			byName[stem] = b
		}
		if form == ".gz" {
			b.gz = true
		} else {
			b.plain = true
		}
	}
	out := make([]backup, 0, len(byName))
	for _, b := range byName {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// prune removes the oldest backups beyond maxBackups, both forms of each.
func (l *logFile) prune() error {
	bs, err := l.backups()
	if err != nil {
		return err
	}
	if l.maxBackups <= 0 || len(bs) <= l.maxBackups {
		return nil
	}
	for _, b := range bs[:len(bs)-l.maxBackups] {
		for _, n := range []string{b.name, b.name + ".gz"} {
			if err := os.Remove(filepath.Join(l.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove old log %s: %w", n, err)
			}
		}
	}
	return nil
}

// pass prunes, then compresses every uncompressed backup, newest last.
func (l *logFile) pass(ctx context.Context) error {
	if err := l.prune(); err != nil {
		return err
	}
	bs, err := l.backups()
	if err != nil {
		return err
	}
	for _, b := range bs {
		if !b.plain {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// With both forms present the .gz is from a compression that was stopped before
		// it removed the plain file; lumberjack's own left torn ones. The plain file is
		// whole, so it is compressed again rather than trusted.
		if err := l.compress(ctx, filepath.Join(l.dir, b.name)); err != nil {
			return err
		}
	}
	return nil
}

// compress gzips src to src.gz through src.gz.tmp, so that src.gz, once it exists, is
// whole; src is removed only after the rename. Cancelled, it leaves src as it was.
func (l *logFile) compress(ctx context.Context, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	tmp := src + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	// BestSpeed: log text still shrinks about tenfold, at a fraction of the default
	// level's CPU, which on a 2-core host is CPU the job wanted.
	zw, _ := gzip.NewWriterLevel(out, gzip.BestSpeed)
	zw.Name = filepath.Base(src)
	zw.ModTime = st.ModTime()
	buf := make([]byte, logCompressChunk)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, werr := zw.Write(buf[:n]); werr != nil {
				return fmt.Errorf("compress %s: %w", src, werr)
			}
			if l.chunk != nil {
				if ferr := zw.Flush(); ferr != nil {
					return fmt.Errorf("compress %s: %w", src, ferr)
				}
				l.chunk(tmp)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("compress %s: %w", src, rerr)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := os.Rename(tmp, src+".gz"); err != nil {
		return fmt.Errorf("compress %s: %w", src, err)
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("compress %s: remove the uncompressed copy: %w", src, err)
	}
	return nil
}
