package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Exit codes of a preflight, as `trainwrap preflight` and `trainwrap run` use them.
const (
	ExitOK       = 0
	ExitWarnings = 1
	ExitFailed   = 3
)

// Status is the worst status in the report; skip when every check skipped or there
// were none.
func (r Report) Status() Status {
	s := Skip
	for _, res := range r.Results {
		s = worse(s, res.Status)
	}
	return s
}

// ExitCode is 0 when every check is ok or skipped, 1 when the worst is a warning, 3
// when any check failed.
func (r Report) ExitCode() int {
	switch r.Status() {
	case Fail:
		return ExitFailed
	case Warn:
		return ExitWarnings
	}
	return ExitOK
}

// Failed lists the results that failed, for an error message that names them.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == Fail {
			out = append(out, res)
		}
	}
	return out
}

// MarshalJSON adds the overall status and exit code to the results.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		Status   Status `json:"status"`
		ExitCode int    `json:"exit_code"`
	}{plain(r), r.Status(), r.ExitCode()})
}

// ANSI colours for the status column; nothing else is coloured, so the table stays
// readable when the escape codes are stripped.
var statusColor = map[Status]string{
	OK:   "\x1b[32m",
	Warn: "\x1b[33m",
	Fail: "\x1b[31m",
	Skip: "\x1b[2m",
}

// Write prints the report as a table (check, status, value, reason), then one line per
// detail and per fix, then a summary line. With color, the status is coloured for a
// terminal.
func (r Report) Write(w io.Writer, color bool) error {
	rows := [][]string{{"CHECK", "STATUS", "VALUE", "REASON"}}
	for _, res := range r.Results {
		rows = append(rows, []string{res.Check, string(res.Status), res.Value, res.Reason})
	}
	width := make([]int, 3)
	for _, row := range rows {
		for i := range width {
			width[i] = max(width[i], utf8.RuneCountInString(row[i]))
		}
	}
	var b strings.Builder
	for i, row := range rows {
		var line strings.Builder
		for j, cell := range row {
			pad := ""
			if j < len(width) {
				pad = strings.Repeat(" ", width[j]-utf8.RuneCountInString(cell)+2)
			}
			if j == 1 && i > 0 && color {
				cell = statusColor[Status(cell)] + cell + "\x1b[0m"
			}
			if j == len(row)-1 {
				pad = ""
			}
			line.WriteString(cell + pad)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		if i > 0 {
			for _, d := range r.Results[i-1].Details {
				fmt.Fprintf(&b, "  %s\n", d)
			}
		}
	}
	for _, res := range r.Results {
		if res.Fixed != "" {
			fmt.Fprintf(&b, "fixed %s: %s\n", res.Check, res.Fixed)
		}
	}
	counts := map[Status]int{}
	for _, res := range r.Results {
		counts[res.Status]++
	}
	fmt.Fprintf(&b, "%d ok, %d warn, %d fail, %d skip in %s\n",
		counts[OK], counts[Warn], counts[Fail], counts[Skip], r.Duration.Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}
