package classify

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

const (
	oomLine  = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."
	ncclLine = "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1191, unhandled system error, NCCL version 2.14.3"
)

// writeLog writes lines to dir/name, gzip'd when the name ends in .gz.
func writeLog(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	data := []byte(strings.Join(lines, "\n") + "\n")
	if strings.HasSuffix(name, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = b.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type logFile struct {
	name  string
	lines []string
}

func TestLogFeed(t *testing.T) {
	tests := []struct {
		name            string
		files           []logFile
		lastN           int
		lastAttemptOnly bool
		wantClass       Class
		wantLines       int64
		wantAttempt     int
		wantEvidence    LogPos // of the first evidence line; zero when none
		wantText        string
	}{
		{
			name:      "plain file",
			files:     []logFile{{"a.log", []string{"step 1", "step 2", oomLine}}},
			wantClass: CudaOOM, wantLines: 3, wantEvidence: LogPos{"a.log", 3}, wantText: oomLine,
		},
		{
			name:      "gzip file reads like a plain one",
			files:     []logFile{{"a.log.gz", []string{"step 1", oomLine}}},
			wantClass: CudaOOM, wantLines: 2, wantEvidence: LogPos{"a.log.gz", 2}, wantText: oomLine,
		},
		{
			name:      "prefix is stripped from the evidence",
			files:     []logFile{{"a.log", []string{"2026-11-28T23:57:10.123Z [2] step 1", "2026-11-28T23:57:10.124Z [2] " + oomLine}}},
			wantClass: CudaOOM, wantLines: 2, wantAttempt: 2, wantEvidence: LogPos{"a.log", 2}, wantText: oomLine,
		},
		{
			name: "several files are one log; line numbers stay per file",
			files: []logFile{
				{"a.log", []string{"step 1", "step 2"}},
				{"b.log", []string{"step 3", oomLine}},
			},
			wantClass: CudaOOM, wantLines: 4, wantEvidence: LogPos{"b.log", 2}, wantText: oomLine,
		},
		{
			name: "last attempt only: an earlier attempt's crash does not count",
			files: []logFile{
				{"old.log", []string{"2026-11-28T10:00:00.000Z [1] " + ncclLine, "2026-11-28T10:01:00.000Z [2] step 1"}},
				{"train.log", []string{"2026-11-28T10:02:00.000Z [2] step 2", "2026-11-28T10:03:00.000Z [2] " + oomLine}},
			},
			lastAttemptOnly: true,
			wantClass:       CudaOOM, wantLines: 3, wantAttempt: 2, wantEvidence: LogPos{"train.log", 2}, wantText: oomLine,
		},
		{
			name: "without last attempt only every attempt counts",
			files: []logFile{
				{"old.log", []string{"2026-11-28T10:00:00.000Z [1] " + ncclLine, "2026-11-28T10:01:00.000Z [2] step 1"}},
			},
			wantClass: NCCL, wantLines: 2, wantAttempt: 2, wantEvidence: LogPos{"old.log", 1}, wantText: ncclLine,
		},
		{
			name:      "last N lines: the crash is out of sight",
			files:     []logFile{{"a.log", []string{oomLine, "step 1", "step 2", "step 3"}}},
			lastN:     3,
			wantClass: None, wantLines: 3,
		},
		{
			name:      "last N lines across files keep their positions",
			files:     []logFile{{"a.log", []string{"step 0", oomLine}}, {"b.log", []string{"step 1"}}},
			lastN:     2,
			wantClass: CudaOOM, wantLines: 2, wantEvidence: LogPos{"a.log", 2}, wantText: oomLine,
		},
		{
			name:      "empty file",
			files:     []logFile{{"a.log", nil}},
			wantClass: None, wantLines: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := NewLogFeed(tt.lastN, tt.lastAttemptOnly)
			for _, lf := range tt.files {
				if err := f.ReadFile(writeLog(t, dir, lf.name, lf.lines...)); err != nil {
					t.Fatal(err)
				}
			}
			cls := f.Finish()
			v := cls.FromLog()
			if v.Class != tt.wantClass || cls.Lines() != tt.wantLines || f.Attempt() != tt.wantAttempt {
				t.Fatalf("class %s, %d lines, attempt %d; want %s, %d, %d", v.Class, cls.Lines(), f.Attempt(), tt.wantClass, tt.wantLines, tt.wantAttempt)
			}
			if tt.wantEvidence == (LogPos{}) {
				return
			}
			if len(v.Evidence) == 0 {
				t.Fatalf("no evidence for %s", v.Class)
			}
			e := v.Evidence[0]
			pos, ok := f.Position(e.Line)
			if !ok {
				t.Fatalf("no position for classifier line %d", e.Line)
			}
			pos.File = filepath.Base(pos.File)
			if pos != tt.wantEvidence || e.Text != tt.wantText {
				t.Errorf("evidence %v %q, want %v %q", pos, e.Text, tt.wantEvidence, tt.wantText)
			}
		})
	}
}

// A line without a newline for megabytes costs maxLogLine, and the lines after it keep
// their numbers.
func TestLogFeedLongLine(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 3*maxLogLine)
	f := NewLogFeed(0, false)
	if err := f.ReadFile(writeLog(t, dir, "a.log", long, oomLine)); err != nil {
		t.Fatal(err)
	}
	cls := f.Finish()
	v := cls.FromLog()
	if v.Class != CudaOOM || cls.Lines() != 2 {
		t.Fatalf("class %s, %d lines; want %s, 2", v.Class, cls.Lines(), CudaOOM)
	}
	if pos, ok := f.Position(v.Evidence[0].Line); !ok || pos.Line != 2 {
		t.Errorf("evidence at %v %v, want line 2", pos, ok)
	}
}

func TestLogFeedErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gz")
	if err := os.WriteFile(bad, []byte("this is not a gzip file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "missing.log"), "classify: open " + filepath.Join(dir, "missing.log") + ": no such file or directory"},
		{"not gzip", bad, "classify: " + bad + ": not a readable gzip file: gzip: invalid header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewLogFeed(0, false).ReadFile(tt.path)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("ReadFile: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestRunDirLogs(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		want    []string
		wantErr bool
	}{
		{"train.log alone", []string{"train.log"}, []string{"train.log"}, false},
		{
			"backups oldest first, gzip or not, then train.log",
			[]string{"train.log", "train-2026-11-28T11-00-00.000.log", "train-2026-11-28T10-00-00.000.log.gz", "train-2026-11-28T12-00-00.000.log.gz"},
			[]string{"train-2026-11-28T10-00-00.000.log.gz", "train-2026-11-28T11-00-00.000.log", "train-2026-11-28T12-00-00.000.log.gz", "train.log"},
			false,
		},
		{"backups without train.log", []string{"train-2026-11-28T10-00-00.000.log"}, []string{"train-2026-11-28T10-00-00.000.log"}, false},
		{"other files are not logs", []string{"notes.txt", "other.log"}, nil, true},
		{"no logs", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := rundir.New(t.TempDir())
			if err := os.MkdirAll(d.Logs(), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.files {
				if err := os.WriteFile(filepath.Join(d.Logs(), n), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := RunDirLogs(d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("RunDirLogs: %v, want error %v", err, tt.wantErr)
			}
			for i := range got {
				got[i] = filepath.Base(got[i])
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RunDirLogs = %q, want %q", got, tt.want)
			}
		})
	}
}

// feedLineByLine is the reference reading of files: each line split off on its own,
// capped at maxLogLine, handed to the classifier in full.
func feedLineByLine(t *testing.T, lastN int, lastAttemptOnly bool, paths []string) *LogFeed {
	t.Helper()
	f := NewLogFeed(lastN, lastAttemptOnly)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if _, err := b.ReadFrom(zr); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		var n int64
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			n++
			f.line(line[:min(len(line), maxLogLine)], LogPos{File: p, Line: n}, false)
		}
	}
	return f
}

// ReadFile's large reads, lines across their ends, long lines and the classifier's word
// on healthy stretches give what reading line by line gives: verdict, line count,
// evidence positions and attempt, for every crash log of the corpus in a train.log
// with prefixes, two attempts, healthy output around, plain and gzip'd.
func TestLogFeedReadsAsLineByLine(t *testing.T) {
	var logs []string
	err := filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			logs = append(logs, p)
		}
		return err
	})
	if err != nil || len(logs) < 100 {
		t.Fatalf("corpus: %d logs, %v", len(logs), err)
	}
	// Each kind of healthy line a few times (healthyLines repeats them 200 times: too
	// much to read 574 logs six ways under the race detector).
	var small []string
	for _, l := range healthyLines()[:40] {
		small = append(small, string(l))
	}
	// For some logs, enough healthy output that the crash crosses a read's end, and a
	// line longer than a read; the rest keep the test quick. Reads of 16 KiB, not
	// logReadSize, so that this takes kilobytes per log (the race detector made the
	// megabytes take minutes); the code is the same, and a line longer than the read
	// is still shorter than maxLogLine, so it is kept whole both ways.
	const readSize = 16 << 10
	big := small
	for len(strings.Join(big, "\n")) < readSize+readSize/3 {
		big = append(big, big...)
	}
	big = append(big, strings.Repeat("y", readSize+5))
	dir := t.TempDir()
	stamp := []byte("2026-11-28T23:57:10.123Z")
	prefixed := func(attempt int, lines []string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = string(rundir.AppendLogPrefix(nil, mustTime(t, stamp), attempt)) + l
		}
		return out
	}
	for i, p := range logs {
		healthy := small
		if i%4 == 0 {
			healthy = big
		}
		crash, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		crashLines := strings.Split(strings.TrimSuffix(string(crash), "\n"), "\n")
		a := writeLog(t, dir, "train-1.log.gz", prefixed(1, append(append([]string{}, healthy...), crashLines...))...)
		b := writeLog(t, dir, "train.log", prefixed(2, append(append([]string{}, healthy[:len(healthy)/2]...), crashLines...))...)
		raw := writeLog(t, dir, "raw.log", append(append([]string{}, healthy...), crashLines...)...)
		// No newline at the end, as a log cut by a kill ends.
		cut := filepath.Join(dir, "cut.log")
		if err := os.WriteFile(cut, []byte(strings.Join(append(append([]string{}, healthy...), crashLines...), "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name     string
			lastN    int
			lastOnly bool
			paths    []string
		}{
			{"two attempts, last only", 0, true, []string{a, b}},
			{"two attempts, all", 0, false, []string{a, b}},
			{"last 50 lines", 50, false, []string{a, b}},
			{"raw log", 0, false, []string{raw}},
			{"no final newline", 0, false, []string{cut}},
			{"no final newline, then another file", 0, false, []string{cut, raw}},
		} {
			want := feedLineByLine(t, tc.lastN, tc.lastOnly, tc.paths)
			got := NewLogFeed(tc.lastN, tc.lastOnly)
			got.readSize = readSize
			for _, path := range tc.paths {
				if err := got.ReadFile(path); err != nil {
					t.Fatal(err)
				}
			}
			wc, gc := want.Finish(), got.Finish()
			wv, gv := wc.FromLog(), gc.FromLog()
			if !reflect.DeepEqual(gv, wv) || gc.Lines() != wc.Lines() || got.Attempt() != want.Attempt() {
				t.Errorf("%s, %s: %+v after %d lines, line by line %+v after %d", p, tc.name, gv, gc.Lines(), wv, wc.Lines())
				continue
			}
			for _, e := range gv.Evidence {
				gp, gok := got.Position(e.Line)
				wp, wok := want.Position(e.Line)
				if gp != wp || gok != wok {
					t.Errorf("%s, %s: evidence line %d at %v, line by line %v", p, tc.name, e.Line, gp, wp)
				}
			}
		}
	}
}

func mustTime(t *testing.T, stamp []byte) time.Time {
	t.Helper()
	at, err := time.Parse(rundir.LogTimeLayout, string(stamp))
	if err != nil {
		t.Fatal(err)
	}
	return at
}
