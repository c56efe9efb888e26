package observe

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

// fixtureDir copies a run dir from testdata/observe into a temp dir, so tests can
// change it without touching the fixture.
func fixtureDir(t *testing.T, name string) string {
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

	tests := []struct {
		name      string
		dir       string
		live      bool
		want      []string
		wantNot   []string
		crashes   int
		restarts  int
		attempts  int
		ckpts     int
		charts    int
		wantClass []string
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
			name:    "runs.jsonl only",
			dir:     recordsOnly,
			want:    []string{"unknown (no state.json)", "No resource samples"},
			crashes: 3, restarts: 2, attempts: 3, ckpts: 2, charts: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderPage(&b, rundir.New(tc.dir), tc.live, now); err != nil {
				t.Fatal(err)
			}
			page := b.String()
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
			if len(all) != 1+tc.charts {
				t.Fatalf("%d svg elements, want the timeline and %d charts", len(all), tc.charts)
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
