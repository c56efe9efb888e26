package training

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// SeriesWriter appends samples to a series file as JSON lines and keeps the file
// under its bound by thinning: when an append would pass it, the older part of the
// file keeps every other sample and the newest part stays whole, written to a
// temporary file and renamed over the old one, so a reader sees either file whole.
// Each metric is thinned alike, so every curve keeps its whole length.
// Not safe for concurrent use: one goroutine writes.
type SeriesWriter struct {
	path string
	max  int64
	f    *os.File
	size int64
	buf  bytes.Buffer
	enc  *json.Encoder
}

// OpenSeries opens path for appending under MaxSeriesBytes, creating it.
func OpenSeries(path string) (*SeriesWriter, error) { return OpenSeriesMax(path, MaxSeriesBytes) }

// OpenSeriesMax is OpenSeries with another bound, in bytes (at least 1 KiB). A last
// line torn by a crash is ended first, so that the next sample is not glued to it.
func OpenSeriesMax(path string, maxBytes int64) (*SeriesWriter, error) {
	if maxBytes < 1024 {
		return nil, fmt.Errorf("series %s: bound %d bytes is below 1 KiB", path, maxBytes)
	}
	w := &SeriesWriter{path: path, max: maxBytes}
	w.enc = json.NewEncoder(&w.buf)
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *SeriesWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("series: open %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("series: stat %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	if w.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, w.size-1); err != nil {
			f.Close()
			return fmt.Errorf("series: read %s: %w", w.path, err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return fmt.Errorf("series: write %s: %w", w.path, err)
			}
			w.size++
		}
	}
	return nil
}

// Append writes samples, one JSON line each; samples whose value JSON cannot hold
// (NaN, ±Inf) are left out. It thins the file first when the lines would take it past
// its bound. A failed write is returned; the file then holds whole lines up to the
// failure, at most one torn.
func (w *SeriesWriter) Append(samples []Sample) error {
	if w.f == nil {
		return fmt.Errorf("series %s: closed", w.path)
	}
	w.buf.Reset()
	for _, s := range samples {
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		if err := w.enc.Encode(s); err != nil {
			return fmt.Errorf("series %s: encode %s: %w", w.path, s.Name, err)
		}
	}
	if w.buf.Len() == 0 {
		return nil
	}
	if w.size+int64(w.buf.Len()) > w.max {
		if err := w.thin(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("series: write %s: %w", w.path, err)
	}
	return nil
}

// thin rewrites the file to about 5/8 of its bound: the newest quarter of the bound
// whole, every other sample of each metric in the rest. Repeated, the run's start is kept at an ever
// coarser grain rather than dropped.
func (w *SeriesWriter) thin() error {
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("series: thin %s: %w", w.path, err)
	}
	var lines [][]byte
	br := bufio.NewReader(w.f)
	for {
		l, err := br.ReadBytes('\n')
		if len(l) > 0 && l[len(l)-1] == '\n' && len(l) > 1 {
			lines = append(lines, l)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("series: thin %s: %w", w.path, err)
		}
	}
	keepWhole := w.max / 4
	cut := len(lines)
	for tail := int64(0); cut > 0 && tail+int64(len(lines[cut-1])) <= keepWhole; cut-- {
		tail += int64(len(lines[cut-1]))
	}
	tmp, err := os.CreateTemp(filepath.Dir(w.path), "."+filepath.Base(w.path)+".thin-*")
	if err != nil {
		return fmt.Errorf("series: thin %s: %w", w.path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	bw := bufio.NewWriter(tmp)
	// Every other sample of each metric, not every other line: the metrics of a step
	// are interleaved, and every other line would keep some metrics and drop others.
	seen := map[string]int{}
	for i, l := range lines {
		if i < cut {
			var s struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(l, &s) != nil {
				continue // a line torn long ago
			}
			seen[s.Name]++
			if seen[s.Name]%2 == 0 {
				continue
			}
		}
		bw.Write(l)
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("series: thin %s: %w", w.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("series: thin %s: %w", w.path, err)
	}
	if err := os.Rename(tmp.Name(), w.path); err != nil {
		return fmt.Errorf("series: thin %s: %w", w.path, err)
	}
	w.f.Close()
	w.f = nil
	if err := w.open(); err != nil {
		return err
	}
	return nil
}

// Close closes the file; further Appends fail.
func (w *SeriesWriter) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("series: close %s: %w", w.path, err)
	}
	return nil
}
