package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
)

// TestMain lets the tests re-execute this test binary as the trainer: with argv[0]
// "trainwrap" it runs `trainwrap chaos train ...` (the orphan mode re-executes itself
// that way too), as the real CLI does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "trainwrap" {
		os.Exit(trainMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type trainCLI struct {
	Chaos struct {
		Train struct {
			TrainOptions
		} `cmd:""`
	} `cmd:""`
}

func trainMain(args []string) int {
	var cli trainCLI
	parser, err := kong.New(&cli, kong.Name("trainwrap"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, err := parser.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err = Train(context.Background(), cli.Chaos.Train.TrainOptions, exe, os.Stdout, os.Stderr)
	if ee, ok := err.(*ExitError); ok {
		return ee.Code
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}
