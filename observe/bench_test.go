package observe

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// BenchmarkPublish measures what the supervisor pays per event: the no-op Observer it
// always holds, and one with the server and the textfile on (progress events, the most
// frequent kind, coalesced by the textfile writer).
func BenchmarkPublish(b *testing.B) {
	cases := []struct {
		name string
		opt  func(dir string) Options
	}{
		{"empty", func(string) Options { return Options{} }},
		{"metrics+textfile", func(dir string) Options {
			return Options{MetricsAddr: "127.0.0.1:0", MetricsTextfile: filepath.Join(dir, "t.prom")}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			o, err := New(context.Background(), c.opt(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				o.Publish(Event{Kind: Progress, Time: now, Attempt: 1, Step: int64(i), LastProgress: now})
			}
		})
	}
}

// BenchmarkRenderPage renders the page of the fixture run (3 attempts, 200 samples of 2
// GPUs): the cost of one refresh of the live page.
func BenchmarkRenderPage(b *testing.B) {
	dir := rundir.New(filepath.Join("..", "testdata", "observe", "crashed"))
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if err := renderPage(io.Discard, dir, true, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderPageTraining renders the training fixture's page with the fixture's
// metrics.jsonl (1,300 samples) and with one at its size bound (80,000 samples, 8 MB):
// the cost of one refresh of a week-long run's live page.
func BenchmarkRenderPageTraining(b *testing.B) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	big := fixtureDir(b, "training")
	writeBigSeries(b, filepath.Join(big, rundir.SeriesFile), now.Add(-3*time.Hour), 3*time.Hour, 40000)
	for _, c := range []struct{ name, dir string }{
		{"fixture", filepath.Join("..", "testdata", "observe", "training")},
		{"8MB-series", big},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := renderPage(io.Discard, rundir.New(c.dir), true, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendSample is one sampler tick's write, with the file near its bound so
// thinning runs now and then.
func BenchmarkAppendSample(b *testing.B) {
	path := filepath.Join(b.TempDir(), rundir.SamplesFile)
	s := Sample{Time: time.Now(), Attempt: 1, Step: 1, MemTotal: 1 << 40, MemAvailable: 1 << 39,
		Disks: []Disk{{Path: "/data", Free: 1 << 40, Total: 1 << 41}},
		GPUs:  []GPU{{Index: 0, UUID: "GPU-0", TempC: 60, MemUsed: 1 << 36, MemTotal: 1 << 37, UtilPct: 97}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := appendSample(path, s, 256<<10); err != nil {
			b.Fatal(err)
		}
	}
}
