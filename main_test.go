package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/trainwrap/trainwrap/internal/testkit"
	"github.com/trainwrap/trainwrap/preflight"
)

// TestMain lets testscript run trainwrap in-process as the command `trainwrap`, and
// lets tests re-execute the test binary as trainwrap (the chaos trainer, the guard).
//
// With $TRAINWRAP_TEST_ARGV_LOG set, every trainwrap process (the one a script starts
// and each child it re-executes, which inherit the variable) first appends its argv to
// that file, so a script can count the processes a run started.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"trainwrap": func() {
			if p := os.Getenv("TRAINWRAP_TEST_ARGV_LOG"); p != "" {
				logArgv(p)
			}
			main()
		},
	})
}

// logArgv appends os.Args as one line to path; O_APPEND keeps concurrent lines whole.
func logArgv(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "TRAINWRAP_TEST_ARGV_LOG:", err)
		os.Exit(2)
	}
	_, err = f.WriteString(strings.Join(os.Args, " ") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "TRAINWRAP_TEST_ARGV_LOG:", err)
		os.Exit(2)
	}
}

// TestScripts runs the end-to-end CLI scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			env.Setenv("TRAINWRAP_TEST_EXE", exe)
			td, err := filepath.Abs("testdata")
			if err != nil {
				return err
			}
			env.Setenv("TESTDATA", td)
			// Debian's python3-torch lives in the system python3, which another
			// python3 (pyenv) may shadow on PATH: put the one with torch first.
			if py := torchPython(); py != "" {
				bin := filepath.Join(env.WorkDir, ".python-with-torch")
				if err := os.MkdirAll(bin, 0o755); err != nil {
					return err
				}
				if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
					return err
				}
				env.Setenv("PATH", bin+string(filepath.ListSeparator)+env.Getenv("PATH"))
			}
			return nil
		},
		Condition:           scriptCondition,
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}

// scriptCondition adds conditions for what only some machines have: [torch] when
// python3 can import torch (Debian's python3-torch), [have:PROG] when PROG is on PATH,
// [root] when running as root, [nvml] when the NVML library loads. A tool .ci/run
// installs that is missing makes [torch] and [have:PROG] an error under CI=true, so
// the script fails instead of skipping.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "torch":
		return testkit.ScriptNeed("TestScripts", "python3 with torch", "python3-torch", torchPython() != "")
	case "root":
		return os.Geteuid() == 0, nil
	case "nvml":
		return preflight.HaveNVML(), nil
	}
	if prog, ok := strings.CutPrefix(cond, "have:"); ok {
		pkg, known := scriptTools[prog]
		if !known {
			return false, fmt.Errorf("[have:%s]: add %s and its package to scriptTools", prog, prog)
		}
		_, err := exec.LookPath(prog)
		return testkit.ScriptNeed("TestScripts", prog, pkg, err == nil)
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// scriptTools are the programs scripts may ask for with [have:PROG], with the Debian
// package that provides each.
var scriptTools = map[string]string{
	"xxh64sum": "xxhash",
	"gzip":     "gzip",
}

// torchPython is testkit.PythonWithTorch, looked up once for all scripts.
var torchPython = sync.OnceValue(testkit.PythonWithTorch)
