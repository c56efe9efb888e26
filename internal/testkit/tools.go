package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// SkipLogEnv names the environment variable that .ci/run sets to a file: every test
// that goes without a tool appends one line there, so CI can list them all, which
// `go test` without -v never prints.
const SkipLogEnv = "TRAINWRAP_TEST_SKIP_LOG"

// UnderCI reports whether CI=true, where .ci/run installs every tool the tests need:
// a missing one there is a broken CI machine, not a reason to test less.
func UnderCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of the program name on PATH. Without it the test cannot
// run: under CI=true it fails naming pkg, the Debian package that provides name;
// elsewhere it skips, and the skip is recorded for .ci/run.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Lacks(t, name, pkg)
	}
	return p
}

// WantTool is NeedTool for a test that checks one thing more when the program is
// there: it returns "" without it, after logging what went unchecked; under CI=true
// it fails the test as NeedTool does.
func WantTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		lacks(t, name, pkg, false)
	}
	return p
}

// PythonWithTorch returns a python3 that imports torch, or "" when none does. The
// first python3 on PATH may be a private one (pyenv) without Debian's python3-torch,
// which serves the system's /usr/bin/python3.
func PythonWithTorch() string {
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = []string{p, "/usr/bin/python3"}
	}
	for _, p := range cands {
		if exec.Command(p, "-c", "import torch, torch.distributed").Run() == nil {
			return p
		}
	}
	return ""
}

// NeedTorch is NeedTool for a python3 that imports torch.
func NeedTorch(t testing.TB) string {
	t.Helper()
	p := PythonWithTorch()
	if p == "" {
		Lacks(t, "python3 with torch", "python3-torch")
	}
	return p
}

// WantTorch is WantTool for a python3 that imports torch.
func WantTorch(t testing.TB) string {
	t.Helper()
	p := PythonWithTorch()
	if p == "" {
		lacks(t, "python3 with torch", "python3-torch", false)
	}
	return p
}

// Lacks ends a test that needs what (a program, a Python module) and does not have
// it: under CI=true it fails naming pkg, the Debian package to install; elsewhere it
// skips and records the skip in the file $TRAINWRAP_TEST_SKIP_LOG names.
func Lacks(t testing.TB, what, pkg string) {
	t.Helper()
	lacks(t, what, pkg, true)
}

func lacks(t testing.TB, what, pkg string, skip bool) {
	t.Helper()
	if UnderCI() {
		t.Fatalf("%s is missing under CI=true: install the package %s (.ci/run installs it)", what, pkg)
	}
	msg := fmt.Sprintf("%s not installed (package %s)", what, pkg)
	if !skip {
		msg += ": that check was left out"
	}
	RecordSkip(t.Name(), msg)
	if skip {
		t.Skip(msg)
	}
	t.Log(msg)
}

// ScriptNeed is the testscript Condition for what a script needs: it returns have
// when have is true; when it is false it is an error under CI=true (the script
// fails naming pkg), and elsewhere false, recorded like a skip under the name test.
func ScriptNeed(test, what, pkg string, have bool) (bool, error) {
	if have {
		return true, nil
	}
	if UnderCI() {
		return false, fmt.Errorf("%s is missing under CI=true: install the package %s (.ci/run installs it)", what, pkg)
	}
	RecordSkip(test, fmt.Sprintf("%s not installed (package %s)", what, pkg))
	return false, nil
}

// RecordSkip appends "test: why" to the file $TRAINWRAP_TEST_SKIP_LOG names, if any.
// Lines are short and written with one append each, so test binaries running at once
// do not mix them.
func RecordSkip(test, why string) {
	path := os.Getenv(SkipLogEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testkit: record skip in %s: %v\n", path, err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s: %s\n", test, why); err != nil {
		fmt.Fprintf(os.Stderr, "testkit: record skip in %s: %v\n", path, err)
	}
}
