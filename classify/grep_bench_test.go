package classify

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// The side-by-side with grep -E (bench/classify.sh): the same healthy input, written to
// a file, and the same literals as an extended regular expression per line.

const grepInputSize = 64 << 20

// healthyFile writes about grepInputSize bytes of healthy training output.
func healthyFile(b *testing.B) (path string, size int64) {
	b.Helper()
	var buf bytes.Buffer
	lines := healthyLines()
	for buf.Len() < grepInputSize {
		for _, l := range lines {
			buf.Write(l)
			buf.WriteByte('\n')
		}
	}
	path = filepath.Join(b.TempDir(), "train.log")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path, int64(buf.Len())
}

// grepPatterns is one extended regular expression per rule, written as a person
// grepping a log for that kind of failure would: its messages as alternatives, case
// ignored (grep -i), any run of white space or digits where the message has one, so a
// reworded number or doubled space still matches. Not the automaton's exact literals:
// the side-by-side prices the matching a user would do, over as many patterns as the
// classifier has rules.
func grepPatterns() (patterns string, n int) {
	var sb strings.Builder
	for _, r := range rules() {
		alts := make([]string, 0, len(r.literals))
		for _, l := range r.literals {
			alts = append(alts, userRegex(l))
		}
		sb.WriteString("(" + strings.Join(alts, "|") + ")\n")
		n++
	}
	return sb.String(), n
}

var (
	digitRun = regexp.MustCompile(`[0-9]+`)
	spaceRun = regexp.MustCompile(`\\? +`)
)

func userRegex(lit string) string {
	q := regexp.QuoteMeta(lit)
	q = digitRun.ReplaceAllString(q, "[0-9]+")
	return spaceRun.ReplaceAllString(q, "[[:space:]]+")
}

// BenchmarkHealthyFile reads the file line by line into a classifier, as
// `trainwrap classify FILE` does.
func BenchmarkHealthyFile(b *testing.B) {
	path, size := healthyFile(b)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		c := New()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.ObserveLine(sc.Bytes())
		}
		f.Close()
		if v := c.FromLog(); v.Class != None {
			b.Fatalf("healthy input classified %s", v.Class)
		}
	}
}

// BenchmarkGrepE runs grep -E -i -c with one user-written pattern per rule over the
// same file.
func BenchmarkGrepE(b *testing.B) {
	grep := testkit.NeedTool(b, "grep", "grep")
	path, size := healthyFile(b)
	pats, n := grepPatterns()
	pat := filepath.Join(b.TempDir(), "patterns")
	if err := os.WriteFile(pat, []byte(pats), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	var matched string
	for range b.N {
		out, err := exec.Command(grep, "-E", "-i", "-c", "-f", pat, path).Output()
		// grep exits 1 when nothing matched.
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			b.Fatalf("grep: %v", err)
		}
		matched = strings.TrimSpace(string(out))
	}
	b.ReportMetric(float64(n), "patterns")
	if matched != "0" {
		// Loose patterns pay for their looseness in false alarms; say how many.
		b.Logf("grep -E -i matched %s healthy lines", matched)
	}
}
