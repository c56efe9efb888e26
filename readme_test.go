package main

import (
	"os"
	"path/filepath"
	"regexp"
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

// The README's Layout table names every top-level folder, every internal/ package and
// every file of shim/, and every path it names exists: the layout a newcomer reads is
// the tree. A row's first cell names paths from the root; a file or folder named in its
// second cell lies in the row's first folder.
func TestREADMELayoutMatchesTree(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(b), "### Layout\n")
	if !ok {
		t.Fatal("README has no ### Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n\n")
	code := regexp.MustCompile("`([^`]+)`")
	isPath := func(s string) bool {
		return strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".go") || strings.HasSuffix(s, ".sh")
	}
	named := map[string]bool{}
	for _, row := range strings.Split(layout, "\n") {
		cells := strings.Split(row, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "path" {
			continue
		}
		folder := ""
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			p := strings.ReplaceAll(m[1], "*", "")
			named[p] = true
			if strings.HasSuffix(p, "/") && folder == "" {
				folder = p
			}
			if !strings.Contains(m[1], "*") {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("README's Layout names %s, which is not in the tree", m[1])
				}
			}
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			if !isPath(m[1]) {
				continue
			}
			p := m[1]
			if !strings.HasPrefix(p, folder) {
				p = filepath.Join(folder, p)
			}
			named[p] = true
			if got, _ := filepath.Glob(strings.TrimSuffix(p, "/")); len(got) == 0 {
				t.Errorf("README's Layout names %s in %s, which is not in the tree", m[1], folder)
			}
		}
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "bin" && !namedUnder(named, e.Name()+"/") {
			t.Errorf("README's Layout does not name the folder %s/", e.Name())
		}
	}
	internal, err := os.ReadDir("internal")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range internal {
		if e.IsDir() && !named["internal/"+e.Name()+"/"] {
			t.Errorf("README's Layout does not name internal/%s/", e.Name())
		}
	}
	shimFiles, err := filepath.Glob(filepath.Join("shim", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range shimFiles {
		if !strings.HasSuffix(f, "_test.go") && !named[f] {
			t.Errorf("README's Layout does not name %s", f)
		}
	}
}

// namedUnder reports whether dir or a path below it is named.
func namedUnder(named map[string]bool, dir string) bool {
	for p := range named {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}
