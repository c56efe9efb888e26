package classify

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/trainwrap/trainwrap/rundir"
)

// maxLogLine caps the bytes kept of one log line: evidence needs only its start, and a
// job that prints a gigabyte without a newline must not take a gigabyte here.
const maxLogLine = 64 << 10

// LogPos is where a classified line came from: a file and its line number, from 1.
type LogPos struct {
	File string
	Line int64
}

// RunDirLogs lists the run dir's lumberjack set oldest first: rotated backups
// (train-<timestamp>.log[.gz], whose names sort by time) and then train.log.
func RunDirLogs(dir rundir.Dir) ([]string, error) {
	var backups []string
	for _, pat := range []string{"train-*.log", "train-*.log.gz"} {
		m, err := filepath.Glob(filepath.Join(dir.Logs(), pat))
		if err != nil {
			return nil, fmt.Errorf("classify: list %s: %w", dir.Logs(), err)
		}
		backups = append(backups, m...)
	}
	sort.Slice(backups, func(i, j int) bool {
		return strings.TrimSuffix(backups[i], ".gz") < strings.TrimSuffix(backups[j], ".gz")
	})
	files := backups
	if _, err := os.Stat(dir.TrainLog()); err == nil {
		files = append(files, dir.TrainLog())
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("classify: no logs in %s: pass log FILEs, or --state-dir pointing at a run dir", dir.Logs())
	}
	return files, nil
}

// LogFeed reads logs into a classifier for a verdict after the fact: it strips
// trainwrap's log prefix, restarts at each new attempt when only the last one counts,
// and with a line limit holds back the last N lines until the end. It remembers where
// each classified line came from, so evidence can name its file and line.
type LogFeed struct {
	lastN           int
	lastAttemptOnly bool
	attempt         int
	// readSize is logReadSize; a test makes it small so that reads end inside lines
	// and lines outgrow a read with kilobytes of log, not megabytes.
	readSize int

	cls      *Classifier
	parser   rundir.LogLineParser
	segs     []segment // where the observed lines came from, in runs
	ring     []ringLine
	ringNext int
	ringFull bool
}

// segment is a run of observed lines that are consecutive lines of one file: the
// classifier's line obs is line first of file. Kept per run, not per line, so memory
// does not grow with the log.
type segment struct {
	obs   int64
	file  string
	first int64
}

// Position maps a line number of the classifier's (Evidence.Line) back to its file
// and line. It is valid after Finish.
func (f *LogFeed) Position(obs int64) (LogPos, bool) {
	segs := f.segs
	i := sort.Search(len(segs), func(i int) bool { return segs[i].obs > obs }) - 1
	if i < 0 {
		return LogPos{}, false
	}
	return LogPos{File: segs[i].file, Line: segs[i].first + obs - segs[i].obs}, true
}

// Attempt is the attempt number of the last prefixed line read; 0 when no line had
// trainwrap's prefix.
func (f *LogFeed) Attempt() int { return f.attempt }

type ringLine struct {
	text []byte
	pos  LogPos
}

// NewLogFeed returns a feed that classifies only the last lastN lines (0: all), and
// with lastAttemptOnly only the lines of the last attempt in the logs.
func NewLogFeed(lastN int, lastAttemptOnly bool) *LogFeed {
	f := &LogFeed{lastN: lastN, lastAttemptOnly: lastAttemptOnly, readSize: logReadSize}
	f.reset()
	return f
}

func (f *LogFeed) reset() {
	f.cls = New()
	f.segs = f.segs[:0]
	if f.lastN > 0 {
		f.ring = make([]ringLine, f.lastN)
	}
	f.ringNext, f.ringFull = 0, false
}

