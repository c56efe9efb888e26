package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Passed reports whether every result passed.
func Passed(rs []Result) bool {
	for _, r := range rs {
		if !r.Pass {
			return false
		}
	}
	return true
}

// WriteJSON writes the results as one JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

// WriteTable writes one row per scenario, the problems of failed rows under the table,
// and a summary line.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tEXPECTED\tDETECTED\tRESTARTED\tRESUMED\tQUARANTINED\tANOMALIES\tLEFT\tEXIT\tTIME\tRESULT")
	failed := 0
	for _, r := range rs {
		if !r.Pass {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.1fs\t%s\n", r.Scenario, dash(r.ExpectedClass), dash(r.DetectedClass),
			yesNo(r.Restarted), resumeCell(r), boolCell(r.Quarantined), anomalyCell(r.Anomalies), r.LeftBehind, r.ExitCode, r.DurationS, passWord(r.Pass))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "FAIL %s: %s\n", r.Scenario, p)
		}
		if r.Dir != "" && !r.Pass {
			fmt.Fprintf(w, "     %s: run dir %s\n", r.Scenario, r.Dir)
		}
	}
	_, err := fmt.Fprintf(w, "%d scenarios, %d passed, %d failed\n", len(rs), len(rs)-failed, failed)
	return err
}

func passWord(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func boolCell(b *bool) string {
	if b == nil {
		return "-"
	}
	return yesNo(*b)
}

func resumeCell(r Result) string {
	if r.ResumeOK == nil {
		return "-"
	}
	if *r.ResumeOK {
		return r.Resumed + " ok"
	}
	return dash(r.Resumed) + " WRONG"
}

func anomalyCell(as []string) string {
	if len(as) == 0 {
		return "-"
	}
	if len(as) > 2 {
		return fmt.Sprintf("%s, %s +%d", as[0], as[1], len(as)-2)
	}
	return strings.Join(as, ", ")
}
