package observe

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

//go:embed page.html.tmpl
var pageSource string

// pageTemplate is parsed once; it has no external references (no CDN, no fonts), so
// the page works offline and as an e-mail attachment.
var pageTemplate = template.Must(template.New("page").Parse(pageSource))

// RefreshSeconds is how often the live page reloads itself.
const RefreshSeconds = 10

// pageData is everything the template shows.
type pageData struct {
	Live          bool
	Refresh       int
	Generated     string
	RunID         string
	Command       string
	Status        string
	StatusColor   string
	Attempt       int
	Restarts      int
	Step          int64
	TotalSteps    string
	SinceProgress string
	StallTimeout  string
	NextStart     string
	ResumeFrom    string
	ETA           string
	ETADetail     string
	Loss          string
	LossDetail    string
	Throughput    string
	ThroughDetail string
	LastCrash     *crashView
	Timeline      template.HTML
	TrainCharts   []template.HTML
	Legend        []legendItem
	AnomalyKinds  []legendItem
	Anomalies     []anomalyRow
	AnomaliesMore int
	AnomalyCount  int
	Attempts      []attemptRow
	Charts        []template.HTML
	Zone          string
	Notes         []string
}

type crashView struct {
	Attempt    int
	Class      string
	Color      string
	Exit       string
	When       string
	Evidence   []string
	Suggestion string
	Decision   string
	Reason     string
}

type legendItem struct{ Name, Color string }

type attemptRow struct {
	Attempt   int
	Start     string
	Duration  string
	Exit      string
	Class     string
	Color     string
	Steps     string
	Resumed   string
	Decision  string
	Reason    string
	Running   bool
	Evidence1 string
}

// RenderPage writes the status page of the run dir at stateDir: one self-contained
// HTML document with the state, the ETA, the last crash and the anomalies, a timeline
// of every attempt with the loss and throughput under it on the same time axis, and the
// resource history. Times are shown in the local time zone. live adds a self-refresh
// and measures ages against now; without it (trainwrap report) the page is a still
// post-mortem. A run dir with neither state.json nor runs.jsonl is an error.
func RenderPage(w io.Writer, stateDir string, live bool) error {
	return renderPage(w, rundir.New(stateDir), live, time.Now())
}

func renderPage(w io.Writer, dir rundir.Dir, live bool, now time.Time) error {
	var st *rundir.State
	s, err := rundir.ReadState(dir.State())
	switch {
	case err == nil:
		st = &s
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("status page: %w", err)
	}
	recs, torn, err := rundir.ReadRecords(dir.Runs())
	if err != nil {
		return fmt.Errorf("status page: %w", err)
	}
	if st == nil && len(recs) == 0 {
		return fmt.Errorf("status page: no run recorded in %s (no state.json, no runs.jsonl); point --state-dir at a run dir", dir.Path)
	}
	samples, err := ReadSamples(dir.Samples())
	series, serr := training.ReadSeries(dir.Series())
	d := buildPage(st, recs, samples, series, live, now)
	if err != nil {
		d.Notes = append(d.Notes, "resource history unreadable: "+err.Error())
	}
	if serr != nil {
		d.Notes = append(d.Notes, "training metrics unreadable: "+serr.Error())
	}
	if w := torn.Warning(); w != "" {
		d.Notes = append(d.Notes, w)
	}
	if err := pageTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("status page: render: %w", err)
	}
	return nil
}

