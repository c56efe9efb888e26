package observe

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// fixtureDir copies a run dir from testdata/observe into a temp dir, so tests can
// change it without touching the fixture.
func fixtureDir(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "observe", name)
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// svgs returns every <svg>...</svg> element in page, in order.
func svgs(page string) []string {
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		if j < 0 {
			return append(out, page[i:])
		}
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j+len("</svg>"):]
	}
}

// wellFormed checks that s parses as XML from start to end.
func wellFormed(s string) error {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// elementCounts counts the SVG elements of each class attribute in s.
func elementCounts(t *testing.T, s string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return counts
		}
		if err != nil {
			t.Fatalf("svg: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					counts[se.Name.Local+"."+a.Value]++
				}
			}
		}
	}
}

func TestRenderPage(t *testing.T) {
	crashed := fixtureDir(t, "crashed")
	recs, torn, err := rundir.ReadRecords(filepath.Join(crashed, rundir.RunsFile))
	if err != nil || torn.Warning() != "" {
		t.Fatal(err, torn.Warning())
	}
	// A live run: the same history, with a fourth attempt running now.
	live := fixtureDir(t, "crashed")
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	st, err := rundir.ReadState(filepath.Join(live, rundir.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	st.Status, st.Attempt, st.AttemptStarted, st.LastProgress, st.Step = rundir.StatusRunning, 4, now.Add(-10*time.Minute), now.Add(-95*time.Second), 2600
	if err := rundir.WriteState(filepath.Join(live, rundir.StateFile), st); err != nil {
		t.Fatal(err)
	}
	// Only runs.jsonl: a run dir whose state.json was lost still renders.
	recordsOnly := t.TempDir()
	for _, r := range recs {
		if err := rundir.AppendRecord(filepath.Join(recordsOnly, rundir.RunsFile), r); err != nil {
			t.Fatal(err)
		}
	}

	// The training fixture: three attempts with loss, throughput and total_steps in
	// metrics.jsonl and three anomalies in runs.jsonl and state.json; the third attempt
	// runs now. Shown in CET, the zone of now.
	train := fixtureDir(t, "training")
	cet := now.In(time.FixedZone("CET", 3600))
	// The same without a total step count: the ETA cannot be known.
	noTotal := fixtureDir(t, "training")
	dropLines(t, filepath.Join(noTotal, rundir.SeriesFile), `"name":"total_steps"`)
	// A series file at its size bound (training.MaxSeriesBytes): the page draws a few
	// points per pixel column of it.
	big := fixtureDir(t, "training")
	writeBigSeries(t, filepath.Join(big, rundir.SeriesFile), now.Add(-3*time.Hour), 3*time.Hour, 40000)

	tests := []struct {
		name      string
		dir       string
		now       time.Time
		live      bool
		want      []string
		wantNot   []string
		crashes   int
		restarts  int
		attempts  int
		ckpts     int
		train     int // loss and throughput charts
		anomalies int // anomaly marks on each of the timeline and the training charts
		charts    int
		wantClass []string
		maxBytes  int
	}{
		{
			name: "finished run, post-mortem",
			dir:  crashed,
			want: []string{"gave_up", "nan_divergence", "ValueError: loss is NaN &lt;script&gt;", "Lower the learning rate",
				`<div class="k">resumed from</div><div class="v small">out/checkpoint-2000</div>`, "a still report", "<title>trainwrap: gave_up at step 2480</title>"},
			wantNot: []string{`http-equiv="refresh"`, "<script", `src="http`, `href="http`, "url(http", "@import"},
			crashes: 3, restarts: 2, attempts: 3, ckpts: 2, charts: 5,
			wantClass: []string{"cuda_oom", "hang", "nan_divergence"},
		},
		{
			name:    "live run refreshes and shows the running attempt",
			dir:     live,
			live:    true,
			want:    []string{`http-equiv="refresh" content="10"`, "running", "1m 35s", "attempt 4: running, step 2600"},
			crashes: 3, restarts: 3, attempts: 4, ckpts: 3, charts: 5,
			wantClass: []string{"cuda_oom", "hang", "nan_divergence"},
		},
		{
			name: "training metrics, anomalies and ETA",
			dir:  train,
			now:  cet,
			live: true,
			want: []string{`id="loss-chart"`, `id="throughput-chart"`, "throughput (samples/s)", "Anomalies: 3", "loss spike", "throughput drop", "loss scale collapse",
				"loss 5.02 at step 1810 is 14.2 MADs above the median 1.98 of the last 200 steps", "fp16 loss scale fell from 65536 to 2048",
				`<div class="v" id="eta">1h 43m</div>`, "2060 steps left at 0.33 steps/s, done about 2026-11-28 14:43:00\u00a0CET", "of 5000",
				`<div class="v" id="loss">1.89</div>`, "2124.18 samples/s", "2026-11-28 11:02:30\u00a0CET", "<th>start (CET)</th>", "1h 8m", "12s", "stall timeout 10m",
				"generated 2026-11-28 13:00:00\u00a0CET", "every attempt (CET)"},
			wantNot: []string{"UTC", "<script", `src="http`},
			crashes: 2, restarts: 2, attempts: 3, ckpts: 2, train: 2, anomalies: 3, charts: 5,
			wantClass: []string{"cuda_oom", "hang"},
		},
		{
			name:    "no total step count: the ETA is unknown",
			dir:     noTotal,
			now:     cet,
			live:    true,
			want:    []string{`<div class="v" id="eta">unknown</div>`, "no total step count in the output"},
			wantNot: []string{"of 5000"},
			crashes: 2, restarts: 2, attempts: 3, ckpts: 2, train: 2, anomalies: 3, charts: 5,
		},
		{
			name:    "a large metrics.jsonl is thinned for drawing",
			dir:     big,
			now:     cet,
			live:    true,
			want:    []string{`id="loss-chart"`},
			crashes: 2, restarts: 2, attempts: 3, ckpts: 2, train: 2, anomalies: 3, charts: 5,
			// The series file is 8 MB; the page stays near the size of the fixture's.
			maxBytes: 400 << 10,
		},
		{
			name:    "runs.jsonl only",
			dir:     recordsOnly,
			want:    []string{"unknown (no state.json)", "No resource samples", "No training metrics recorded", `<div class="v" id="eta">not running</div>`},
			crashes: 3, restarts: 2, attempts: 3, ckpts: 2, charts: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			at := now
			if !tc.now.IsZero() {
				at = tc.now
			}
			if err := renderPage(&b, rundir.New(tc.dir), tc.live, at); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			if tc.maxBytes > 0 && b.Len() > tc.maxBytes {
				t.Errorf("page is %d bytes, want at most %d", b.Len(), tc.maxBytes)
			}
			if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
				t.Errorf("not a whole HTML document")
			}
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(page, w) {
					t.Errorf("page has %q", w)
				}
			}
			all := svgs(page)
			if len(all) != 1+tc.train+tc.charts {
				t.Fatalf("%d svg elements, want the timeline, %d training charts and %d resource charts", len(all), tc.train, tc.charts)
			}
			for i, s := range all[:1+tc.train] {
				c := elementCounts(t, s)
				if c["g.anomaly"] != tc.anomalies {
					t.Errorf("svg %d: %d anomaly marks, want %d", i, c["g.anomaly"], tc.anomalies)
				}
				if i == 0 {
					continue
				}
				if c["line.restart"] != tc.restarts {
					t.Errorf("training chart %d: %d restart lines, want %d", i, c["line.restart"], tc.restarts)
				}
				for _, n := range polylineLengths(t, s) {
					if n > 4*axisPlotW {
						t.Errorf("training chart %d: a line of %d points, want at most %d", i, n, 4*axisPlotW)
					}
				}
			}
			for i, s := range all {
				if err := wellFormed(s); err != nil {
					t.Errorf("svg %d is not well-formed XML: %v", i, err)
				}
			}
			c := elementCounts(t, all[0])
			if c["circle.crash"] != tc.crashes || c["line.restart"] != tc.restarts || c["rect.attempt"] != tc.attempts || c["path.checkpoint"] != tc.ckpts {
				t.Errorf("timeline: %d crashes, %d restarts, %d attempt bars, %d checkpoints; want %d, %d, %d, %d",
					c["circle.crash"], c["line.restart"], c["rect.attempt"], c["path.checkpoint"], tc.crashes, tc.restarts, tc.attempts, tc.ckpts)
			}
			for _, class := range tc.wantClass {
				marker := `data-class="` + class + `" `
				if !strings.Contains(all[0], marker) || !strings.Contains(all[0], `fill="`+ClassColor(class)+`"`) {
					t.Errorf("no %s crash marker in its colour %s", class, ClassColor(class))
				}
			}
		})
	}
}

