package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trainwrap/trainwrap/proc"
	"github.com/trainwrap/trainwrap/rundir"
)

// orphanGrace is how long the processes of a run may take to vanish after its
// supervisor was SIGKILLed.
const orphanGrace = 2 * time.Second

// SuiteOptions configure RunSuite.
type SuiteOptions struct {
	// Exe is the trainwrap binary; it is run with argv[0] "trainwrap", both as the
	// supervisor and as the job (through a symlink named trainwrap).
	Exe string
	// Only restricts the suite to these scenario names (comma-separated values too).
	Only []string
	// KeepDir keeps the temporary directory and its run dirs.
	KeepDir bool
	// Parallel is how many scenarios run at once; zero means 4.
	Parallel int
	// Timeout bounds one scenario; zero means 60s.
	Timeout time.Duration
	// Progress, when set, gets a line as each scenario ends.
	Progress io.Writer
}

// Result is one row of the suite.
type Result struct {
	Scenario      string   `json:"scenario"`
	ExpectedClass string   `json:"expected_class"`
	DetectedClass string   `json:"detected_class"`
	Restarted     bool     `json:"restarted"`
	Resumed       string   `json:"resumed,omitempty"`
	ResumeOK      *bool    `json:"resume_ok,omitempty"`
	Quarantined   *bool    `json:"quarantined,omitempty"`
	LeftBehind    int      `json:"left_behind"`
	ExitCode      int      `json:"exit_code"`
	ExpectedExit  int      `json:"expected_exit"`
	DurationS     float64  `json:"duration_s"`
	Pass          bool     `json:"pass"`
	Problems      []string `json:"problems,omitempty"`
	// Anomalies are what the supervisor's detector found, as kind@step; AnomalyStep is
	// the step of the expected one on an anomaly row.
	Anomalies   []string `json:"anomalies,omitempty"`
	AnomalyStep int64    `json:"anomaly_step,omitempty"`
	Dir         string   `json:"dir,omitempty"`
}

// ScenarioNames lists the suite's scenarios in order.
func ScenarioNames() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
	}
	return out
}

// RunSuite runs the scenarios under the real supervisor, each in its own run dir under
// a temporary directory, and returns one Result per scenario in the suite's order.
func RunSuite(ctx context.Context, opt SuiteOptions) ([]Result, error) {
	if opt.Exe == "" {
		return nil, errors.New("chaos suite: no trainwrap binary given")
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 60 * time.Second
	}
	all := scenarios()
	var only []string
	for _, o := range opt.Only {
		for _, name := range strings.Split(o, ",") {
			if name = strings.TrimSpace(name); name != "" {
				only = append(only, name)
			}
		}
	}
	var todo []scenario
	for _, s := range all {
		if len(only) == 0 || slices.Contains(only, s.name) {
			todo = append(todo, s)
		}
	}
	for _, name := range only {
		if !slices.ContainsFunc(all, func(s scenario) bool { return s.name == name }) {
			return nil, fmt.Errorf("chaos suite: --only %q: no such scenario; choose from %s", name, strings.Join(ScenarioNames(), ", "))
		}
	}
	tmp, err := os.MkdirTemp("", "trainwrap-chaos-")
	if err != nil {
		return nil, fmt.Errorf("chaos suite: temporary directory: %w", err)
	}
	if !opt.KeepDir {
		defer os.RemoveAll(tmp)
	} else if opt.Progress != nil {
		fmt.Fprintf(opt.Progress, "chaos suite: run dirs kept in %s\n", tmp)
	}
	// The job runs as "trainwrap" through a symlink, so that argv[0] names the command
	// whatever the binary is called (a test binary dispatches on it).
	binDir := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos suite: %w", err)
	}
	job := filepath.Join(binDir, "trainwrap")
	if err := os.Symlink(opt.Exe, job); err != nil {
		return nil, fmt.Errorf("chaos suite: link %s: %w", opt.Exe, err)
	}

	// Scenarios that wait for a stall start first, so they overlap the quick ones.
	order := make([]int, len(todo))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if todo[a].slow == todo[b].slow {
			return 0
		}
		if todo[a].slow {
			return -1
		}
		return 1
	})
	results := make([]Result, len(todo))
	sem := make(chan struct{}, opt.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, i := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := runScenario(ctx, opt, todo[i], filepath.Join(tmp, todo[i].name), job)
			if opt.KeepDir {
				r.Dir = filepath.Join(tmp, todo[i].name)
			}
			results[i] = r
			if opt.Progress != nil {
				mu.Lock()
				fmt.Fprintf(opt.Progress, "chaos suite: %-18s %s (%.1fs)\n", r.Scenario, passWord(r.Pass), r.DurationS)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, nil
}

// scenarioRun is one scenario while it runs.
type scenarioRun struct {
	stateDir string
	out      io.Writer
	runID    string
}

// state reads the scenario's state.json.
func (r *scenarioRun) state() (rundir.State, error) {
	return rundir.ReadState(rundir.New(r.stateDir).State())
}

// waitStep waits until the supervisor has seen the job reach step.
func (r *scenarioRun) waitStep(ctx context.Context, step int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := r.state(); err == nil && st.Step >= step && st.Child != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for step %d: %w", step, ctx.Err())
		case <-tick.C:
		}
	}
}