// buildPage lays out the page; times are shown in now's location.
func buildPage(st *rundir.State, recs []rundir.Record, samples []Sample, series []training.Sample, live bool, now time.Time) pageData {
	loc := now.Location()
	d := pageData{Live: live, Refresh: RefreshSeconds, Generated: clock(now, loc), Zone: now.Format("MST")}
	if st != nil {
		d.RunID = st.RunID
		d.Command = strings.Join(st.Command, " ")
		d.Status = st.Status
		d.Attempt = st.Attempt
		d.Restarts = st.Restarts
		d.Step = st.Step
		d.StallTimeout = st.StallTimeout
		if dur, err := time.ParseDuration(st.StallTimeout); err == nil {
			d.StallTimeout = humanDuration(dur)
		}
		d.ResumeFrom = st.ResumeFrom
		if !st.LastProgress.IsZero() {
			if live && isLive(st.Status) {
				d.SinceProgress = humanDuration(now.Sub(st.LastProgress))
			} else {
				d.SinceProgress = "last at " + clock(st.LastProgress, loc)
			}
		}
		if st.NextStart != nil && st.Status == rundir.StatusBackoff {
			d.NextStart = clock(*st.NextStart, loc)
		}
	} else if n := len(recs); n > 0 {
		last := recs[n-1]
		d.RunID, d.Command, d.Attempt, d.Step = last.RunID, strings.Join(last.Command, " "), last.Attempt, last.StepEnd
		d.Status = "unknown (no state.json)"
	}
	if d.SinceProgress == "" {
		d.SinceProgress = "no progress seen"
	}
	d.StatusColor = statusColor(d.Status)

	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Decision == rundir.DecisionDone || r.Decision == rundir.DecisionStop || r.Class == "" || r.Class == "none" {
			continue
		}
		ev := make([]string, 0, len(r.Evidence))
		for _, e := range r.Evidence {
			ev = append(ev, fmt.Sprintf("%d: %s", e.Line, e.Text))
		}
		d.LastCrash = &crashView{Attempt: r.Attempt, Class: r.Class, Color: ClassColor(r.Class), Exit: recordExit(r),
			When: clock(r.End, loc), Evidence: ev, Suggestion: r.Suggestion, Decision: r.Decision, Reason: r.Reason}
		break
	}

	spans := buildSpans(recs, st, samples, series, now)
	anomalies := collectAnomalies(st, recs)
	var extra []time.Time
	if n := len(series); n > 0 {
		extra = append(extra, series[0].Time, series[n-1].Time)
	}
	ax := newTimeAxis(spans, extra, loc)
	marks := anomalyMarks(anomalies, loc)
	d.Timeline = timelineSVG(spans, ax, marks)
	d.TrainCharts, d.Loss, d.LossDetail, d.Throughput, d.ThroughDetail = trainingCharts(series, spans, ax, marks, loc)
	d.Anomalies, d.AnomaliesMore = anomalyRows(anomalies, loc)
	d.AnomalyCount = len(anomalies)
	kinds := map[string]bool{}
	for _, a := range anomalies {
		if !kinds[a.Kind] {
			kinds[a.Kind] = true
			d.AnomalyKinds = append(d.AnomalyKinds, legendItem{strings.ReplaceAll(orUnknown(a.Kind), "_", " "), anomalyColor(a.Kind)})
		}
	}
	if total, ok := latest(series, totalStepsMetric); ok && total.Value > 0 {
		d.TotalSteps = fmt.Sprintf("%.0f", total.Value)
	}
	d.ETA, d.ETADetail = eta(st, series, samples, d.Step, now, loc)
	seen := map[string]bool{}
	for _, s := range spans {
		if s.Crashed && !seen[s.Class] {
			seen[s.Class] = true
			d.Legend = append(d.Legend, legendItem{s.Class, s.Color})
		}
	}
	sort.Slice(d.Legend, func(i, j int) bool { return d.Legend[i].Name < d.Legend[j].Name })

	for _, r := range recs {
		row := attemptRow{Attempt: r.Attempt, Start: clock(r.Start, loc), Duration: humanDuration(r.End.Sub(r.Start)),
			Exit: recordExit(r), Class: r.Class, Steps: fmt.Sprintf("%d → %d", r.StepStart, r.StepEnd), Resumed: r.ResumedFrom, Decision: r.Decision, Reason: r.Reason}
		if r.Class != "" && r.Class != "none" {
			row.Color = ClassColor(r.Class)
		}
		if len(r.Evidence) > 0 {
			row.Evidence1 = r.Evidence[0].Text
		}
		if len(r.Adjustments) > 0 {
			row.Reason += "; smart recovery: " + adjustmentsText(r.Adjustments)
		}
		d.Attempts = append(d.Attempts, row)
	}
	for _, s := range spans {
		if s.Running {
			d.Attempts = append(d.Attempts, attemptRow{Attempt: s.Attempt, Start: clock(s.Start, loc),
				Duration: humanDuration(now.Sub(s.Start)), Exit: "running", Steps: fmt.Sprintf("%d → %d", s.ResumeAt, d.Step), Resumed: s.Resumed, Running: true})
		}
	}
	d.Charts = resourceCharts(samples, loc)
	if st != nil && len(st.Adjustments) > 0 {
		d.Notes = append(d.Notes, "smart recovery changed the job; attempt "+strconv.Itoa(st.Attempt)+" runs: "+strings.Join(st.AttemptCommand, " ")+envNote(st.AttemptEnv))
	}
	return d
}

// adjustmentsText is smart recovery's changes as one line.
func adjustmentsText(as []rundir.Adjustment) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// envNote is " with K=V ..." for the variables smart recovery set, "" for none.
func envNote(env map[string]string) string {
	if len(env) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		parts = append(parts, k+"="+env[k])
	}
	return " with " + strings.Join(parts, " ")
}

func statusColor(status string) string {
	switch status {
	case rundir.StatusRunning:
		return colorRunning
	case rundir.StatusSucceeded:
		return colorOK
	case rundir.StatusGaveUp:
		return classColors["cuda_oom"]
	case rundir.StatusBackoff, rundir.StatusStarting, rundir.StatusStopping:
		return classColors["host_oom"]
	}
	return colorStopped
}

