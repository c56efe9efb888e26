package training

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxSeriesBytes bounds the series file. Past it the file is thinned, so a week-long
// run keeps its whole curve at a coarser grain instead of only its newest part.
const MaxSeriesBytes = 8 << 20

// ReadSeries reads a series file. A missing file is no samples; a line that does not
// parse (torn by a crash) is skipped, since the series is advisory.
func ReadSeries(path string) ([]Sample, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read series %s: %w", path, err)
	}
	defer f.Close()
	var out []Sample
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 1 {
			var s Sample
			if json.Unmarshal(line, &s) == nil && s.Name != "" {
				out = append(out, s)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read series %s: %w", path, err)
		}
	}
}
