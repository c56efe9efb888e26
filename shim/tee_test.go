package shim

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/classify"
)

// splitReader hands out its data in reads of the sizes it is given, in turn: the reads
// a pipe or a pty would give, cutting lines anywhere.
type splitReader struct {
	data  []byte
	sizes []int
	n     int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	k := min(r.sizes[r.n%len(r.sizes)], len(p), len(r.data))
	r.n++
	copy(p, r.data[:k])
	r.data = r.data[k:]
	return k, nil
}

// teeOutcome is what the observers of one tee concluded.
type teeOutcome struct {
	verdict classify.Verdict
	lines   int64
	step    int64
	seen    [][]byte
	log     []byte
	quiet   int64 // lines the classifier took through ObserveQuiet
}

// runTee pumps data through a tee with a classifier, a plain recording observer and
// the built-in step recogniser, in reads of the given sizes. perLine hides the
// classifier's QuietUpTo, so that it is handed every line in full.
func runTee(data []byte, sizes []int, perLine bool) teeOutcome {
	cls := classify.New()
	var out teeOutcome
	var obs LineObserver = countingQuiet{cls, &out.quiet}
	if perLine {
		obs = LineObserverFunc(cls.ObserveLine)
	}
	rec := LineObserverFunc(func(l []byte) { out.seen = append(out.seen, append([]byte(nil), l...)) })
	s := &supervisor{}
	var log bytes.Buffer
	t := newTee(&log, 1, []LineObserver{obs, rec})
	t.segments = builtinStepObserver{s}
	t.pump(&splitReader{data: data, sizes: sizes}, io.Discard)
	out.verdict = cls.Verdict(classify.Exit{Code: 1})
	out.lines = cls.Lines()
	out.step = s.step.Load()
	out.log = log.Bytes()
	return out
}

// The tee hands observers whole reads at once where they can vouch for them (the
// classifier's QuietUpTo, a read without a step): every real crash log of the
// classifier's corpus, inside healthy output and cut into reads of every size, gets the
// same verdict, line count, last lines and step as when each line is handed over in
// full, and the log and the other observers see the same lines.
func TestTeeQuietReadsGiveTheSameVerdictAsLineByLine(t *testing.T) {
	var logs []string
	err := filepath.WalkDir(filepath.Join("..", "testdata", "classify"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			logs = append(logs, p)
		}
		return err
	})
	if err != nil || len(logs) < 100 {
		t.Fatalf("corpus: %d logs, %v", len(logs), err)
	}
	var healthy bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&healthy, "{'loss': %.4f, 'grad_norm': 1.2345, 'learning_rate': 4.9e-05, 'epoch': %.2f}\n", 2/float64(i+1), float64(i)/100)
		if i%40 == 0 {
			fmt.Fprintf(&healthy, " %d%%|####      | %d/1000 [00:12<01:10, 14.2it/s]\r %d%%|#####     | %d/1000 [00:13<01:09, 14.2it/s]\n", i/10, i, i/10, i+1)
		}
	}
	rng := rand.New(rand.NewPCG(12, 1))
	splits := []struct {
		name  string
		sizes func() []int
	}{
		{"whole reads", func() []int { return []int{readBufSize} }},
		{"pipe-sized reads", func() []int { return []int{65536} }},
		{"odd small reads", func() []int { return []int{1, 7, 64, 4093, 3, 800} }},
		{"random reads", func() []int {
			s := make([]int, 50)
			for i := range s {
				s[i] = 1 + rng.IntN(9000)
			}
			return s
		}},
	}
	for si, sp := range splits {
		t.Run(sp.name, func(t *testing.T) {
			var quiet int64
			for i, p := range logs {
				// Whole reads take every log; the others a share each, which keeps the
				// test quick.
				if si > 0 && i%(len(splits)-1) != si-1 {
					continue
				}
				crash, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				data := append(append(append([]byte(nil), healthy.Bytes()...), crash...), healthy.Bytes()[:2000]...)
				sizes := sp.sizes()
				want, got := runTee(data, sizes, true), runTee(data, sizes, false)
				if !reflect.DeepEqual(got.verdict, want.verdict) || got.lines != want.lines {
					t.Errorf("%s: verdict %+v after %d lines, line by line %+v after %d", p, got.verdict, got.lines, want.verdict, want.lines)
				}
				if got.step != want.step {
					t.Errorf("%s: step %d, line by line %d", p, got.step, want.step)
				}
				if !reflect.DeepEqual(got.seen, want.seen) || !bytes.Equal(stripLog(t, string(got.log)), withFinalNewline(data)) {
					t.Errorf("%s: the observer or the log saw other lines", p)
				}
				if want.quiet != 0 {
					t.Fatalf("%s: the line-by-line run took %d lines on the classifier's word", p, want.quiet)
				}
				quiet += got.quiet
			}
			// Else the comparison above proved nothing about the quiet path.
			if quiet == 0 {
				t.Errorf("no line was taken on the classifier's word")
			}
		})
	}
}

// countingQuiet counts the lines the tee hands to ObserveQuiet.
type countingQuiet struct {
	*classify.Classifier
	n *int64
}

func (c countingQuiet) ObserveQuiet(line []byte) {
	*c.n++
	c.Classifier.ObserveQuiet(line)
}
