package main

import (
	"os"
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
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
	})
}