// runScenario runs one scenario and judges it.
func runScenario(ctx context.Context, opt SuiteOptions, s scenario, dir, job string) (res Result) {
	start := time.Now()
	res = Result{Scenario: s.name, ExpectedClass: s.class, ExpectedExit: s.exit}
	fail := func(format string, a ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, a...)) }
	defer func() { res.DurationS = time.Since(start).Seconds(); res.Pass = len(res.Problems) == 0 }()

	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	stateDir := filepath.Join(dir, "state")
	outDir := filepath.Join(dir, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail("create %s: %v", dir, err)
		return res
	}
	logf, err := os.Create(filepath.Join(dir, "trainwrap.out"))
	if err != nil {
		fail("create log: %v", err)
		return res
	}
	defer logf.Close()

	args := []string{"trainwrap", "--state-dir", stateDir, "run",
		"--pty", "never", "--skip-preflight", "--sample-interval", "0",
		"--progress-regex", ProgressRegex,
		"--stall-timeout", suiteStall.String(), "--startup-timeout", suiteStartup.String(), "--stop-timeout", suiteStop.String(),
		"--backoff-initial", "50ms", "--backoff-max", "200ms", "--gpu-reclaim-timeout", "1s",
	}
	args = append(args, s.run...)
	args = append(args, "--", job, "chaos", "train", "--output_dir", outDir,
		"--max-steps", fmt.Sprint(suiteMaxSteps), "--save-steps", fmt.Sprint(suiteSaveSteps),
		"--step-time", suiteStepTime.String())
	args = append(args, s.train...)
	cmd := &exec.Cmd{Path: opt.Exe, Args: args, Dir: dir, Env: suiteEnv(), Stdout: logf, Stderr: logf}
	if err := cmd.Start(); err != nil {
		fail("start trainwrap: %v", err)
		return res
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	run := &scenarioRun{stateDir: stateDir, out: logf}
	if s.during != nil {
		if err := s.during(ctx, run); err != nil {
			fail("%v", err)
		}
	}
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		fail("trainwrap still running after %s; stopped it", opt.Timeout)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case werr = <-waited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			werr = <-waited
		}
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		fail("wait for trainwrap: %v", werr)
	}
	if res.ExitCode != s.exit {
		fail("trainwrap exited %d, want %d", res.ExitCode, s.exit)
	}

	st, err := run.state()
	if err != nil {
		fail("read state.json: %v", err)
	} else if run.runID == "" {
		run.runID = st.RunID
	}
	res.LeftBehind = leftBehind(run.runID, s.exit == -1)
	if res.LeftBehind > 0 {
		fail("%d processes of run %s left behind", res.LeftBehind, run.runID)
	}
	recs, torn, err := rundir.ReadRecords(rundir.New(stateDir).Runs())
	if err != nil {
		fail("read runs.jsonl: %v", err)
	}
	if w := torn.Warning(); w != "" {
		fail("%s", w) // the supervisor must never tear a record of its own
	}
	judgeRecords(s, recs, &res, fail)
	if s.class == "hang" && len(recs) > 0 {
		lat, err := stallLatency(rundir.New(stateDir).TrainLog(), recs[0])
		if err != nil {
			fail("%v", err)
		} else if lat > stallBound {
			fail("the stall ended the attempt %s after the last progress, want under %s (--stall-timeout %s, --startup-timeout %s)",
				lat.Round(100*time.Millisecond), stallBound, suiteStall, suiteStartup)
		}
	}
	if !res.Pass && len(res.Problems) > 0 {
		res.Problems = append(res.Problems, "trainwrap's output: "+tail(filepath.Join(dir, "trainwrap.out"), 6))
	}
	return res
}

