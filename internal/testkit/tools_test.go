package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelperProcess is the test binary re-executed by TestToolVerdicts: it calls the
// helper TESTKIT_HELPER names for the tool TESTKIT_TOOL and does nothing otherwise.
func TestHelperProcess(t *testing.T) {
	tool := os.Getenv("TESTKIT_TOOL")
	switch os.Getenv("TESTKIT_HELPER") {
	case "need":
		t.Logf("found %q", NeedTool(t, tool, "pkg-"+tool))
	case "want":
		t.Logf("found %q", WantTool(t, tool, "pkg-"+tool))
	}
}

// A missing tool skips the test and is recorded elsewhere, but fails it under CI=true;
// a present one changes nothing. Each case runs in a real test process, because a
// failure or a skip ends the test that calls the helper.
func TestToolVerdicts(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, helper, tool, ci string
		fails, skips           bool
		out, logged            string
	}{
		{"need missing under CI", "need", "no-such-tool-x", "true", true, false, "no-such-tool-x is missing under CI=true: install the package pkg-no-such-tool-x", ""},
		{"need missing locally", "need", "no-such-tool-x", "", false, true, "no-such-tool-x not installed (package pkg-no-such-tool-x)", "TestHelperProcess: no-such-tool-x not installed (package pkg-no-such-tool-x)\n"},
		{"want missing under CI", "want", "no-such-tool-x", "true", true, false, "install the package pkg-no-such-tool-x", ""},
		{"want missing locally", "want", "no-such-tool-x", "", false, false, "that check was left out", "TestHelperProcess: no-such-tool-x not installed (package pkg-no-such-tool-x): that check was left out\n"},
		{"need present under CI", "need", "sh", "true", false, false, `found "/`, ""},
		{"want present locally", "want", "sh", "", false, false, `found "/`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skipLog := filepath.Join(t.TempDir(), "skips")
			cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTKIT_HELPER="+c.helper, "TESTKIT_TOOL="+c.tool, "CI="+c.ci, SkipLogEnv+"="+skipLog)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != c.fails {
				t.Fatalf("failed=%v (%v), want %v:\n%s", failed, err, c.fails, out)
			}
			if skipped := strings.Contains(string(out), "--- SKIP: TestHelperProcess"); skipped != c.skips {
				t.Errorf("skipped=%v, want %v:\n%s", skipped, c.skips, out)
			}
			if !strings.Contains(string(out), c.out) {
				t.Errorf("output lacks %q:\n%s", c.out, out)
			}
			logged, err := os.ReadFile(skipLog)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if string(logged) != c.logged {
				t.Errorf("skip log %q, want %q", logged, c.logged)
			}
		})
	}
}

func TestScriptNeed(t *testing.T) {
	cases := []struct {
		name, ci string
		have     bool
		want     bool
		err      string
		logged   string
	}{
		{"present", "true", true, true, "", ""},
		{"missing locally", "", false, false, "", "TestScripts: torch not installed (package python3-torch)\n"},
		{"missing under CI", "true", false, false, "torch is missing under CI=true: install the package python3-torch", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			skipLog := filepath.Join(t.TempDir(), "skips")
			t.Setenv("CI", c.ci)
			t.Setenv(SkipLogEnv, skipLog)
			got, err := ScriptNeed("TestScripts", "torch", "python3-torch", c.have)
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want one containing %q", err, c.err)
			}
			logged, _ := os.ReadFile(skipLog)
			if string(logged) != c.logged {
				t.Errorf("skip log %q, want %q", logged, c.logged)
			}
		})
	}
}