// ReadFile feeds one file, plain or gzip (by its .gz suffix), after those before.
func (f *LogFeed) ReadFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("classify: %w", err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			return fmt.Errorf("classify: %s: not a readable gzip file: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return f.read(r, path)
}

// logReadSize is one read of a log file: large, so that a healthy stretch is vouched
// for by the classifier in few calls and the syscalls are few.
const logReadSize = 1 << 20

// read feeds r's lines: whole lines straight from a large buffer, the few that cross
// its end moved to its front; a line longer than the buffer keeps its first maxLogLine
// bytes.
func (f *LogFeed) read(r io.Reader, path string) error {
	buf := make([]byte, f.readSize)
	have := 0
	var long []byte // the start of a line longer than buf
	inLong := false
	var n int64
	for {
		k, err := io.ReadFull(r, buf[have:])
		have += k
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return fmt.Errorf("classify: read %s: %w", path, err)
		}
		data := buf[:have]
		if inLong {
			i := bytes.IndexByte(data, '\n')
			if i < 0 && !eof {
				long = appendCapped(long, data)
				have = 0
				continue
			}
			end := len(data)
			if i >= 0 {
				end = i + 1
			}
			long = appendCapped(long, data[:end])
			n++
			f.line(bytes.TrimSuffix(long, []byte("\n")), LogPos{File: path, Line: n}, false)
			long, inLong = nil, false
			data = data[end:]
		}
		// Whole lines only; a last line without a newline is fed on its own below.
		whole := data[:bytes.LastIndexByte(data, '\n')+1]
		f.lines(whole, path, &n)
		rest := data[len(whole):]
		if eof {
			if len(rest) > 0 {
				n++
				f.line(rest[:min(len(rest), maxLogLine)], LogPos{File: path, Line: n}, false)
			}
			return nil
		}
		if len(rest) == len(buf) {
			// No newline in a whole buffer: keep the start, skip to the line's end.
			long, inLong, have = appendCapped(nil, rest), true, 0
			continue
		}
		have = copy(buf, rest)
	}
}

// appendCapped appends what room maxLogLine leaves in long.
func appendCapped(long, b []byte) []byte {
	if room := maxLogLine - len(long); room > 0 {
		long = append(long, b[:min(len(b), room)]...)
	}
	return long
}

// lines feeds b, whole lines with their newlines. With every line observed as it comes
// (no --last-n-lines), the classifier vouches for the healthy stretches of b at once.
func (f *LogFeed) lines(b []byte, path string, n *int64) {
	quietEnd := -1
	for pos := 0; pos < len(b); {
		i := bytes.IndexByte(b[pos:], '\n')
		line := b[pos : pos+i]
		*n++
		quiet := false
		if f.lastN == 0 {
			// The classifier sees less than the raw line (the prefix is cut), so its
			// word on the raw bytes holds for it; and for a fresh one after a new
			// attempt, which starts outside any traceback.
			if quietEnd < pos {
				quietEnd = pos + f.cls.QuietUpTo(b[pos:])
			}
			quiet = pos+i < quietEnd
		}
		f.line(line[:min(len(line), maxLogLine)], LogPos{File: path, Line: *n}, quiet)
		pos += i + 1
	}
}

func (f *LogFeed) line(b []byte, pos LogPos, quiet bool) {
	if _, attempt, rest, ok := f.parser.Parse(b); ok {
		b = rest
		if f.lastAttemptOnly && attempt != f.attempt && f.attempt != 0 {
			f.reset()
		}
		f.attempt = attempt
	}
	if f.lastN == 0 {
		f.observe(b, pos, quiet)
		return
	}
	slot := &f.ring[f.ringNext]
	slot.text = append(slot.text[:0], b...)
	slot.pos = pos
	f.ringNext++
	if f.ringNext == len(f.ring) {
		f.ringNext, f.ringFull = 0, true
	}
}

func (f *LogFeed) observe(b []byte, pos LogPos, quiet bool) {
	if quiet {
		f.cls.ObserveQuiet(b)
	} else {
		f.cls.ObserveLine(b)
	}
	obs := f.cls.Lines()
	if n := len(f.segs); n > 0 {
		if last := f.segs[n-1]; last.file == pos.File && last.first+obs-last.obs == pos.Line {
			return
		}
	}
	f.segs = append(f.segs, segment{obs: obs, file: pos.File, first: pos.Line})
}

// Finish feeds the held-back lines and returns the classifier, ready for FromLog.
func (f *LogFeed) Finish() *Classifier {
	if f.lastN > 0 {
		start, count := 0, f.ringNext
		if f.ringFull {
			start, count = f.ringNext, len(f.ring)
		}
		for i := 0; i < count; i++ {
			l := f.ring[(start+i)%len(f.ring)]
			f.observe(l.text, l.pos, false)
		}
	}
	return f.cls
}