// judgeRecords checks the attempts recorded in runs.jsonl against the scenario.
func judgeRecords(s scenario, recs []rundir.Record, res *Result, fail func(string, ...any)) {
	if s.exit == -1 {
		// The supervisor was killed: no verdict to check, only what it left.
		res.DetectedClass = "-"
		return
	}
	if len(recs) == 0 {
		fail("no attempt recorded in runs.jsonl")
		return
	}
	for _, r := range recs {
		for _, a := range r.Anomalies {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("%s@%d", a.Kind, a.Step))
		}
	}
	res.Restarted = len(recs) > 1
	if res.Restarted != s.restart {
		fail("restarted=%v, want %v (%d attempts)", res.Restarted, s.restart, len(recs))
	}
	if s.anomaly != "" {
		checkAnomaly(s, recs, res, fail)
		return
	}
	// A row whose job trains normally (or crashes) must not be told it went bad.
	if len(res.Anomalies) > 0 {
		fail("false anomaly: %s", strings.Join(res.Anomalies, ", "))
	}
	res.DetectedClass = recs[0].Class
	if res.DetectedClass == "" {
		res.DetectedClass = classNone
	}
	if res.DetectedClass != s.class {
		fail("first attempt classified %q, want %q", res.DetectedClass, s.class)
	}
	if s.resume > 0 {
		ok := false
		if len(recs) > 1 {
			res.Resumed = filepath.Base(recs[1].ResumedFrom)
			ok = res.Resumed == checkpointName(s.resume)
		}
		res.ResumeOK = &ok
		if !ok {
			fail("second attempt resumed from %q, want %s", res.Resumed, checkpointName(s.resume))
		}
	}
	if last := recs[len(recs)-1]; s.giveUp != "" && (last.Decision != rundir.DecisionGiveUp || !strings.Contains(last.Reason, s.giveUp)) {
		fail("last attempt: decision %q, reason %q; want %s for %s", last.Decision, last.Reason, rundir.DecisionGiveUp, s.giveUp)
	}
	if s.records != nil {
		if err := s.records(recs); err != nil {
			fail("%v", err)
		}
	}
	if s.quarantine > 0 {
		want := checkpointName(s.quarantine)
		ok := false
		for _, r := range recs {
			for _, q := range r.Quarantined {
				if filepath.Base(q) == want || strings.Contains(q, want) {
					ok = true
				}
			}
		}
		res.Quarantined = &ok
		if !ok {
			fail("%s was not quarantined", want)
		}
	}
}

// leftBehind counts live processes carrying the run's id. After a SIGKILLed supervisor
// they get orphanGrace to go.
func leftBehind(runID string, grace bool) int {
	if runID == "" {
		return 0
	}
	deadline := time.Now()
	if grace {
		deadline = deadline.Add(orphanGrace)
	}
	for {
		ps, err := proc.WithEnv(rundir.RunIDEnv, runID)
		n := 0
		for _, p := range ps {
			if !p.Zombie() {
				n++
			}
		}
		if (err == nil && n == 0) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// suiteEnv is this environment without TRAINWRAP_* variables, so that a suite run
// under a supervisor does not hand its run id, state dir or flags to the scenarios.
func suiteEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRAINWRAP_") {
			env = append(env, kv)
		}
	}
	return env
}

// tail is the last n lines of the file at path, joined by " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(bytes.ReplaceAll(b, []byte("\r"), []byte("\n")))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// stallLatency is how long after its last progress line (in logs/train.log) the
// attempt of rec ended: what a stall cost.
func stallLatency(trainLog string, rec rundir.Record) (time.Duration, error) {
	f, err := os.Open(trainLog)
	if err != nil {
		return 0, fmt.Errorf("stall latency: %w", err)
	}
	defer f.Close()
	re := regexp.MustCompile(ProgressRegex)
	var last time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		t, attempt, text, ok := rundir.ParseLogLine(sc.Bytes())
		if ok && attempt == rec.Attempt && re.Match(text) {
			last = t
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("stall latency: read %s: %w", trainLog, err)
	}
	if last.IsZero() {
		return 0, fmt.Errorf("stall latency: no progress line of attempt %d in %s", rec.Attempt, trainLog)
	}
	return rec.End.Sub(last), nil
}
