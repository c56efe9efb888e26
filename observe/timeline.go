package observe

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// classColors gives each crash class a fixed colour, so the same cause looks the same
// on every page; related causes share a hue family.
var classColors = map[string]string{
	"cuda_oom":       "#d62728",
	"host_oom":       "#ff7f0e",
	"nccl":           "#9467bd",
	"cuda_error":     "#8c564b",
	"segfault":       "#e377c2",
	"hang":           "#bcbd22",
	"timeout":        "#17becf",
	"dataloader":     "#7f7f7f",
	"disk_full":      "#393b79",
	"nan_divergence": "#637939",
	"import_error":   "#843c39",
	"file_not_found": "#7b4173",
	"permission":     "#3182bd",
	"config_error":   "#e6550d",
	"unknown":        "#555555",
}

const (
	colorOK      = "#2ca02c"
	colorRunning = "#1f77b4"
	colorStopped = "#999999"
)

// ClassColor is the colour of a crash class on the page; unknown classes are grey.
func ClassColor(class string) string {
	if c, ok := classColors[class]; ok {
		return c
	}
	return classColors["unknown"]
}

// span is one attempt on the timeline.
type span struct {
	Attempt  int
	Start    time.Time
	End      time.Time
	Points   []point // step over time, in time order
	Class    string  // crash class; "" when it did not crash
	Outcome  string  // title text
	Color    string
	Crashed  bool
	Running  bool
	Resumed  string // checkpoint resumed from
	ResumeAt int64
}

type point struct {
	T    time.Time
	Step int64
}

// buildSpans lays out every attempt from the run records, the live attempt from
// state.json, and the step curve from the resource samples and the training series.
func buildSpans(recs []rundir.Record, st *rundir.State, samples []Sample, series []training.Sample, now time.Time) []span {
	byAttempt := map[int][]point{}
	for _, s := range samples {
		// Step 0 is "no step seen yet in this attempt": the curve starts at the
		// attempt's own start step instead.
		if s.Attempt > 0 && s.Up && s.Step > 0 {
			byAttempt[s.Attempt] = append(byAttempt[s.Attempt], point{s.Time, s.Step})
		}
	}
	// One point per step of the training series (its samples come several to a line),
	// thinned like the charts: the curve needs no more than a few per pixel column.
	lastStep := map[int]int64{}
	for _, s := range series {
		if s.Attempt > 0 && s.Step > 0 && s.Step != lastStep[s.Attempt] {
			lastStep[s.Attempt] = s.Step
			byAttempt[s.Attempt] = append(byAttempt[s.Attempt], point{s.Time, s.Step})
		}
	}
	for a, ps := range byAttempt {
		slices.SortStableFunc(ps, func(p, q point) int { return p.T.Compare(q.T) })
		if len(ps) > 2*axisPlotW {
			thin := make([]point, 0, 2*axisPlotW)
			stride := (len(ps) + 2*axisPlotW - 1) / (2 * axisPlotW)
			for i := 0; i < len(ps); i += stride {
				thin = append(thin, ps[i])
			}
			byAttempt[a] = append(thin, ps[len(ps)-1])
		}
	}
	var out []span
	recorded := map[int]bool{}
	for _, r := range recs {
		recorded[r.Attempt] = true
		sp := span{Attempt: r.Attempt, Start: r.Start, End: r.End, Class: r.Class, Resumed: r.ResumedFrom, ResumeAt: r.StepStart}
		sp.Points = append(sp.Points, point{r.Start, r.StepStart})
		for _, p := range byAttempt[r.Attempt] {
			if p.T.After(r.Start) && p.T.Before(r.End) {
				sp.Points = append(sp.Points, p)
			}
		}
		sp.Points = append(sp.Points, point{r.End, r.StepEnd})
		crashed := r.Decision != rundir.DecisionDone && r.Decision != rundir.DecisionStop && r.Class != "" && r.Class != "none"
		switch {
		case crashed:
			sp.Crashed, sp.Color = true, ClassColor(r.Class)
			sp.Outcome = fmt.Sprintf("attempt %d: %s, %s; %s", r.Attempt, r.Class, recordExit(r), r.Decision)
		case r.Decision == rundir.DecisionStop:
			sp.Color = colorStopped
			sp.Outcome = fmt.Sprintf("attempt %d: stopped (%s)", r.Attempt, recordExit(r))
		default:
			sp.Color = colorOK
			sp.Outcome = fmt.Sprintf("attempt %d: %s", r.Attempt, recordExit(r))
		}
		out = append(out, sp)
	}
	if st != nil && st.Attempt > 0 && !recorded[st.Attempt] && isLive(st.Status) && !st.AttemptStarted.IsZero() {
		sp := span{Attempt: st.Attempt, Start: st.AttemptStarted, End: now, Running: true, Color: colorRunning, Resumed: st.ResumeFrom}
		pts := byAttempt[st.Attempt]
		first := st.Step
		if len(pts) > 0 {
			first = pts[0].Step
		}
		sp.ResumeAt = first
		sp.Points = append(sp.Points, point{st.AttemptStarted, first})
		for _, p := range pts {
			if p.T.After(st.AttemptStarted) && p.T.Before(now) {
				sp.Points = append(sp.Points, p)
			}
		}
		sp.Points = append(sp.Points, point{now, st.Step})
		sp.Outcome = fmt.Sprintf("attempt %d: running, step %d", st.Attempt, st.Step)
		out = append(out, sp)
	}
	return out
}