// dropLines removes from the file at path every line that contains sub.
func dropLines(t *testing.T, path, sub string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(keep, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeBigSeries writes n loss and n throughput samples spread over d from t0, split
// over the fixture's three attempts' times, with the total step count.
func writeBigSeries(t testing.TB, path string, t0 time.Time, d time.Duration, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(int64(d) * int64(i) / int64(n)))
		attempt := 1 + 3*i/n
		for _, s := range []training.Sample{
			{Time: at, Attempt: attempt, Step: int64(i), Name: training.Loss, Value: 2 + float64(i%97)/100},
			{Time: at, Attempt: attempt, Step: int64(i), Name: training.SamplesPerSecond, Value: 2000 + float64(i%13)},
		} {
			if err := enc.Encode(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := enc.Encode(training.Sample{Time: t0, Attempt: 1, Name: totalStepsMetric, Value: float64(n)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// polylineLengths is the number of points of each polyline in the SVG s.
func polylineLengths(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			for _, a := range se.Attr {
				if a.Name.Local == "points" {
					out = append(out, len(strings.Fields(a.Value)))
				}
			}
		}
	}
}

func TestDownsample(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	ax := timeAxis{t0: t0, dur: time.Hour, loc: time.UTC}
	series := func(n int, spikeAt int) []fpoint {
		ps := make([]fpoint, n)
		for i := range ps {
			ps[i] = fpoint{t0.Add(time.Duration(int64(time.Hour) * int64(i) / int64(n))), 2}
		}
		if spikeAt >= 0 {
			ps[spikeAt].V = 9
		}
		return ps
	}
	tests := []struct {
		name    string
		in      []fpoint
		wantLen int // exact when the input is short enough to keep, else the bound
		kept    bool
	}{
		{"short series kept as is", series(100, 50), 100, true},
		{"long series thinned, spike kept", series(100000, 31337), 4 * axisPlotW, false},
		{"long flat series", series(50000, -1), 4 * axisPlotW, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := downsample(tc.in, ax.col)
			if tc.kept && len(out) != tc.wantLen || !tc.kept && len(out) > tc.wantLen {
				t.Fatalf("%d points from %d, want %d (kept %v)", len(out), len(tc.in), tc.wantLen, tc.kept)
			}
			hi := 0.0
			for i, p := range out {
				hi = max(hi, p.V)
				if i > 0 && p.T.Before(out[i-1].T) {
					t.Fatalf("point %d is before point %d", i, i-1)
				}
			}
			inHi := 0.0
			for _, p := range tc.in {
				inHi = max(inHi, p.V)
			}
			if hi != inHi || out[0] != tc.in[0] || out[len(out)-1] != tc.in[len(tc.in)-1] {
				t.Errorf("max %v (want %v), ends %v..%v (want %v..%v)", hi, inHi, out[0], out[len(out)-1], tc.in[0], tc.in[len(tc.in)-1])
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{1499 * time.Millisecond, "1s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{95 * time.Second, "1m 35s"},
		{time.Hour, "1h"},
		{2*time.Hour + 13*time.Minute + 59*time.Second, "2h 13m"},
		{24 * time.Hour, "1d"},
		{76*time.Hour + 30*time.Minute, "3d 4h"},
	}
	for _, tc := range tests {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRenderPageErrors(t *testing.T) {
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, rundir.StateFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{"empty run dir", t.TempDir(), "no run recorded"},
		{"missing run dir", filepath.Join(t.TempDir(), "nope"), "no run recorded"},
		{"corrupt state.json", corrupt, "corrupt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := RenderPage(io.Discard, tc.dir, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}
