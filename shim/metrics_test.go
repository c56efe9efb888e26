package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
	"github.com/trainwrap/trainwrap/training"
)

// spikingJob prints 80 steps of a slowly falling loss; in attempt 1 the loss jumps to
// 40 at steps 60 to 62. With "wait" as $1, attempt 1 then waits to be stopped, so that
// it cannot finish before the stop lands.
const spikingJob = `i=0
while [ $i -lt 80 ]; do
  i=$((i+1)); l="2.$((50 - i/4))$((i%7))"
  if [ "$TRAINWRAP_ATTEMPT" = 1 ] && [ $i -ge 60 ] && [ $i -le 62 ]; then l=40.0; fi
  echo "global_step=$i loss=$l"
  if [ "$TRAINWRAP_ATTEMPT" = 1 ] && [ $i = 63 ] && [ "$1" = wait ]; then exec sleep 300; fi
done`

// The supervisor reads the loss from a real job's output, keeps it in metrics.jsonl,
// and finds the spike at step 60: under warn it is recorded and the job runs on; under
// restart the attempt is stopped, recorded as unknown with the anomaly, and the
// maintenance before the restart is asked to keep checkpoints from step 60 on out of
// the way. Under -race this is also the check that the output path and the loop share
// the samples safely.
func TestAnomalyWarnAndRestart(t *testing.T) {
	for _, tc := range []struct {
		onAnomaly string
		attempts  int
		wait      string // the job's $1
		before    string // what maintenance was asked, in order: start-up, after each attempt
	}{
		{onAnomaly: AnomalyWarn, attempts: 1, before: "before=0\nbefore=0\n"},
		{onAnomaly: AnomalyRestart, attempts: 2, wait: "wait", before: "before=0\nbefore=60\nbefore=0\n"},
	} {
		t.Run(tc.onAnomaly, func(t *testing.T) {
			work := t.TempDir()
			cplog := filepath.Join(work, "checkpoints.log")
			s := startSupervisorIn(t, work, testOptions{
				StateDir: filepath.Join(work, ".trainwrap"), OnAnomaly: tc.onAnomaly, CheckpointLog: cplog,
				BackoffInitial: 10 * time.Millisecond, StopTimeout: 5 * time.Second,
			}, "sh", "-c", spikingJob, "sh", tc.wait)
			if code := s.wait(60 * time.Second); code != 0 {
				t.Fatalf("exit code %d, want 0\nstderr:\n%s", code, s.stderr.String())
			}
			if n := strings.Count(s.stderr.String(), "trainwrap: anomaly: "); n != 1 {
				t.Errorf("%d anomaly lines on stderr, want 1:\n%s", n, s.stderr.String())
			}
			recs := s.records()
			if len(recs) != tc.attempts {
				t.Fatalf("%d attempts, want %d\nstderr:\n%s", len(recs), tc.attempts, s.stderr.String())
			}
			first := recs[0]
			if len(first.Anomalies) != 1 || first.Anomalies[0].Kind != training.LossSpike || first.Anomalies[0].Step != 60 || first.Anomalies[0].Attempt != 1 {
				t.Fatalf("attempt 1 recorded anomalies %+v, want one loss_spike at step 60", first.Anomalies)
			}
			for _, r := range recs[1:] {
				if len(r.Anomalies) > 0 {
					t.Errorf("attempt %d recorded anomalies %+v, want none", r.Attempt, r.Anomalies)
				}
			}
			switch tc.onAnomaly {
			case AnomalyWarn:
				if first.Decision != rundir.DecisionDone || first.StepEnd != 80 {
					t.Errorf("attempt 1: decision %q at step %d, want done at 80", first.Decision, first.StepEnd)
				}
			case AnomalyRestart:
				if first.Class != "unknown" || first.ClassExitCode != 85 || first.Decision != rundir.DecisionRestart ||
					!strings.HasPrefix(first.Reason, "--on-anomaly restart: ") || !strings.Contains(first.Suggestion, "metrics.jsonl around step 60") {
					t.Errorf("attempt 1: class %q (%d), decision %q, reason %q, suggestion %q; want unknown (85), restart naming the anomaly",
						first.Class, first.ClassExitCode, first.Decision, first.Reason, first.Suggestion)
				}
				if first.StepEnd >= 80 {
					t.Errorf("attempt 1 ran to step %d: it was not stopped", first.StepEnd)
				}
				if last := recs[len(recs)-1]; last.Decision != rundir.DecisionDone {
					t.Errorf("attempt 2: decision %q, want done", last.Decision)
				}
				if strings.Contains(s.stderr.String(), "SIGABRT") {
					t.Errorf("an anomaly stop sent SIGABRT (a stall's stack dump):\n%s", s.stderr.String())
				}
			}
			b, err := os.ReadFile(cplog)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.before {
				t.Errorf("maintenance was asked %q, want %q", b, tc.before)
			}
			st := s.state()
			if len(st.Anomalies) != 1 || st.Anomalies[0].Step != 60 {
				t.Errorf("state.json anomalies %+v, want the one at step 60", st.Anomalies)
			}
			series, err := training.ReadSeries(s.dir.Series())
			if err != nil {
				t.Fatal(err)
			}
			var spiked bool
			losses := 0
			for _, smp := range series {
				if smp.Name == training.Loss {
					losses++
					spiked = spiked || (smp.Step == 60 && smp.Value == 40 && smp.Attempt == 1)
				}
			}
			if !spiked || losses < 60 {
				t.Errorf("metrics.jsonl holds %d losses (spike at 60 seen: %v), want every step's and the spike", losses, spiked)
			}
		})
	}
}
