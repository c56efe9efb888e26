package main

import (
	"testing"

	"github.com/alecthomas/kong"
)

// Only run's and preflight's settings (and --state-dir) read TRAINWRAP_* variables,
// and the flags that confirm a deletion, a move or a kill are command line only
// wherever they appear, so that a flag added later under one of these names cannot
// be turned on by a variable or a config file.
func TestOnlySettingsReadEnv(t *testing.T) {
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("trainwrap"), settingEnvars())
	if err != nil {
		t.Fatal(err)
	}
	confirmations := map[string]bool{"yes": true, "delete-incomplete": true, "force": true, "fix": true}
	seen := map[string]bool{}
	var walk func(n *kong.Node, setting bool)
	walk = func(n *kong.Node, setting bool) {
		setting = setting || settingCommand(n)
		for _, f := range n.Flags {
			want := ""
			switch {
			case f.Name == "state-dir":
				want = "TRAINWRAP_STATE_DIR"
			case setting && !commandLineOnly(f):
				want = envName(f.Name)
			}
			got := ""
			if len(f.Envs) > 0 {
				got = f.Envs[0]
			}
			if got != want || len(f.Envs) > 1 {
				t.Errorf("%s --%s reads env %v, want %q", n.Path(), f.Name, f.Envs, want)
			}
			if confirmations[f.Name] {
				seen[f.Name] = true
				if !commandLineOnly(f) {
					t.Errorf("%s --%s confirms a destructive action but is not tagged cmdline:\"\"", n.Path(), f.Name)
				}
			}
		}
		for _, ch := range n.Children {
			walk(ch, setting)
		}
	}
	walk(parser.Model.Node, false)
	for name := range confirmations {
		if !seen[name] {
			t.Errorf("no flag --%s: update the list of confirmations", name)
		}
	}
	if got := envName("max-failures-without-progress"); got != "TRAINWRAP_MAX_FAILURES_WITHOUT_PROGRESS" {
		t.Errorf("envName = %q", got)
	}
}
