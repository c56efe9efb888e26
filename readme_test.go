package main

import (
	"os"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// The README documents every command and every flag: a flag added without a line in
// the README fails here.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("trainwrap"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		if n.Hidden {
			return
		}
		if n.Type == kong.CommandNode && !strings.Contains(readme, "trainwrap "+n.Path()) && !strings.Contains(readme, n.Path()) {
			t.Errorf("README does not mention the command %q", n.Path())
		}
		for _, f := range n.Flags {
			if f.Hidden || f.Name == "help" {
				continue
			}
			if !strings.Contains(readme, "--"+f.Name) {
				t.Errorf("README does not document --%s (%s)", f.Name, n.Path())
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(parser.Model.Node)
}
