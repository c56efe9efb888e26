package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/rundir"
)

// ClassifyCmd names the cause of a crash from logs after the fact.
type ClassifyCmd struct {
	JSON       bool     `help:"Print one JSON object: class, evidence, suggestion, retryable, exit_code, rank, history." name:"json"`
	LastNLines int      `help:"Classify only the last N lines (0: all)." name:"last-n-lines" default:"0"`
	Quiet      bool     `help:"Print only the class." short:"q"`
	Files      []string `arg:"" optional:"" help:"Log files, plain or .gz, read as one log in the order given. Without FILE: the run dir's logs (rotated backups oldest first, then train.log), last attempt only."`
}

// classifyEvidence is one evidence line as the command reports it: the verdict's
// evidence with the file it came from; Line is that file's line.
type classifyEvidence struct {
	File string `json:"file"`
	classify.Evidence
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
		return exitcode.New(2, fmt.Errorf("classify: --last-n-lines %d: want 0 (all lines) or more", c.LastNLines))
	}
	dir := rundir.New(g.StateDir)
	files, lastAttemptOnly := c.Files, false
	if len(files) == 0 {
		var err error
		if files, err = classify.RunDirLogs(dir); err != nil {
			return exitcode.New(1, err)
		}
		lastAttemptOnly = true
	}
	fd := classify.NewLogFeed(c.LastNLines, lastAttemptOnly)
	for _, f := range files {
		if err := fd.ReadFile(f); err != nil {
			return exitcode.New(1, err)
		}
	}
	cls := fd.Finish()
	v := cls.FromLog()
	res := classifyResult{Class: v.Class, Suggestion: v.Suggestion, Retryable: v.Retryable, ExitCode: v.ExitCode, Rank: v.Rank, Lines: cls.Lines(), Attempt: fd.Attempt(), Evidence: []classifyEvidence{}}
	for _, e := range v.Evidence {
		ce := classifyEvidence{Evidence: e}
		if p, ok := fd.Position(e.Line); ok {
			ce.File, ce.Line = p.File, p.Line
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
			return exitcode.New(1, fmt.Errorf("classify: write: %w", err))
		}
	default:
		printVerdict(g.Stdout, res)
	}
	return nil
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