func recordExit(r rundir.Record) string {
	switch {
	case r.Signal != "":
		return "killed by " + r.Signal
	case r.ExitCode != nil:
		return fmt.Sprintf("exit %d", *r.ExitCode)
	}
	return "exit unknown"
}

func isLive(status string) bool {
	switch status {
	case rundir.StatusStarting, rundir.StatusRunning, rundir.StatusBackoff, rundir.StatusStopping:
		return true
	}
	return false
}

// svgWriter accumulates SVG markup; every text it writes is escaped.
type svgWriter struct{ b strings.Builder }

func (w *svgWriter) f(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// The timeline and the training charts share their width and horizontal margins, so
// that one time is at one x in all of them, drawn one above the other.
const (
	axisWidth = 960
	axisLeft  = 70
	axisRight = 20
	axisPlotW = axisWidth - axisLeft - axisRight
)

// timeAxis maps times to x on the shared axis, and labels them in loc.
type timeAxis struct {
	t0  time.Time
	dur time.Duration
	loc *time.Location
}

// newTimeAxis spans every attempt and every time in extra.
func newTimeAxis(spans []span, extra []time.Time, loc *time.Location) timeAxis {
	var t0, t1 time.Time
	add := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if t0.IsZero() || t.Before(t0) {
			t0 = t
		}
		if t1.IsZero() || t.After(t1) {
			t1 = t
		}
	}
	for _, s := range spans {
		add(s.Start)
		add(s.End)
	}
	for _, t := range extra {
		add(t)
	}
	dur := t1.Sub(t0)
	if dur <= 0 {
		dur = time.Second
	}
	return timeAxis{t0: t0, dur: dur, loc: loc}
}

func (a timeAxis) x(t time.Time) float64 {
	return axisLeft + float64(axisPlotW)*float64(t.Sub(a.t0))/float64(a.dur)
}

// col is the pixel column of t, for downsampling.
func (a timeAxis) col(t time.Time) int { return int(math.Floor(a.x(t))) }

// ticks writes the time labels under a plot, on the text line at y.
func (a timeAxis) ticks(w *svgWriter, y int) {
	for i := 0; i <= 5; i++ {
		t := a.t0.Add(time.Duration(float64(a.dur) * float64(i) / 5))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 5:
			anchor = "end"
		}
		w.f(`<text x="%.1f" y="%d" text-anchor="%s">%s</text>`, a.x(t), y, anchor, esc(timeLabel(t.In(a.loc), a.dur)))
	}
}

// mark is an anomaly drawn on the time axis.
type mark struct {
	T     time.Time
	Kind  string
	Color string
	Title string
}

