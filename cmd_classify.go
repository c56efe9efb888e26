package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/rundir"
)

// ClassifyCmd names the cause of a crash from logs after the fact.
type ClassifyCmd struct {
	JSON       bool     `help:"Print one JSON object: class, evidence, suggestion, retryable, exit_code, rank, history." name:"json"`
	LastNLines int      `help:"Classify only the last N lines (0: all)." name:"last-n-lines" default:"0"`
	Quiet      bool     `help:"Print only the class." short:"q"`
	Files      []string `arg:"" optional:"" help:"Log files, plain or .gz, read as one log in the order given. Without FILE: the run dir's logs (rotated backups oldest first, then train.log), last attempt only."`
}

// maxLogLine caps the bytes kept of one log line: evidence needs only its start, and a
// job that prints a gigabyte without a newline must not take a gigabyte here.
const maxLogLine = 64 << 10

// logPos is where a classified line came from.
type logPos struct {
	file string
	line int64
}

// classifyEvidence is one evidence line as the command reports it.
type classifyEvidence struct {
	File string `json:"file"`
	Line int64  `json:"line"`
	Text string `json:"text"`
	Rule string `json:"rule,omitempty"`
}

// classHistory is what runs.jsonl says about one class.
type classHistory struct {
	Class       string    `json:"class"`
	Count       int       `json:"count"`
	LastAttempt int       `json:"last_attempt"`
	LastEnd     time.Time `json:"last_end"`
}

type classifyHistory struct {
	Attempts int            `json:"attempts"`
	Crashes  []classHistory `json:"crashes"`
}

type classifyResult struct {
	Class      classify.Class     `json:"class"`
	Evidence   []classifyEvidence `json:"evidence"`
	Suggestion string             `json:"suggestion"`
	Retryable  bool               `json:"retryable"`
	ExitCode   int                `json:"exit_code"`
	Rank       *int               `json:"rank,omitempty"`
	Lines      int64              `json:"lines"`
	Attempt    int                `json:"attempt,omitempty"`
	History    *classifyHistory   `json:"history,omitempty"`
}

// Run classifies the logs and prints the verdict. It exits 0 whatever the class: the
// exit code says whether the command ran, the output says what it found.
func (c *ClassifyCmd) Run(g *Globals) error {
	if c.LastNLines < 0 {
		return exitError{code: 2, err: fmt.Errorf("classify: --last-n-lines %d: want 0 (all lines) or more", c.LastNLines)}
	}
	dir := rundir.New(g.StateDir)
	files, lastAttemptOnly := c.Files, false
	if len(files) == 0 {
		var err error
		if files, err = runDirLogs(dir); err != nil {
			return exitError{code: 1, err: err}
		}
		lastAttemptOnly = true
	}
	fd := newFeed(c.LastNLines, lastAttemptOnly)
	for _, f := range files {
		if err := fd.readFile(f); err != nil {
			return exitError{code: 1, err: err}
		}
	}
	cls, segs := fd.finish()
	v := cls.FromLog()
	res := classifyResult{Class: v.Class, Suggestion: v.Suggestion, Retryable: v.Retryable, ExitCode: v.ExitCode, Rank: v.Rank, Lines: cls.Lines(), Attempt: fd.attempt, Evidence: []classifyEvidence{}}
	for _, e := range v.Evidence {
		ce := classifyEvidence{Line: e.Line, Text: e.Text, Rule: e.Rule}
		if p, ok := position(segs, e.Line); ok {
			ce.File, ce.Line = p.file, p.line
		}
		res.Evidence = append(res.Evidence, ce)
	}
	records, torn, err := rundir.ReadRecords(dir.Runs())
	if err != nil {
		// The verdict stands without the history; say why it is missing.
		fmt.Fprintf(g.Stderr, "trainwrap: classify: no crash history: %v\n", err)
	}
	if w := torn.Warning(); w != "" {
		fmt.Fprintf(g.Stderr, "trainwrap: warning: %s\n", w)
	}
	res.History = history(records)

	switch {
	case c.Quiet:
		fmt.Fprintln(g.Stdout, res.Class)
	case c.JSON:
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return exitError{code: 1, err: fmt.Errorf("classify: write: %w", err)}
		}
	default:
		printVerdict(g.Stdout, res)
	}
	return nil
}

// runDirLogs lists the run dir's lumberjack set oldest first: rotated backups
// (train-<timestamp>.log[.gz], whose names sort by time) and then train.log.
func runDirLogs(dir rundir.Dir) ([]string, error) {
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

// feed hands log lines to a classifier: it strips trainwrap's log prefix, restarts at
// each new attempt when only the last one counts, and with a line limit holds back the
// last N lines until the end.
type feed struct {
	lastN           int
	lastAttemptOnly bool
	attempt         int

	cls      *classify.Classifier
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

// position maps a classifier line number back to its file and line.
func position(segs []segment, obs int64) (logPos, bool) {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].obs > obs }) - 1
	if i < 0 {
		return logPos{}, false
	}
	return logPos{file: segs[i].file, line: segs[i].first + obs - segs[i].obs}, true
}

