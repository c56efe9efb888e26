package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func configFile(name string) string {
	return filepath.Join("..", "testdata", "preflight", "config", name)
}

// TestJobConfig parses the fixtures in testdata/preflight/config: an error names the
// file, line and column.
func TestJobConfig(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		files  []string
		want   Status
		reason []string
	}{
		{nil, Skip, []string{"no --job-config"}},
		{[]string{configFile("good.json"), configFile("good.yaml"), configFile("noext.cfg")}, OK, nil},
		{[]string{configFile("broken.json")}, Fail, []string{configFile("broken.json") + ":3:16: invalid JSON"}},
		{[]string{configFile("truncated.json")}, Fail, []string{configFile("truncated.json") + ":3:", "unexpected end of JSON input"}},
		{[]string{configFile("broken.yaml")}, Fail, []string{configFile("broken.yaml") + ":3:7: invalid YAML: mapping value is not allowed"}},
		{[]string{configFile("unclosed.yml")}, Fail, []string{configFile("unclosed.yml") + ":4:3: invalid YAML"}},
		{[]string{configFile("braces.conf")}, Fail, []string{configFile("braces.conf") + ":1:23: invalid JSON"}},
		{[]string{configFile("good.json"), configFile("missing.yaml")}, Fail, []string{"job config stat", "missing.yaml: no such file"}},
		{[]string{fifo}, Fail, []string{"is not a regular file"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.files, ","), func(t *testing.T) {
			t.Parallel()
			wantResult(t, runCheck(t, &JobConfigCheck{Files: tc.files}), tc.want, tc.reason...)
		})
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	model := t.TempDir()
	weights := filepath.Join(model, "model.safetensors")
	if err := os.WriteFile(weights, []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		paths  []string
		want   Status
		reason string
	}{
		{"none", nil, Skip, "no --require"},
		{"present", []string{model, weights}, OK, ""},
		{"missing base model", []string{weights, filepath.Join(model, "base-7b")}, Fail, filepath.Join(model, "base-7b") + " does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantResult(t, runCheck(t, &RequireCheck{Paths: tc.paths}), tc.want, tc.reason)
		})
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "train.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644); err != nil { // not executable
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cmd    []string
		want   Status
		reason string
	}{
		{"none", nil, Skip, "no command given"},
		{"on PATH", []string{"sh", "-c", "true"}, OK, ""},
		{"not on PATH", []string{"trainwrap-no-such-trainer", "--lr", "1"}, Fail, "executable file not found in $PATH"},
		{"not executable", []string{script}, Fail, "check the path and its execute permission"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCheck(t, &CommandCheck{Command: tc.cmd})
			wantResult(t, r, tc.want, tc.reason)
			if tc.want == OK && !filepath.IsAbs(r.Value) {
				t.Errorf("value %q, want the resolved path", r.Value)
			}
		})
	}
}
