package ckptwrite

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// trainwrap never writes a checkpoint: of the module's packages only the chaos
// trainer may import the writers outside tests.
func TestOnlyChaosImportsTheWriters(t *testing.T) {
	gobin := testkit.NeedTool(t, "go", "golang-go")
	out, err := exec.Command(gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/trainwrap/trainwrap/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/trainwrap/trainwrap/internal/ckptwrite"
	allowed := map[string]bool{"github.com/trainwrap/trainwrap/chaos": true}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		seen++
		for _, imp := range strings.Fields(imports) {
			if imp == self && !allowed[pkg] {
				t.Errorf("%s imports %s; only chaos and tests may", pkg, self)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list named %d packages:\n%s", seen, out)
	}
}
