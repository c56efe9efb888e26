package observe

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// FuzzRenderPage feeds arbitrary runs.jsonl, samples.jsonl and metrics.jsonl to the page: it must
// never panic, and whatever it renders must hold well-formed SVG, whatever times, steps
// and strings the files carry.
func FuzzRenderPage(f *testing.F) {
	fixture := filepath.Join("..", "testdata", "observe", "crashed")
	runs, err := os.ReadFile(filepath.Join(fixture, rundir.RunsFile))
	if err != nil {
		f.Fatal(err)
	}
	samples, err := os.ReadFile(filepath.Join(fixture, rundir.SamplesFile))
	if err != nil {
		f.Fatal(err)
	}
	series, err := os.ReadFile(filepath.Join("..", "testdata", "observe", "training", rundir.SeriesFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(runs, samples[:4096], series[:4096])
	f.Add([]byte(`{"attempt":1,"start":"2026-01-01T00:00:00Z","end":"2025-01-01T00:00:00Z","step_start":-5,"step_end":-9,"class":"x\"<&>"}`+"\n"), []byte(`{"t":"0001-01-01T00:00:00Z","step":-1,"up":true,"attempt":1,"gpus":[{"index":-3}]}`+"\n"), []byte(`{"t":"2026-01-01T00:00:00Z","attempt":-1,"step":-5,"name":"loss","v":1e308}`+"\n"+`{"t":"0001-01-01T00:00:00Z","attempt":1,"name":"total_steps","v":-1}`+"\n"))
	f.Add([]byte(`{"attempt":2,"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z","step_end":9223372036854775807,"decision":"give_up","class":"nccl","anomalies":[{"kind":"<x>","time":"2026-01-01T00:00:00Z"}]}`+"\n"), []byte{}, []byte(`{"t":"2026-01-01T00:00:00Z","attempt":2,"step":1,"name":"samples_per_second","v":0}`+"\n"))
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, runs, samples, series []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, rundir.RunsFile), runs, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rundir.SamplesFile), samples, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rundir.SeriesFile), series, 0o644); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := renderPage(&b, rundir.New(dir), true, now); err != nil {
			return // a runs.jsonl that does not parse is reported, not drawn
		}
		for i, s := range svgs(b.String()) {
			if err := wellFormed(s); err != nil {
				t.Fatalf("svg %d: %v\n%s", i, err, s)
			}
		}
	})
}