// resourceCharts draws host memory, disk free and, when samples carry them, GPU
// temperature, memory and utilisation.
func resourceCharts(samples []Sample, loc *time.Location) []template.HTML {
	if len(samples) == 0 {
		return nil
	}
	const gib = 1 << 30
	mem := series{Name: "host memory used", Color: seriesColors[0]}
	disks := map[string]*series{}
	var diskOrder []string
	gpuTemp, gpuMem, gpuUtil := map[int]*series{}, map[int]*series{}, map[int]*series{}
	var gpuOrder []int
	for _, s := range samples {
		s.Time = s.Time.In(loc)
		if s.MemTotal > 0 {
			mem.Points = append(mem.Points, fpoint{s.Time, float64(s.MemTotal-min(s.MemAvailable, s.MemTotal)) / gib})
		}
		for _, dk := range s.Disks {
			ds, ok := disks[dk.Path]
			if !ok {
				ds = &series{Name: dk.Path, Color: seriesColors[len(diskOrder)%len(seriesColors)]}
				disks[dk.Path] = ds
				diskOrder = append(diskOrder, dk.Path)
			}
			ds.Points = append(ds.Points, fpoint{s.Time, float64(dk.Free) / gib})
		}
		for _, g := range s.GPUs {
			if _, ok := gpuTemp[g.Index]; !ok {
				c := seriesColors[len(gpuOrder)%len(seriesColors)]
				name := fmt.Sprintf("GPU %d", g.Index)
				gpuTemp[g.Index], gpuMem[g.Index], gpuUtil[g.Index] = &series{Name: name, Color: c}, &series{Name: name, Color: c}, &series{Name: name, Color: c}
				gpuOrder = append(gpuOrder, g.Index)
			}
			gpuTemp[g.Index].Points = append(gpuTemp[g.Index].Points, fpoint{s.Time, float64(g.TempC)})
			gpuMem[g.Index].Points = append(gpuMem[g.Index].Points, fpoint{s.Time, float64(g.MemUsed) / gib})
			gpuUtil[g.Index].Points = append(gpuUtil[g.Index].Points, fpoint{s.Time, float64(g.UtilPct)})
		}
	}
	var out []template.HTML
	if len(mem.Points) > 0 {
		out = append(out, lineChart("host memory used", "GiB", []series{mem}))
	}
	if len(diskOrder) > 0 {
		ss := make([]series, 0, len(diskOrder))
		for _, p := range diskOrder {
			ss = append(ss, *disks[p])
		}
		out = append(out, lineChart("disk free", "GiB", ss))
	}
	if len(gpuOrder) > 0 {
		collect := func(m map[int]*series) []series {
			ss := make([]series, 0, len(gpuOrder))
			for _, i := range gpuOrder {
				ss = append(ss, *m[i])
			}
			return ss
		}
		out = append(out,
			lineChart("GPU temperature", "°C", collect(gpuTemp)),
			lineChart("GPU memory used", "GiB", collect(gpuMem)),
			lineChart("GPU utilisation", "%", collect(gpuUtil)))
	}
	return out
}

// trainingCharts draws the loss and the throughput on the timeline's axis, and says
// their latest values for the cards. Throughput is samples/s where the job prints it,
// else steps/s from the time per step.
func trainingCharts(series []training.Sample, spans []span, ax timeAxis, marks []mark, loc *time.Location) (charts []template.HTML, loss, lossDetail, thr, thrDetail string) {
	if len(series) == 0 {
		return nil, "", "", "", ""
	}
	charts = append(charts, trainChart("loss-chart", "loss", ax, spans, trainSeries(series, training.Loss, nil), "#1f77b4", false, marks))
	if s, ok := latest(series, training.Loss); ok {
		loss, lossDetail = shortNum(s.Value), fmt.Sprintf("at step %d, %s", s.Step, clock(s.Time, loc))
	}
	if s, ok := latest(series, training.SamplesPerSecond); ok {
		charts = append(charts, trainChart("throughput-chart", "throughput (samples/s)", ax, spans, trainSeries(series, training.SamplesPerSecond, nil), "#0f8fa3", true, marks))
		thr, thrDetail = shortNum(s.Value)+" samples/s", fmt.Sprintf("at step %d", s.Step)
	} else if s, ok := latest(series, training.StepTime); ok {
		perStep := func(v float64) (float64, bool) { return 1 / v, v > 0 }
		charts = append(charts, trainChart("throughput-chart", "throughput (steps/s, from the time per step)", ax, spans, trainSeries(series, training.StepTime, perStep), "#0f8fa3", true, marks))
		if v, ok := perStep(s.Value); ok {
			thr, thrDetail = shortNum(v)+" steps/s", fmt.Sprintf("%s s per step at step %d", shortNum(s.Value), s.Step)
		}
	}
	return charts, loss, lossDetail, thr, thrDetail
}
