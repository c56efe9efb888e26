package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/trainwrap/trainwrap/chaos"
	"github.com/trainwrap/trainwrap/internal/exitcode"
)

// ChaosCmd groups the fake trainer, the fault injector and the recovery suite.
type ChaosCmd struct {
	Train  ChaosTrainCmd  `cmd:"" help:"A fake training job that writes real HF checkpoints and dies on cue (--fail MODE --fail-at STEP). Supervise it with --progress-regex 'global_step=(\\d+)'."`
	Inject ChaosInjectCmd `cmd:"" help:"Perturb the job the live supervisor of --state-dir runs: hang (SIGSTOP it), kill (SIGKILL its leader), term (SIGTERM its leader)."`
	Suite  ChaosSuiteCmd  `cmd:"" help:"Run every failure mode under the real supervisor and check what was detected and recovered."`
}

// ChaosTrainCmd is `trainwrap chaos train`.
type ChaosTrainCmd struct {
	chaos.TrainOptions
}

// Run runs the fake trainer; a Python-like crash exits with its code after its
// traceback, signal deaths never return.
func (c *ChaosTrainCmd) Run(g *Globals) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("chaos train: find this program: %w", err)
	}
	// No signal handling here: a real job dies of SIGTERM by default, and so does this.
	err = chaos.Train(context.Background(), c.TrainOptions, exe, g.Stdout, g.Stderr)
	var ee *chaos.ExitError
	if errors.As(err, &ee) {
		return exitcode.New(ee.Code, nil)
	}
	if err != nil {
		return exitcode.New(2, err)
	}
	return nil
}

// ChaosInjectCmd is `trainwrap chaos inject MODE`.
type ChaosInjectCmd struct {
	Mode string `arg:"" enum:"hang,kill,term" help:"hang: SIGSTOP every process of the job; kill: SIGKILL its leader; term: SIGTERM its leader."`
}

// Run signals the job's processes and lists them.
func (c *ChaosInjectCmd) Run(g *Globals) error {
	if _, err := chaos.Inject(g.StateDir, c.Mode, g.Stdout); err != nil {
		return exitcode.New(1, err)
	}
	return nil
}

// ChaosSuiteCmd is `trainwrap chaos suite`.
type ChaosSuiteCmd struct {
	Only     []string      `help:"Run only these scenarios (repeat or comma-separate); default all." placeholder:"MODE"`
	KeepDir  bool          `help:"Keep the temporary run directories and print where they are."`
	JSON     bool          `help:"Print the results as JSON."`
	Parallel int           `help:"Scenarios run at once." default:"4"`
	Timeout  time.Duration `help:"Give up on one scenario after this long." default:"60s"`
}

// Run runs the suite and exits 1 when any scenario fails.
func (c *ChaosSuiteCmd) Run(g *Globals) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("chaos suite: find this program: %w", err)
	}
	res, err := chaos.RunSuite(context.Background(), chaos.SuiteOptions{
		Exe: exe, Only: c.Only, KeepDir: c.KeepDir, Parallel: c.Parallel, Timeout: c.Timeout,
		Progress: g.Stderr,
	})
	if err != nil {
		return exitcode.New(2, err)
	}
	if c.JSON {
		err = chaos.WriteJSON(g.Stdout, res)
	} else {
		err = chaos.WriteTable(g.Stdout, res)
	}
	if err != nil {
		return fmt.Errorf("chaos suite: write results: %w", err)
	}
	if !chaos.Passed(res) {
		return exitcode.New(1, nil)
	}
	return nil
}
