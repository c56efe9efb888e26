// Package jsonl reads the run directory's advisory JSON-lines files (samples.jsonl,
// metrics.jsonl): one reader, so that every such file forgives a torn line the same way.
package jsonl

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
)

// Read decodes each line of path into a T and keeps those keep accepts (nil keeps
// all). A missing file is no values. A line that does not parse, as the last one of a
// writer killed mid-write does, is skipped: these files are advisory, and one torn
// line must not hide the rest.
func Read[T any](path string, keep func(*T) bool) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			var v T
			if json.Unmarshal(line, &v) == nil && (keep == nil || keep(&v)) {
				out = append(out, v)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
