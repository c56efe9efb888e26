package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"
	"golang.org/x/sys/unix"
)

// maxConfigSize bounds what the config check reads: a job config is text, and a huge
// file is a wrong path, not a config.
const maxConfigSize = 64 << 20

// JobConfigCheck makes sure each of the job's config files parses, as JSON (.json) or
// YAML (.yaml, .yml; other names by their first character), and names the line and
// column of the first error. There is no fix: a user's config is never rewritten.
type JobConfigCheck struct {
	Files []string
}

// Name is "job-config".
func (*JobConfigCheck) Name() string { return "job-config" }

// Run parses every file.
func (c *JobConfigCheck) Run(ctx context.Context) Result {
	if len(c.Files) == 0 {
		return Result{Status: Skip, Reason: "no --job-config given"}
	}
	res := Result{Status: OK, Value: fmt.Sprintf("%d files", len(c.Files))}
	for _, f := range c.Files {
		if ctx.Err() != nil {
			return Result{Status: Fail, Reason: fmt.Sprintf("cancelled: %v", ctx.Err())}
		}
		if err := parseConfig(f); err != nil {
			res.Status = Fail
			res.Reason = joinReason(res.Reason, err.Error())
		}
	}
	return res
}

// parseConfig reads and parses one config file. Only regular files are read: a FIFO
// or a device given by mistake would block or never end.
func parseConfig(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("job config %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("job config %s is not a regular file", path)
	}
	if fi.Size() > maxConfigSize {
		return fmt.Errorf("job config %s is %s; that is not a config file", path, formatBytes(uint64(fi.Size())))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("job config %w", err)
	}
	if isJSON(path, b) {
		return parseJSON(path, b)
	}
	return parseYAML(path, b)
}

// isJSON decides the format by extension, then by the first non-blank character.
func isJSON(path string, b []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return true
	case ".yaml", ".yml":
		return false
	}
	t := bytes.TrimSpace(b)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// parseJSON reports a syntax or type error with its line and column.
func parseJSON(path string, b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(b, se.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %v", path, line, col, se)
	case errors.As(err, &te):
		line, col := lineCol(b, te.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %v", path, line, col, te)
	}
	return fmt.Errorf("%s: invalid JSON: %w", path, err)
}

// lineCol turns a byte offset into a 1-based line and column. encoding/json reports
// the offset just past the byte that broke the parse.
func lineCol(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	if off > 0 {
		off-- // point at the offending byte
	}
	before := b[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// parseYAML reports the first error with the line and column goccy/go-yaml gives.
func parseYAML(path string, b []byte) error {
	var v any
	err := yaml.Unmarshal(b, &v)
	if err == nil {
		return nil
	}
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return fmt.Errorf("%s:%d:%d: invalid YAML: %s", path, pos.Line, pos.Column, ye.GetMessage())
	}
	return fmt.Errorf("%s: invalid YAML: %w", path, err)
}

// RequireCheck makes sure the paths the job needs (a base model, a dataset, a
// tokenizer) exist and are readable: the seed's most common early crash was a
// missing base model found an hour into loading.
type RequireCheck struct {
	Paths []string
}

// Name is "require".
func (*RequireCheck) Name() string { return "require" }

// Run checks each path with access(2): read permission, plus search permission on a
// directory.
func (c *RequireCheck) Run(ctx context.Context) Result {
	if len(c.Paths) == 0 {
		return Result{Status: Skip, Reason: "no --require given"}
	}
	res := Result{Status: OK, Value: fmt.Sprintf("%d paths", len(c.Paths))}
	for _, p := range c.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			res.Status = Fail
			if errors.Is(err, os.ErrNotExist) {
				res.Reason = joinReason(res.Reason, fmt.Sprintf("required path %s does not exist", p))
			} else {
				res.Reason = joinReason(res.Reason, fmt.Sprintf("required path: %v", err))
			}
			continue
		}
		mode := uint32(unix.R_OK)
		if fi.IsDir() {
			mode |= unix.X_OK
		}
		if err := unix.Access(p, mode); err != nil {
			res.Status = Fail
			res.Reason = joinReason(res.Reason, fmt.Sprintf("required path %s is not readable: %v", p, err))
		}
	}
	return res
}

// CommandCheck makes sure the job's executable resolves: on PATH for a bare name,
// as an executable file for a path.
type CommandCheck struct {
	Command []string
}

// Name is "command".
func (*CommandCheck) Name() string { return "command" }

// Run resolves the executable with exec.LookPath, as the supervisor will.
func (c *CommandCheck) Run(ctx context.Context) Result {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return Result{Status: Skip, Reason: "no command given"}
	}
	name := c.Command[0]
	path, err := exec.LookPath(name)
	if err != nil {
		hint := "install it or fix PATH"
		if strings.Contains(name, "/") {
			hint = "check the path and its execute permission"
		}
		return Result{Status: Fail, Reason: fmt.Sprintf("command %s: %v; %s", name, unwrapExec(err), hint)}
	}
	return Result{Status: OK, Value: path}
}

// unwrapExec drops exec.Error's own "exec: NAME:" prefix, which the caller repeats.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}
