package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run trainwrap in-process as the command `trainwrap`, and
// lets tests re-execute the test binary as trainwrap (the chaos trainer, the guard).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"trainwrap": main,
	})
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
// python3 can import torch (Debian's python3-torch; .ci/run installs it), [root] when
// running as root.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "torch":
		return torchPython() != "", nil
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// torchPython is a python3 that can import torch: the first on PATH, else the
// system's; "" when neither can.
var torchPython = sync.OnceValue(func() string {
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import torch, torch.distributed").Run() == nil {
			return p
		}
	}
	return ""
})
