package shim

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/training"
)

// The test binary doubles as trainwrap: `guard` runs the guard, `supervise` runs the
// supervisor with options from $SHIM_TEST_OPTIONS. Tests start it as a real process so
// that it can be killed, signalled and measured like the real thing.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "guard":
			fs := flag.NewFlagSet("guard", flag.ExitOnError)
			runID := fs.String("run-id", "", "")
			pid := fs.Int("supervisor-pid", 0, "")
			start := fs.Uint64("supervisor-start", 0, "")
			cg := fs.String("cgroup", "", "")
			sentinel := fs.Bool("sentinel", false, "")
			fs.Parse(os.Args[2:])
			err := RunGuard(context.Background(), GuardOptions{RunID: *runID, Supervisor: proc.ID{PID: *pid, StartTime: *start}, Cgroup: *cg, Sentinel: *sentinel, Stdin: os.Stdin, Ready: os.Stdout, Stderr: os.Stderr})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "logfile-child":
			logFileChild(os.Args[2])
			os.Exit(0)
		case "supervise":
			var to testOptions
			if err := json.Unmarshal([]byte(os.Getenv("SHIM_TEST_OPTIONS")), &to); err != nil {
				fmt.Fprintln(os.Stderr, "bad SHIM_TEST_OPTIONS:", err)
				os.Exit(2)
			}
			o := to.options()
			o.Command = os.Args[2:]
			if to.ClockFIFO != "" {
				clk := newManualClock(time.Now())
				o.Clock = clk
				go followClockFIFO(clk, to.ClockFIFO)
			}
			code, err := Run(context.Background(), o)
			if err != nil {
				fmt.Fprintln(os.Stderr, "trainwrap:", err)
			}
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

// testOptions is the JSON form of the Options a test passes to the supervisor process.
type testOptions struct {
	StateDir                   string
	Pty                        string
	StopTimeout                time.Duration
	AbortGrace                 time.Duration
	StallTimeout               time.Duration
	StartupTimeout             time.Duration
	ResumeAllowance            time.Duration
	ProgressRegex              string
	HeartbeatFile              string
	OutputDrainIdle            time.Duration
	OutputDrainMax             time.Duration
	BackoffInitial             time.Duration
	BackoffMax                 time.Duration
	MaxRestartsInWindow        int
	RestartWindow              time.Duration
	MaxFailuresWithoutProgress int
	MaxRestarts                int
	LogMaxSizeMB               int
	Force                      bool
	Cgroup                     string
	// ClockFIFO, when set, gives the supervisor a manualClock that the test moves by
	// writing durations to this FIFO (see clockControl).
	ClockFIFO string
	// OnAnomaly, when set, wires training's recogniser, detector and series writer in
	// with this --on-anomaly; CheckpointLog, when set, is a file each between-attempts
	// maintenance appends "before=N" to (and finds no checkpoint).
	OnAnomaly     string
	CheckpointLog string
	// TerminalPatience is Options.TerminalPatience: 0 is the supervisor's own default.
	TerminalPatience time.Duration
	// Wrap runs the supervisor as Wrap... supervise CMD: a command that ends by
	// executing the test binary (its last element) with the rest.
	Wrap []string
}

func (t testOptions) options() Options {
	o := Options{
		StateDir:        t.StateDir,
		Pty:             PtyMode(t.Pty),
		StopTimeout:     t.StopTimeout,
		AbortGrace:      t.AbortGrace,
		StallTimeout:    t.StallTimeout,
		StartupTimeout:  t.StartupTimeout,
		ResumeAllowance: t.ResumeAllowance,
		HeartbeatFile:   t.HeartbeatFile,
		LogMaxSizeMB:    t.LogMaxSizeMB,
		Force:           t.Force,
		Cgroup:          t.Cgroup,
		Policy: Policy{
			BackoffInitial:             t.BackoffInitial,
			BackoffMax:                 t.BackoffMax,
			Jitter:                     0.2,
			MaxRestartsInWindow:        t.MaxRestartsInWindow,
			RestartWindow:              t.RestartWindow,
			MaxFailuresWithoutProgress: t.MaxFailuresWithoutProgress,
			MaxRestarts:                t.MaxRestarts,
		},
	}
	o.OutputDrainIdle, o.OutputDrainMax = t.OutputDrainIdle, t.OutputDrainMax
	o.TerminalPatience = t.TerminalPatience
	if t.ProgressRegex != "" {
		o.ProgressRegex = regexp.MustCompile(t.ProgressRegex)
	}
	if o.Pty == "" {
		o.Pty = PtyNever
	}
	if t.OnAnomaly != "" {
		o.Training = TrainingOptions{
			NewRecognizer: func() LineRecognizer { return training.NewRecognizer(nil) },
			Detector:      training.NewDetector(training.DetectorOptions{}),
			OpenSeries:    func(path string) (SeriesSink, error) { return training.OpenSeries(path) },
			OnAnomaly:     t.OnAnomaly,
		}
	}
	if t.CheckpointLog != "" {
		o.Checkpoints = func(_ context.Context, before int64) (CheckpointResult, error) {
			f, err := os.OpenFile(t.CheckpointLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return CheckpointResult{NewestComplete: -1}, err
			}
			_, err = fmt.Fprintf(f, "before=%d\n", before)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return CheckpointResult{NewestComplete: -1}, err
		}
	}
	return o
}
