package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// hungCheck blocks in Run until release closes, ignoring its context, like a statfs
// on a dead NFS mount.
type hungCheck struct {
	release chan struct{}
}

func (hungCheck) Name() string { return "hung" }

func (h hungCheck) Run(context.Context) Result {
	<-h.release
	return Result{Status: OK}
}

// fixedCheck returns a fixed result: the registry's aggregation is what is tested.
type fixedCheck struct {
	name   string
	status Status
}

func (f fixedCheck) Name() string { return f.name }

func (f fixedCheck) Run(context.Context) Result { return Result{Status: f.status, Reason: "as set"} }

func TestHungCheckIsCutOff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		perCheck time.Duration
		reason   string
	}{
		{"default 5s", 0, "timed out after 5s"},
		{"short", 150 * time.Millisecond, "timed out after 150ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := hungCheck{release: make(chan struct{})}
			t.Cleanup(func() { close(h.release) }) // let the abandoned goroutine end
			dir := t.TempDir()
			checks := []Check{h, &DirsCheck{Dirs: []string{dir}}}
			limit := tc.perCheck
			if limit == 0 {
				limit = DefaultPerCheck
			}
			// The hung check is held until the test ends: Run returning at all
			// proves the per-check limit cut it off.
			var rep Report
			testkit.Returns(t, limit+time.Minute, "Run with a hung check", func() {
				rep = Run(context.Background(), checks, RunOptions{PerCheck: tc.perCheck})
			})
			wantResult(t, rep.Results[0], Fail, tc.reason)
			if rep.Results[0].Check != "hung" {
				t.Errorf("result 0 is %q, want hung", rep.Results[0].Check)
			}
			wantResult(t, rep.Results[1], OK)
			if rep.ExitCode() != ExitFailed {
				t.Errorf("exit code %d, want %d", rep.ExitCode(), ExitFailed)
			}
		})
	}
}

func TestBudgetBoundsTheWholeRun(t *testing.T) {
	t.Parallel()
	h := hungCheck{release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	rep := Run(context.Background(), []Check{h}, RunOptions{PerCheck: time.Hour, Budget: 100 * time.Millisecond})
	wantResult(t, rep.Results[0], Fail, "preflight budget ran out")
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		statuses []Status
		want     int
	}{
		{nil, ExitOK},
		{[]Status{OK, Skip}, ExitOK},
		{[]Status{Skip}, ExitOK},
		{[]Status{OK, Warn, Skip}, ExitWarnings},
		{[]Status{Warn, Fail, OK}, ExitFailed},
	}
	for _, tc := range cases {
		var checks []Check
		for i, s := range tc.statuses {
			checks = append(checks, fixedCheck{name: string(rune('a' + i)), status: s})
		}
		rep := runChecks(checks, RunOptions{})
		if got := rep.ExitCode(); got != tc.want {
			t.Errorf("%v: exit code %d, want %d", tc.statuses, got, tc.want)
		}
		for i, r := range rep.Results {
			if r.Status != tc.statuses[i] || r.Check != checks[i].Name() {
				t.Errorf("%v: result %d is %s %s, want %s %s (order kept)", tc.statuses, i, r.Check, r.Status, checks[i].Name(), tc.statuses[i])
			}
		}
	}
}

func TestSelectAndOnly(t *testing.T) {
	t.Parallel()
	all := All(Config{StateDir: t.TempDir()})
	names := Names(all)
	for _, want := range []string{"dirs", "disk", "memory", "shm", "rlimits", "gpu", "lock", "state", "leftovers", "job-config", "require", "command"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("All lacks %q: %v", want, names)
		}
	}
	got, err := Select(all, []string{"memory", "disk"})
	if err != nil {
		t.Fatal(err)
	}
	if n := Names(got); len(n) != 2 || n[0] != "disk" || n[1] != "memory" {
		t.Errorf("Select kept %v, want [disk memory] in check order", n)
	}
	if _, err := Select(all, []string{"disk", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("Select with an unknown name: %v, want an error naming it and the valid names", err)
	}
	rep := runChecks(all, RunOptions{Only: []string{"state"}})
	if len(rep.Results) != 1 || rep.Results[0].Check != "state" {
		t.Errorf("Only [state] ran %v", rep.Results)
	}
}

func TestFixRunsTheCheckAgain(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	missing := filepath.Join(root, "run", "logs")
	checks := []Check{&DirsCheck{Dirs: []string{missing}}}

	rep := runChecks(checks, RunOptions{})
	wantResult(t, rep.Results[0], Warn, "missing: "+missing)
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a run without --fix created the directory")
	}

	rep = runChecks(checks, RunOptions{Fix: true})
	wantResult(t, rep.Results[0], OK)
	if rep.Results[0].Fixed != "created "+missing {
		t.Errorf("Fixed = %q, want %q", rep.Results[0].Fixed, "created "+missing)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("fix did not create %s: %v", missing, err)
	}
}

func TestReportOutput(t *testing.T) {
	t.Parallel()
	rep := Report{Results: []Result{
		{Check: "disk", Status: OK, Value: "41.0 GB free on run dir"},
		{Check: "gpu", Status: Skip, Reason: "NVML library libnvidia-ml.so.1 not found"},
		{Check: "state", Status: Fail, Value: "corrupt", Reason: "bad JSON", Fixed: "moved it aside", Details: []string{"one detail"}},
	}, Duration: 12 * time.Millisecond}

	var plain bytes.Buffer
	if err := rep.Write(&plain, false); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"CHECK  STATUS  VALUE                    REASON\n" +
		"disk   ok      41.0 GB free on run dir\n" +
		"gpu    skip                             NVML library libnvidia-ml.so.1 not found\n" +
		"state  fail    corrupt                  bad JSON\n" +
		"  one detail\n" +
		"fixed state: moved it aside\n" +
		"1 ok, 0 warn, 1 fail, 1 skip in 12ms\n"
	if plain.String() != want {
		t.Errorf("plain table:\n%s\nwant:\n%s", plain.String(), want)
	}

	var colored bytes.Buffer
	if err := rep.Write(&colored, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(colored.String(), "\x1b[31mfail\x1b[0m  ") {
		t.Errorf("coloured table lacks a red, padded fail:\n%q", colored.String())
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Status   Status   `json:"status"`
		ExitCode int      `json:"exit_code"`
		Results  []Result `json:"results"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Status != Fail || back.ExitCode != 3 || len(back.Results) != 3 || back.Results[2].Fixed != "moved it aside" {
		t.Errorf("JSON round trip: %s", b)
	}
	if !strings.Contains(string(b), `"check":"disk"`) || !strings.Contains(string(b), `"duration_ns"`) {
		t.Errorf("JSON keys are not snake_case: %s", b)
	}
}

func TestParseBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"50GB", 50 * GB, true},
		{"4 GiB", 4 << 30, true},
		{"1.5T", 3 << 39, true}, // single letters are binary, as in du and docker --shm-size
		{"512mib", 512 << 20, true},
		{"1073741824", 1 << 30, true},
		{"", 0, false},
		{"-1GB", 0, false},
		{"lots", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
