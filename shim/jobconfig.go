package shim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// errNoKey says a key is not in a job config.
var errNoKey = errors.New("no such key")

// configPath is the go-yaml path of a dotted key: "training.batch_size" is
// $.training.batch_size.
func configPath(key string) (*yaml.Path, error) {
	b := (&yaml.PathBuilder{}).Root()
	for _, part := range strings.Split(key, ".") {
		if part == "" {
			return nil, fmt.Errorf("key %q: empty part; name nested keys as outer.inner", key)
		}
		b = b.Child(part)
	}
	return b.Build(), nil
}

// parseConfig parses a JSON or YAML job config (JSON is YAML) into its syntax tree,
// which keeps comments, key order and layout for the rewritten copy.
func parseConfig(path string) (*ast.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("job config: %w", err)
	}
	f, err := parser.ParseBytes(b, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("job config %s: %v", path, err)
	}
	return f, nil
}

// readConfigInt reads the integer at key in the parsed config; errNoKey when the key is
// not there.
func readConfigInt(f *ast.File, key string) (int, error) {
	p, err := configPath(key)
	if err != nil {
		return 0, err
	}
	n, err := p.FilterFile(f)
	if err != nil || n == nil {
		return 0, errNoKey
	}
	i, ok := n.(*ast.IntegerNode)
	if !ok {
		return 0, fmt.Errorf("key %s is %s, not a whole number", key, strings.TrimSpace(n.String()))
	}
	var v int
	if err := yaml.NodeToValue(i, &v); err != nil {
		return 0, fmt.Errorf("key %s: %v", key, err)
	}
	return v, nil
}

// writeConfigCopy writes src with the integer values at the given keys replaced to
// dst; src itself is never written. The values are spliced into the original bytes,
// so the copy keeps every comment, key order and layout of the user's file (JSON or
// YAML alike); a person diffing the two sees only the changed numbers.
func writeConfigCopy(src, dst string, values map[string]int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("job config: %w", err)
	}
	f, err := parser.ParseBytes(b, parser.ParseComments)
	if err != nil {
		return fmt.Errorf("job config %s: %v", src, err)
	}
	type splice struct {
		at, n int
		text  string
	}
	var edits []splice
	for key, v := range values {
		p, err := configPath(key)
		if err != nil {
			return err
		}
		n, err := p.FilterFile(f)
		i, ok := n.(*ast.IntegerNode)
		if err != nil || !ok {
			return fmt.Errorf("job config %s: %s is not a whole number (any more?); was the file changed since trainwrap started?", src, key)
		}
		at, err := tokenOffset(b, i.Token.Position.Line, i.Token.Position.Column, i.Token.Value)
		if err != nil {
			return fmt.Errorf("job config %s: %s: %w", src, key, err)
		}
		edits = append(edits, splice{at, len(i.Token.Value), strconv.Itoa(v)})
	}
	slices.SortFunc(edits, func(a, b splice) int { return b.at - a.at })
	out := slices.Clone(b)
	for _, e := range edits {
		out = slices.Concat(out[:e.at], []byte(e.text), out[e.at+e.n:])
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return fmt.Errorf("job config copy: %w", err)
	}
	return nil
}

// tokenOffset is the byte offset of a token at 1-based line and column in b, checked
// against the token's text: a parser's idea of columns is not trusted blindly.
func tokenOffset(b []byte, line, col int, text string) (int, error) {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return 0, fmt.Errorf("no line %d", line)
		}
		off += i + 1
	}
	// The column counts runes.
	for c := 1; c < col && off < len(b); c++ {
		_, size := utf8.DecodeRune(b[off:])
		off += size
	}
	if !bytes.HasPrefix(b[off:], []byte(text)) {
		return 0, fmt.Errorf("value %q not found at line %d column %d", text, line, col)
	}
	return off, nil
}
