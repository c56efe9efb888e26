// Command trainwrap supervises long GPU training jobs: preflight health checks, a child
// in its own process group that cannot outlive its supervisor, inline crash
// classification, checkpoint-aware restarts with backoff, and exit codes that name the
// cause. See README.md.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/trainwrap/trainwrap/internal/exitcode"
	"github.com/trainwrap/trainwrap/shim"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Globals are the flags every command shares, and where commands write.
type Globals struct {
	StateDir string    `help:"Run directory: lock, state.json, runs.jsonl, logs." default:".trainwrap" type:"path" name:"state-dir"`
	Stdout   io.Writer `kong:"-"`
	Stderr   io.Writer `kong:"-"`
	// Signals holds what arrived since main started (shim.NotifyEarly); run and guard
	// take it over, every other command gives the signals back.
	Signals chan os.Signal `kong:"-"`
}

// CLI is the command tree.
type CLI struct {
	Globals

	Run         RunCmd         `cmd:"" default:"withargs" help:"Supervise a training command: trainwrap [run] [flags] -- CMD ARGS..."`
	Preflight   PreflightCmd   `cmd:"" help:"Run the health checks; --fix repairs what is safe to repair."`
	Classify    ClassifyCmd    `cmd:"" help:"Post-mortem: name the cause of a crash from logs."`
	Checkpoints CheckpointsCmd `cmd:"" help:"List, verify, hash and prune checkpoints."`
	Chaos       ChaosCmd       `cmd:"" help:"Fake trainer, fault injector and recovery suite."`
	Status      StatusCmd      `cmd:"" help:"What the supervisor of this run dir is doing now, or did last."`
	History     HistoryCmd     `cmd:"" help:"One row per attempt: start, end, class, step reached, decision."`
	Report      ReportCmd      `cmd:"" help:"Write the status page of a run as one HTML file."`
	Version     VersionCmd     `cmd:"" help:"Print the version."`
	Guard       GuardCmd       `cmd:"" hidden:"" help:"Internal: sweeps the job's processes when the supervisor dies."`
	SampleGPUs  SampleGPUsCmd  `cmd:"" hidden:"" name:"sample-gpus" help:"Internal: print GPU stats as JSON for the resource sampler."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintf(g.Stdout, "trainwrap %s\n", version)
	return nil
}

func main() {
	// Before anything else: a SIGUSR1 that arrives while flags and config load must
	// wait for the supervisor, not kill us with its default action.
	sigs := shim.NotifyEarly()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// run parses args and runs the command, returning the process exit code. It is main
// without os.Exit, so tests can call it in-process. sigs is from shim.NotifyEarly, or
// nil.
func run(args []string, stdout, stderr io.Writer, sigs chan os.Signal) int {
	var cli CLI
	cli.Stdout, cli.Stderr, cli.Signals = stdout, stderr, sigs
	// kong calls Exit after --help; the parse that follows must not turn it into an
	// error.
	exited, exitCode := false, 0
	parser, err := kong.New(&cli,
		kong.Name("trainwrap"),
		kong.Description("Supervise long GPU training jobs: preflight, restart with backoff, crash classification."),
		kong.UsageOnError(),
		settingEnvars(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited, exitCode = true, code }),
		kong.Bind(&cli.Globals),
	)
	if err != nil {
		fmt.Fprintf(stderr, "trainwrap: %v\n", err)
		return 2
	}
	ctx, err := parser.Parse(args)
	if exited {
		return exitCode
	}
	if err != nil {
		// A mistake in the config file names the file and key itself; kong's
		// "--flag=TYPE:" in front would suggest it was typed on the command line.
		var ce configError
		if errors.As(err, &ce) {
			err = ce
		}
		fmt.Fprintf(stderr, "trainwrap: %v\n", err)
		return 2
	}
	if ctx == nil || ctx.Command() == "" {
		return 0
	}
	warnIgnoredEnv(ctx, stderr)
	if cmd, _, _ := strings.Cut(ctx.Command(), " "); cmd != "run" && cmd != "guard" {
		shim.ReleaseSignals(sigs)
	}
	if err := ctx.Run(&cli.Globals); err != nil {
		// A command's exit code comes with its message, or alone when there is none to
		// show; any other error is a plain failure.
		code, msg, _ := exitcode.Of(err)
		if msg != nil {
			fmt.Fprintf(stderr, "trainwrap: %v\n", msg)
		}
		return code
	}
	return 0
}
