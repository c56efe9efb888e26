package observe

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// totalStepsMetric is the series name under which a recogniser reports the run's
// total steps when the output carries it; the page's ETA needs it.
const totalStepsMetric = training.TotalSteps

// maxListedAnomalies bounds the page's list; runs.jsonl holds every one.
const maxListedAnomalies = 40

// anomalyColors gives each anomaly kind a colour of its own, distinct from the crash
// classes' where it can.
var anomalyColors = map[string]string{
	training.LossSpike:         "#e6550d",
	training.LossFlat:          "#b5a300",
	training.LossScaleCollapse: "#9467bd",
	training.ThroughputDrop:    "#0f8fa3",
	training.Straggler:         "#8c564b",
}

func anomalyColor(kind string) string {
	if c, ok := anomalyColors[kind]; ok {
		return c
	}
	return "#555555"
}

// anomalyRow is one anomaly in the page's list.
type anomalyRow struct {
	Kind    string
	Label   string
	Color   string
	When    string
	Attempt int
	Step    int64
	Detail  string
	Message string
}

// collectAnomalies merges the anomalies of the run records and of state.json (which
// repeats the newest of them), oldest first.
func collectAnomalies(st *rundir.State, recs []rundir.Record) []training.Anomaly {
	type key struct {
		t       int64
		kind    string
		attempt int
		step    int64
	}
	seen := map[key]bool{}
	var out []training.Anomaly
	add := func(as []training.Anomaly) {
		for _, a := range as {
			k := key{a.Time.UnixNano(), a.Kind, a.Attempt, a.Step}
			if !seen[k] {
				seen[k] = true
				out = append(out, a)
			}
		}
	}
	for _, r := range recs {
		add(r.Anomalies)
	}
	if st != nil {
		add(st.Anomalies)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func anomalyRows(as []training.Anomaly, loc *time.Location) ([]anomalyRow, int) {
	var rows []anomalyRow
	for i := len(as) - 1; i >= 0 && len(rows) < maxListedAnomalies; i-- {
		a := as[i]
		r := anomalyRow{Kind: a.Kind, Label: strings.ReplaceAll(orUnknown(a.Kind), "_", " "), Color: anomalyColor(a.Kind),
			When: clock(a.Time, loc), Attempt: a.Attempt, Step: a.Step, Message: a.Message}
		if a.Metric != "" {
			r.Detail = fmt.Sprintf("%s %s against %s", strings.ReplaceAll(a.Metric, "_", " "), shortNum(a.Value), shortNum(a.Baseline))
		}
		rows = append(rows, r)
	}
	return rows, len(as) - len(rows)
}

func anomalyMarks(as []training.Anomaly, loc *time.Location) []mark {
	ms := make([]mark, 0, len(as))
	for _, a := range as {
		title := fmt.Sprintf("%s at step %d (attempt %d, %s)", a.Kind, a.Step, a.Attempt, clock(a.Time, loc))
		if a.Message != "" {
			title += ": " + a.Message
		}
		ms = append(ms, mark{T: a.Time, Kind: a.Kind, Color: anomalyColor(a.Kind), Title: title})
	}
	return ms
}

// trainSeries splits the samples of one metric by attempt, in time order, dropping
// values that cannot be drawn (NaN, ±Inf: a diverged loss is the classifier's, and
// the crash marker's, to show).
func trainSeries(samples []training.Sample, name string, f func(float64) (float64, bool)) map[int][]fpoint {
	out := map[int][]fpoint{}
	for _, s := range samples {
		if s.Name != name || math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		v, ok := s.Value, true
		if f != nil {
			v, ok = f(v)
		}
		if ok {
			out[s.Attempt] = append(out[s.Attempt], fpoint{s.Time, v})
		}
	}
	for _, ps := range out {
		slices.SortStableFunc(ps, func(a, b fpoint) int { return a.T.Compare(b.T) })
	}
	return out
}

// downsample keeps, of the points that fall into one pixel column, the first, the
// lowest, the highest and the last, in time order: the curve drawn looks the same,
// spikes included, with a few points per column however long the series.
func downsample(ps []fpoint, col func(time.Time) int) []fpoint {
	if len(ps) <= 4*axisPlotW {
		return ps
	}
	out := make([]fpoint, 0, 4*axisPlotW)
	for i := 0; i < len(ps); {
		c := col(ps[i].T)
		j := i
		lo, hi := i, i
		for j < len(ps) && col(ps[j].T) == c {
			if ps[j].V < ps[lo].V {
				lo = j
			}
			if ps[j].V > ps[hi].V {
				hi = j
			}
			j++
		}
		keep := []int{i, lo, hi, j - 1}
		slices.Sort(keep)
		keep = slices.Compact(keep)
		for _, k := range keep {
			out = append(out, ps[k])
		}
		i = j
	}
	return out
}

// trainChart draws one training metric over the shared time axis: a line per attempt,
// the restarts and backoff gaps as on the timeline, and the anomalies as marks.
func trainChart(id, title string, ax timeAxis, spans []span, byAttempt map[int][]fpoint, color string, fromZero bool, marks []mark) template.HTML {
	const (
		width, height = axisWidth, 200
		left, right   = axisLeft, axisRight
		top, bottom   = 26, height - 24
	)
	var w svgWriter
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" class="train" id="%s" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">`, id, width, height, esc(title))
	w.f(`<text x="%d" y="16" class="title">%s</text>`, left, esc(title))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, ps := range byAttempt {
		for _, p := range ps {
			lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
		}
	}
	if math.IsInf(lo, 1) {
		w.f(`<text x="%d" y="%d" class="empty">none printed yet</text></svg>`, width/2, height/2)
		return template.HTML(w.b.String())
	}
	if fromZero {
		lo = math.Min(lo, 0)
	}
	step := niceCeil((hi - lo) / 4)
	if hi == lo {
		step = niceCeil(math.Max(math.Abs(hi), 1) / 4)
	}
	yLo := math.Floor(lo/step) * step
	yHi := math.Max(math.Ceil(hi/step)*step, yLo+step)
	y := func(v float64) float64 { return bottom - float64(bottom-top)*(v-yLo)/(yHi-yLo) }
	w.f(`<g class="axis">`)
	for v := yLo; v <= yHi+step/2; v += step {
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, left, width-right, y(v), y(v))
		w.f(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-6, y(v)+4, esc(shortNum(v)))
	}
	ax.ticks(&w, height-6)
	w.f(`</g>`)
	for i, s := range spans {
		if i == 0 {
			continue
		}
		prev := spans[i-1]
		if s.Start.After(prev.End) {
			w.f(`<rect class="backoff" x="%.1f" y="%d" width="%.1f" height="%d"/>`, ax.x(prev.End), top, max(ax.x(s.Start)-ax.x(prev.End), 0.5), bottom-top)
		}
		w.f(`<line class="restart" x1="%.1f" x2="%.1f" y1="%d" y2="%d"><title>%s</title></line>`, ax.x(s.Start), ax.x(s.Start), top, bottom, esc(fmt.Sprintf("restart: attempt %d", s.Attempt)))
	}
	attempts := make([]int, 0, len(byAttempt))
	for a := range byAttempt {
		attempts = append(attempts, a)
	}
	sort.Ints(attempts)
	for _, a := range attempts {
		ps := downsample(byAttempt[a], ax.col)
		var b strings.Builder
		for i, p := range ps {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", ax.x(p.T), y(p.V))
		}
		w.f(`<polyline class="series" stroke="%s" points="%s"><title>%s</title></polyline>`, color, b.String(), esc(fmt.Sprintf("%s, attempt %d", title, a)))
	}
	drawMarks(&w, ax, marks, top, bottom, true)
	w.f(`</svg>`)
	return template.HTML(w.b.String())
}

// latest is the newest finite value of the named metric, and its sample.
func latest(samples []training.Sample, name string) (training.Sample, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		s := samples[i]
		if s.Name == name && !math.IsNaN(s.Value) && !math.IsInf(s.Value, 0) {
			return s, true
		}
	}
	return training.Sample{}, false
}

// etaWindow is how far back the step rate for the ETA looks: long enough to smooth
// evaluation pauses, short enough to follow a slowdown.
const etaWindow = 15 * time.Minute

// stepRate is steps per second over the last etaWindow of attempt's steps, from the
// series' samples and the resource samples; false without two distinct steps.
func stepRate(series []training.Sample, res []Sample, attempt int) (float64, bool) {
	type pt struct {
		t    time.Time
		step int64
	}
	var pts []pt
	for _, s := range series {
		if s.Attempt == attempt && s.Step >= 0 {
			pts = append(pts, pt{s.Time, s.Step})
		}
	}
	for _, s := range res {
		if s.Attempt == attempt && s.Up && s.Step > 0 {
			pts = append(pts, pt{s.Time, s.Step})
		}
	}
	if len(pts) < 2 {
		return 0, false
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].t.Before(pts[j].t) })
	last := pts[len(pts)-1]
	first := last
	for i := len(pts) - 1; i >= 0 && last.t.Sub(pts[i].t) <= etaWindow; i-- {
		first = pts[i]
	}
	dt := last.t.Sub(first.t).Seconds()
	if dt <= 0 || last.step <= first.step {
		return 0, false
	}
	return float64(last.step-first.step) / dt, true
}

// eta is the ETA card's value and its detail line.
func eta(st *rundir.State, series []training.Sample, res []Sample, step int64, now time.Time, loc *time.Location) (string, string) {
	total, haveTotal := latest(series, totalStepsMetric)
	switch {
	case st != nil && st.Status == rundir.StatusSucceeded:
		return "done", "the job succeeded"
	case st == nil:
		return "not running", "no state.json"
	case !isLive(st.Status):
		return "not running", "the run's status is " + st.Status
	case !haveTotal || total.Value <= 0:
		return "unknown", "no total step count in the output (tqdm's n/total or Megatron's iteration N/ TOTAL give one)"
	}
	rate, ok := stepRate(series, res, st.Attempt)
	if !ok {
		return "unknown", fmt.Sprintf("no step rate yet; %d of %.0f steps", step, total.Value)
	}
	left := total.Value - float64(step)
	if left <= 0 {
		return "any time now", fmt.Sprintf("step %d of %.0f", step, total.Value)
	}
	d := time.Duration(left / rate * float64(time.Second))
	return humanDuration(d), fmt.Sprintf("%.0f steps left at %s steps/s, done about %s", left, shortNum(rate), clock(now.Add(d), loc))
}

// humanDuration is d for people: "45s", "12m 5s", "2h 13m", "3d 4h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm %ds", s/60, s%60)
	case s < 86400:
		if (s%3600)/60 == 0 {
			return fmt.Sprintf("%dh", s/3600)
		}
		return fmt.Sprintf("%dh %dm", s/3600, (s%3600)/60)
	}
	if (s%86400)/3600 == 0 {
		return fmt.Sprintf("%dd", s/86400)
	}
	return fmt.Sprintf("%dd %dh", s/86400, (s%86400)/3600)
}

// clock is t in loc with its zone, e.g. "2026-11-28 13:04:05 CET"; the zone is held
// to the time by a no-break space, so a narrow cell wraps after the date only.
func clock(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04:05\u00a0MST")
}
