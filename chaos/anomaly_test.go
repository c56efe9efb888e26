package chaos

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/training"
)

// readMetrics feeds the trainer's real output to the recognisers, as the supervisor
// does: stdout line by line with the step the progress regex last read, stderr split
// at carriage returns too (the tqdm bar redraws). It returns the samples and what the
// detector made of them.
func readMetrics(t *testing.T, r *trainerRun, attempt int, det *training.Detector) ([]training.Sample, []training.Anomaly) {
	t.Helper()
	rec := training.NewRecognizer(nil)
	det.StartAttempt(attempt)
	progress := regexp.MustCompile(ProgressRegex)
	now := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	var samples []training.Sample
	var found []training.Anomaly
	feed := func(line string, step int64) {
		from := len(samples)
		samples = rec.Recognize(samples, []byte(line), step, attempt, now)
		for _, s := range samples[from:] {
			found = append(found, det.Observe(s)...)
		}
	}
	step := int64(-1)
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		if m := progress.FindStringSubmatch(line); m != nil {
			step, _ = strconv.ParseInt(m[1], 10, 64)
		}
		feed(line, step)
	}
	for _, line := range strings.FieldsFunc(r.stderr.String(), func(c rune) bool { return c == '\n' || c == '\r' }) {
		feed(line, -1)
	}
	return samples, found
}