type ringLine struct {
	text []byte
	pos  logPos
}

func newFeed(lastN int, lastAttemptOnly bool) *feed {
	f := &feed{lastN: lastN, lastAttemptOnly: lastAttemptOnly}
	f.reset()
	return f
}

func (f *feed) reset() {
	f.cls = classify.New()
	f.segs = f.segs[:0]
	if f.lastN > 0 {
		f.ring = make([]ringLine, f.lastN)
	}
	f.ringNext, f.ringFull = 0, false
}

// readFile feeds one file, plain or gzip.
func (f *feed) readFile(path string) error {
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
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	var n int64
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if room := maxLogLine - len(long); room > 0 {
				long = append(long, chunk[:min(len(chunk), room)]...)
			}
			continue
		case err != nil && err != io.EOF:
			return fmt.Errorf("classify: read %s: %w", path, err)
		}
		line := chunk
		if long != nil {
			if room := maxLogLine - len(long); room > 0 {
				long = append(long, chunk[:min(len(chunk), room)]...)
			}
			line, long = long, nil
		}
		if len(line) > 0 {
			n++
			f.line(bytes.TrimSuffix(line, []byte("\n")), logPos{file: path, line: n})
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (f *feed) line(b []byte, pos logPos) {
	if _, attempt, rest, ok := rundir.ParseLogLine(b); ok {
		b = rest
		if f.lastAttemptOnly && attempt != f.attempt && f.attempt != 0 {
			f.reset()
		}
		f.attempt = attempt
	}
	if f.lastN == 0 {
		f.observe(b, pos)
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

func (f *feed) observe(b []byte, pos logPos) {
	f.cls.ObserveLine(b)
	obs := f.cls.Lines()
	if n := len(f.segs); n > 0 {
		if last := f.segs[n-1]; last.file == pos.file && last.first+obs-last.obs == pos.line {
			return
		}
	}
	f.segs = append(f.segs, segment{obs: obs, file: pos.file, first: pos.line})
}

// finish feeds the held-back lines and returns the classifier with where its lines
// came from.
func (f *feed) finish() (*classify.Classifier, []segment) {
	if f.lastN > 0 {
		start, count := 0, f.ringNext
		if f.ringFull {
			start, count = f.ringNext, len(f.ring)
		}
		for i := 0; i < count; i++ {
			l := f.ring[(start+i)%len(f.ring)]
			f.observe(l.text, l.pos)
		}
	}
	return f.cls, f.segs
}

// history sums runs.jsonl per crash class; nil when there is no record.
func history(records []rundir.Record) *classifyHistory {
	if len(records) == 0 {
		return nil
	}
	h := &classifyHistory{Attempts: len(records), Crashes: []classHistory{}}
	byClass := map[string]int{}
	for _, r := range records {
		if r.Class == "" || r.Class == string(classify.None) {
			continue
		}
		i, seen := byClass[r.Class]
		if !seen {
			i = len(h.Crashes)
			byClass[r.Class] = i
			h.Crashes = append(h.Crashes, classHistory{Class: r.Class})
		}
		ch := &h.Crashes[i]
		ch.Count++
		if r.Attempt >= ch.LastAttempt {
			ch.LastAttempt, ch.LastEnd = r.Attempt, r.End
		}
	}
	sort.SliceStable(h.Crashes, func(i, j int) bool { return h.Crashes[i].Count > h.Crashes[j].Count })
	return h
}

func printVerdict(w io.Writer, res classifyResult) {
	in := classify.Lookup(res.Class)
	if res.Class == classify.None {
		fmt.Fprintf(w, "class: none (no crash found in %d lines)\n", res.Lines)
	} else {
		retry := "not retryable"
		if in.Retryable {
			retry = "retryable"
		}
		fmt.Fprintf(w, "class: %s (exit code %d, %s)\n", res.Class, res.ExitCode, retry)
		if res.Rank != nil {
			fmt.Fprintf(w, "rank: %d\n", *res.Rank)
		}
		fmt.Fprintln(w, "evidence:")
		for _, e := range res.Evidence {
			rule := ""
			if e.Rule != "" {
				rule = "  [" + e.Rule + "]"
			}
			fmt.Fprintf(w, "  %s:%d: %s%s\n", e.File, e.Line, e.Text, rule)
		}
		fmt.Fprintf(w, "suggestion: %s\n", res.Suggestion)
	}
	if res.History == nil {
		return
	}
	fmt.Fprintf(w, "history: %d attempts recorded in runs.jsonl\n", res.History.Attempts)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range res.History.Crashes {
		fmt.Fprintf(tw, "  %s\t%d\tlast: attempt %d, %s\n", c.Class, c.Count, c.LastAttempt, c.LastEnd.UTC().Format(time.RFC3339))
	}
	tw.Flush()
}
