package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run trainwrap in-process as the command `trainwrap`, and
// lets tests re-execute the test binary as trainwrap (the chaos trainer, the guard).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"trainwrap": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
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
		return exec.Command("python3", "-c", "import torch, torch.distributed").Run() == nil, nil
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