func values(samples []training.Sample, name string, from, to int64) []float64 {
	var v []float64
	for _, s := range samples {
		if s.Name == name && s.Step >= from && s.Step < to {
			v = append(v, s.Value)
		}
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// TestTrainAnomalyModes runs the trainer for real in each anomaly mode: it exits 0,
// prints metrics that go bad at --fail-at, and the recognisers and detector fed its
// output find exactly the expected anomaly within 50 steps; its healthy output, and a
// later attempt past --fail-attempts, raise none.
func TestTrainAnomalyModes(t *testing.T) {
	const failAt = 40
	cases := []struct {
		name    string
		args    []string
		attempt int
		want    string
		bad     func(t *testing.T, s []training.Sample)
	}{
		{"healthy", nil, 1, "", nil},
		{"loss-spike", []string{"--fail", FailLossSpike}, 1, training.LossSpike, func(t *testing.T, s []training.Sample) {
			before, during := median(values(s, training.Loss, 0, failAt)), median(values(s, training.Loss, failAt, failAt+spikeSteps))
			if during < 10*before {
				t.Errorf("loss during the spike %.3g, before %.3g: want about 20x", during, before)
			}
			if after := median(values(s, training.Loss, failAt+spikeSteps, 1000)); after > 2*before {
				t.Errorf("loss after the spike %.3g, before %.3g: want it back", after, before)
			}
		}},
		{"loss-scale-collapse", []string{"--fail", FailLossScaleCollapse}, 1, training.LossScaleCollapse, func(t *testing.T, s []training.Sample) {
			v := values(s, training.LossScale, 0, 1000)
			if len(v) < 16 || v[0] != 32768 || v[len(v)-1] != 1 || len(values(s, training.LossScale, 0, failAt)) != 0 {
				t.Errorf("loss scales %v: want halvings from 32768 to 1, from step %d on", v, failAt)
			}
		}},
		{"slowdown", []string{"--fail", FailSlowdown}, 1, training.ThroughputDrop, func(t *testing.T, s []training.Sample) {
			before, after := median(values(s, training.SamplesPerSecond, 0, failAt)), median(values(s, training.SamplesPerSecond, failAt, 1000))
			if r := after / before; r < 0.3 || r > 0.37 {
				t.Errorf("samples/s %.4g after, %.4g before: ratio %.2f, want a third", after, before, r)
			}
			st := values(s, training.StepTime, 0, 1000)
			if len(st) == 0 || median(st[len(st)-10:]) < 2.5*median(st[:failAt-5]) {
				t.Errorf("the tqdm bar's step times %v: want them 3x longer at the end", st)
			}
		}},
		{"loss-spike past --fail-attempts", []string{"--fail", FailLossSpike, "--fail-attempts", "1"}, 2, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--output_dir", t.TempDir(), "--max-steps", "100", "--save-steps", "0", "--step-time", "5ms", "--fail-at", strconv.Itoa(failAt)}, c.args...)
			r := startTrainer(t, []string{"TRAINWRAP_ATTEMPT=" + strconv.Itoa(c.attempt)}, args...)
			if ps := r.wait(t, 60*time.Second); ps.ExitCode() != 0 {
				t.Fatalf("exit %d, want 0 (an anomaly is not a crash); stderr:\n%s", ps.ExitCode(), r.stderr.String())
			}
			if !strings.Contains(r.stdout.String(), "global_step=100 ") {
				t.Fatalf("the trainer did not reach step 100:\n%s", r.stdout.String())
			}
			samples, found := readMetrics(t, r, c.attempt, training.NewDetector(training.DetectorOptions{}))
			for _, name := range []string{training.Loss, training.SamplesPerSecond, training.StepTime, training.LearningRate} {
				if len(values(samples, name, 0, 1000)) < 20 {
					t.Errorf("only %d %s samples from the trainer's output", len(values(samples, name, 0, 1000)), name)
				}
			}
			if c.bad != nil {
				c.bad(t, samples)
			}
			if c.want == "" {
				if len(found) != 0 {
					t.Fatalf("anomalies on a healthy run: %+v", found)
				}
				return
			}
			if len(found) != 1 || found[0].Kind != c.want || found[0].Step < failAt || found[0].Step > failAt+50 {
				t.Fatalf("anomalies %+v, want one %s within 50 steps of %d", found, c.want, failAt)
			}
			t.Logf("%s", found[0].Message)
		})
	}
}

// TestTrainSlowAttemptIsAStraggler: a healthy attempt, then one slow from its first
// step (a slow node: no drop within the attempt, it has no fast baseline), fed to one
// detector, is a straggler.
func TestTrainSlowAttemptIsAStraggler(t *testing.T) {
	out := t.TempDir()
	det := training.NewDetector(training.DetectorOptions{})
	var found []training.Anomaly
	for attempt, extra := range [][]string{nil, {"--fail", FailSlowdown, "--fail-at", "1"}} {
		args := append([]string{"--output_dir", out, "--max-steps", "60", "--save-steps", "0", "--step-time", "2ms"}, extra...)
		r := startTrainer(t, []string{"TRAINWRAP_ATTEMPT=" + strconv.Itoa(attempt+1)}, args...)
		if ps := r.wait(t, 60*time.Second); ps.ExitCode() != 0 {
			t.Fatalf("attempt %d: exit %d; stderr:\n%s", attempt+1, ps.ExitCode(), r.stderr.String())
		}
		_, a := readMetrics(t, r, attempt+1, det)
		found = append(found, a...)
	}
	if len(found) != 1 || found[0].Kind != training.Straggler || found[0].Attempt != 2 || found[0].Step > 50 {
		t.Fatalf("anomalies %+v, want one straggler in attempt 2 within 50 steps", found)
	}
	t.Logf("%s", found[0].Message)
}

func TestParseModeAnomalyModes(t *testing.T) {
	for _, m := range AnomalyModes {
		got, _, err := ParseMode(m)
		if err != nil || got != m || !IsAnomalyMode(m) {
			t.Errorf("ParseMode(%q) = %q, %v", m, got, err)
		}
		if slices.Contains(Modes, m) {
			t.Errorf("%s is in Modes: the crash suite would expect it to crash", m)
		}
	}
	if _, _, err := ParseMode("loss-spikes"); err == nil || !strings.Contains(err.Error(), "slowdown") {
		t.Errorf("unknown mode: %v, want the list with the anomaly modes", err)
	}
	if IsAnomalyMode(FailCUDAOOM) {
		t.Error("cuda-oom is not an anomaly mode")
	}
}

// With --hold-sick a sick attempt reaches --max-steps and then waits to be stopped
// instead of finishing, and the SIGTERM of a stop ends it; an attempt past
// --fail-attempts is healthy and finishes; with a mode that is not an anomaly the flag
// is refused.
func TestHoldSickWaitsToBeStopped(t *testing.T) {
	args := []string{"--output_dir", "", "--max-steps", "30", "--save-steps", "0", "--step-time", "1ms", "--fail-at", "10", "--fail-attempts", "1", "--hold-sick"}
	cases := []struct {
		name    string
		mode    string
		attempt string
		hold    bool
		refused bool
	}{
		{name: "sick attempt holds", mode: FailLossSpike, attempt: "1", hold: true},
		{name: "slowdown holds", mode: FailSlowdown, attempt: "1", hold: true},
		{name: "healthy attempt finishes", mode: FailLossSpike, attempt: "2"},
		{name: "crash mode refused", mode: FailCUDAOOM, attempt: "1", refused: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := slices.Clone(args)
			a[1] = t.TempDir()
			r := startTrainer(t, []string{"TRAINWRAP_ATTEMPT=" + tc.attempt}, append(a, "--fail", tc.mode)...)
			if tc.hold {
				r.waitOutput(t, "waiting to be stopped (--hold-sick)", time.Minute)
				if !strings.Contains(r.stdout.String(), "global_step=30 ") {
					t.Fatalf("held before --max-steps:\n%s", r.stdout.String())
				}
				if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			st := r.wait(t, time.Minute)
			ws := st.Sys().(syscall.WaitStatus)
			switch {
			case tc.hold:
				if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
					t.Fatalf("ended %v, want killed by the SIGTERM", st)
				}
				if strings.Contains(r.stderr.String(), "Training completed") {
					t.Errorf("a held attempt printed that it completed:\n%s", r.stderr.String())
				}
			case tc.refused:
				if st.ExitCode() == 0 || !strings.Contains(r.stderr.String(), "--hold-sick: only with --fail") {
					t.Fatalf("exit %d, want the flag refused; stderr:\n%s", st.ExitCode(), r.stderr.String())
				}
			default:
				if st.ExitCode() != 0 || !strings.Contains(r.stderr.String(), "Training completed") {
					t.Fatalf("exit %d, want a finished run; stderr:\n%s", st.ExitCode(), r.stderr.String())
				}
			}
		})
	}
}
