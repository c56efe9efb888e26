package training

import (
	"fmt"

	"github.com/trainwrap/trainwrap/internal/jsonl"
)

// MaxSeriesBytes bounds the series file. Past it the file is thinned, so a week-long
// run keeps its whole curve at a coarser grain instead of only its newest part.
const MaxSeriesBytes = 8 << 20

// ReadSeries reads a series file. A missing file is no samples; a line that does not
// parse (torn by a crash) is skipped, since the series is advisory.
func ReadSeries(path string) ([]Sample, error) {
	out, err := jsonl.Read(path, func(s *Sample) bool { return s.Name != "" })
	if err != nil {
		return out, fmt.Errorf("read series %s: %w", path, err)
	}
	return out, nil
}
