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

// grepPatterns is every rule literal as an ERE, one per line (grep -E -f).
func grepPatterns() string {
	var sb strings.Builder
	for _, r := range rules {
		for _, l := range r.literals {
			sb.WriteString(regexp.QuoteMeta(l))
			sb.WriteByte('\n')
		}
	}
	return sb.String()
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

// BenchmarkGrepE runs grep -E -c with the same literals over the same file.
func BenchmarkGrepE(b *testing.B) {
	grep := testkit.NeedTool(b, "grep", "grep")
	path, size := healthyFile(b)
	pat := filepath.Join(b.TempDir(), "patterns")
	if err := os.WriteFile(pat, []byte(grepPatterns()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		out, err := exec.Command(grep, "-E", "-c", "-f", pat, path).Output()
		// grep exits 1 when nothing matched: that is the expected answer here.
		if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
			b.Fatalf("grep: %v", err)
		}
		if strings.TrimSpace(string(out)) != "0" {
			b.Fatalf("grep found %s matching lines in healthy input", out)
		}
	}
}