// drawMarks draws each mark as a triangle pointing down at the plot's top edge and,
// with full, a line down to its bottom.
func drawMarks(w *svgWriter, ax timeAxis, marks []mark, top, bottom int, full bool) {
	for _, m := range marks {
		x := ax.x(m.T)
		w.f(`<g class="anomaly" data-kind="%s"><title>%s</title>`, esc(m.Kind), esc(m.Title))
		if full {
			w.f(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="%s" class="anomaly-line"/>`, x, x, top, bottom, m.Color)
		}
		w.f(`<path d="M%.1f %d l-6 -9 h12 z" fill="%s"/></g>`, x, top, m.Color)
	}
}

// timelineSVG draws step over time for every attempt, crash markers in the colour of
// their class, restarts, the checkpoints attempts resumed from and the anomalies; under
// it a lane of attempt bars, so runs without a step (no --progress-regex) still show
// every restart.
func timelineSVG(spans []span, ax timeAxis, marks []mark) template.HTML {
	const (
		width, height    = axisWidth, 340
		left, right, top = axisLeft, axisRight, 20
		laneH, axisGap   = 22, 28
		plotBottom       = height - axisGap - laneH - 16
		laneTop          = plotBottom + 24
		plotW            = width - left - right
		plotH            = plotBottom - top
	)
	var w svgWriter
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="timeline of all attempts">`, width, height)
	if len(spans) == 0 {
		w.f(`<text x="%d" y="%d" class="empty">no attempt recorded yet</text></svg>`, width/2, height/2)
		return template.HTML(w.b.String())
	}
	var maxStep int64
	for _, s := range spans {
		for _, p := range s.Points {
			maxStep = max(maxStep, p.Step)
		}
	}
	x := ax.x
	yMax := niceCeil(float64(maxStep))
	y := func(step int64) float64 { return plotBottom - float64(plotH)*float64(step)/yMax }

	// Axes and grid.
	w.f(`<g class="axis">`)
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		yy := plotBottom - float64(plotH)*float64(i)/4
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, left, width-right, yy, yy)
		w.f(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-6, yy+4, esc(shortNum(v)))
	}
	ax.ticks(&w, height-6)
	w.f(`<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">step</text>`, (top+plotBottom)/2, (top+plotBottom)/2)
	w.f(`</g>`)

	// Restarts: a dashed line where each later attempt began, and the backoff gap
	// before it shaded.
	for i, s := range spans {
		if i == 0 {
			continue
		}
		prev := spans[i-1]
		if s.Start.After(prev.End) {
			w.f(`<rect class="backoff" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`,
				x(prev.End), top, max(x(s.Start)-x(prev.End), 0.5), plotBottom-top, esc(fmt.Sprintf("backoff %s before attempt %d", s.Start.Sub(prev.End).Round(time.Second), s.Attempt)))
		}
		w.f(`<line class="restart" x1="%.1f" x2="%.1f" y1="%d" y2="%d"><title>%s</title></line>`, x(s.Start), x(s.Start), top, plotBottom, esc(fmt.Sprintf("restart: attempt %d", s.Attempt)))
	}

	// Step curves.
	for _, s := range spans {
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.Step)))
		}
		w.f(`<polyline class="steps" stroke="%s" points="%s"><title>%s</title></polyline>`, s.Color, strings.Join(pts, " "), esc(s.Outcome))
	}

	// Crash markers, then the checkpoints attempts resumed from on top: a resume
	// point often sits right under the crash before it.
	for _, s := range spans {
		if !s.Crashed {
			continue
		}
		last := s.Points[len(s.Points)-1]
		w.f(`<circle class="crash" data-class="%s" cx="%.1f" cy="%.1f" r="6" fill="%s"><title>%s</title></circle>`, esc(s.Class), x(last.T), y(last.Step), s.Color, esc(s.Outcome))
	}

	for _, s := range spans {
		if s.Resumed == "" {
			continue
		}
		cx, cy := x(s.Start), y(s.ResumeAt)
		w.f(`<path class="checkpoint" d="M%.1f %.1f l6 6 l-6 6 l-6 -6 z"><title>%s</title></path>`, cx, cy-6, esc(fmt.Sprintf("attempt %d resumed from %s (step %d)", s.Attempt, s.Resumed, s.ResumeAt)))
	}
	drawMarks(&w, ax, marks, top, plotBottom, false)
	// The lane of attempt bars.
	for _, s := range spans {
		x0, x1 := x(s.Start), x(s.End)
		w.f(`<rect class="attempt" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>`, x0, laneTop, max(x1-x0, 1.5), laneH, s.Color, esc(s.Outcome))
		if x1-x0 > 18 {
			w.f(`<text class="lane" x="%.1f" y="%d" text-anchor="middle">%d</text>`, (x0+x1)/2, laneTop+15, s.Attempt)
		}
	}
	w.f(`<text x="%d" y="%d" text-anchor="end" class="axis">attempts</text>`, left-6, laneTop+15)
	w.f(`</svg>`)
	return template.HTML(w.b.String())
}

