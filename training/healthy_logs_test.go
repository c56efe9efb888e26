package training

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthyLogsRaiseNothing feeds real healthy runs to the recognisers and the
// detector: the consecutive lines of testdata/healthy (see its SOURCES) and the
// classify corpus's healthy logs. None may raise an anomaly, and each of the
// testdata/healthy runs must yield samples (else the test checks nothing). These
// excerpts are short (under the 20 losses a spike needs); the long healthy runs are
// the synthetic ones of TestDetectorHealthyRuns and the chaos trainer's own output
// (chaos.TestTrainAnomalyModes/healthy). What they check is the rest: that a Megatron
// bf16 run's constant loss scale 1.0, and an fp16 scaler halving eight times from
// 65536 at start (DeepSpeed issue 5779), are not collapses.
func TestHealthyLogsRaiseNothing(t *testing.T) {
	own, err := filepath.Glob(filepath.Join("testdata", "healthy", "*.log"))
	if err != nil || len(own) == 0 {
		t.Fatalf("no healthy fixtures: %v", err)
	}
	corpus, _ := filepath.Glob(filepath.Join("..", "testdata", "classify", "healthy", "*.log"))
	for _, f := range append(own, corpus...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRecognizer(nil)
		d := NewDetector(DetectorOptions{})
		t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		var samples []Sample
		for i, line := range strings.Split(string(data), "\n") {
			from := len(samples)
			samples = r.Recognize(samples, []byte(line), -1, 1, t0.Add(time.Duration(i)*time.Second))
			for _, s := range samples[from:] {
				if a := d.Observe(s); len(a) > 0 {
					t.Errorf("%s: line %d: %+v", filepath.Base(f), i+1, a)
				}
			}
		}
		if strings.HasPrefix(f, "testdata") && len(samples) == 0 {
			t.Errorf("%s: no samples: the recognisers do not read it", f)
		}
	}
}
