package main

import (
	"bytes"
	"fmt"

	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/observe"
	"github.com/trainwrap/trainwrap/rundir"
)

// ReportCmd writes the status page of a run as one self-contained HTML file, for a
// post-mortem of a finished run or a snapshot of a live one.
type ReportCmd struct {
	Out string `help:"Write the page to FILE instead of stdout (atomically: a reader never sees half a page)." type:"path" placeholder:"FILE.html" short:"o"`
}

// Run renders the page of the run dir in --state-dir.
func (c *ReportCmd) Run(g *Globals) error {
	var b bytes.Buffer
	if err := observe.RenderPage(&b, g.StateDir, false); err != nil {
		return exitcode.New(1, err)
	}
	// The page carries the note too; say it where a person running report looks.
	if _, torn, err := rundir.ReadRecords(rundir.New(g.StateDir).Runs()); err == nil && torn.Warning() != "" {
		fmt.Fprintf(g.Stderr, "trainwrap: warning: %s\n", torn.Warning())
	}
	if c.Out == "" {
		_, err := g.Stdout.Write(b.Bytes())
		return err
	}
	if err := rundir.WriteFileAtomic(c.Out, b.Bytes(), 0o644); err != nil {
		return exitcode.New(1, fmt.Errorf("report: %w", err))
	}
	fmt.Fprintf(g.Stderr, "trainwrap: report written to %s\n", c.Out)
	return nil
}