// series is one line of a resource chart.
type series struct {
	Name   string
	Color  string
	Points []fpoint
}

type fpoint struct {
	T time.Time
	V float64
}

var seriesColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// lineChart draws a small time chart of one or more series sharing a unit.
func lineChart(title, unit string, ss []series) template.HTML {
	const (
		width, height    = 460, 180
		left, right, top = 56, 12, 28
		bottom           = height - 22
	)
	var w svgWriter
	w.f(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="%s">`, width, height, esc(title))
	w.f(`<text x="%d" y="16" class="title">%s</text>`, left, esc(title+" ("+unit+")"))
	var t0, t1 time.Time
	var vmax float64
	n := 0
	for _, s := range ss {
		for _, p := range s.Points {
			if n == 0 || p.T.Before(t0) {
				t0 = p.T
			}
			if n == 0 || p.T.After(t1) {
				t1 = p.T
			}
			vmax = math.Max(vmax, p.V)
			n++
		}
	}
	if n == 0 {
		w.f(`<text x="%d" y="%d" class="empty">no samples</text></svg>`, width/2, height/2)
		return template.HTML(w.b.String())
	}
	dur := t1.Sub(t0)
	if dur <= 0 {
		dur = time.Second
	}
	yMax := niceCeil(vmax)
	x := func(t time.Time) float64 { return left + float64(width-left-right)*float64(t.Sub(t0))/float64(dur) }
	y := func(v float64) float64 { return bottom - float64(bottom-top)*v/yMax }
	w.f(`<g class="axis">`)
	for i := 0; i <= 2; i++ {
		v := yMax * float64(i) / 2
		w.f(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>`, left, width-right, y(v), y(v))
		w.f(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`, left-4, y(v)+4, esc(shortNum(v)))
	}
	w.f(`<text x="%d" y="%d">%s</text>`, left, height-4, esc(timeLabel(t0, dur)))
	w.f(`<text x="%d" y="%d" text-anchor="end">%s</text>`, width-right, height-4, esc(timeLabel(t1, dur)))
	w.f(`</g>`)
	for i, s := range ss {
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(p.V)))
		}
		w.f(`<polyline class="series" stroke="%s" points="%s"><title>%s</title></polyline>`, s.Color, strings.Join(pts, " "), esc(s.Name))
		if len(ss) > 1 {
			w.f(`<text x="%d" y="%d" class="legend" style="fill: %s">%s</text>`, width-right-150, 12+11*i, s.Color, esc(s.Name))
		}
	}
	w.f(`</svg>`)
	return template.HTML(w.b.String())
}

// niceCeil rounds v up to a round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
// power of ten), so axis labels are round and the plot still fills its height.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func shortNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", v/1e9)) + "G"
	case a >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case a >= 1e4:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	}
	return trimZero(fmt.Sprintf("%.2f", v))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// timeLabel formats an axis time, in t's own zone: clock time for spans under a day,
// dates past that.
func timeLabel(t time.Time, span time.Duration) string {
	if span > 24*time.Hour {
		return t.Format("Jan 2 15:04")
	}
	return t.Format("15:04:05")
}
