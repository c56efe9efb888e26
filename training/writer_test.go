package training

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleAt(step int64) Sample {
	return Sample{Time: time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC).Add(time.Duration(step) * time.Second), Attempt: 1, Step: step, Name: Loss, Value: 2 / float64(step+1)}
}

func TestSeriesWriterAppendsAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), SeriesFile)
	w, err := OpenSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]Sample{sampleAt(1), {Name: Loss, Value: math.NaN()}, sampleAt(2)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]Sample{sampleAt(3)}); err == nil {
		t.Fatal("Append after Close: no error")
	}
	w, err = OpenSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]Sample{sampleAt(3)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := ReadSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != sampleAt(1) || got[2] != sampleAt(3) {
		t.Fatalf("ReadSeries = %+v, want steps 1, 2, 3 (the NaN left out)", got)
	}
}

// TestSeriesWriterTornLastLine: a line torn by a crash is ended, and the next sample
// is read whole.
func TestSeriesWriterTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), SeriesFile)
	body := `{"t":"2026-12-02T04:00:00Z","attempt":1,"step":10,"name":"loss","v":2.5}` + "\n" + `{"t":"2026-12-02T04:00:01Z","attempt":1,"st`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := OpenSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append([]Sample{sampleAt(20)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := ReadSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Step != 10 || got[1] != sampleAt(20) {
		t.Fatalf("ReadSeries = %+v, want step 10 and the new step 20", got)
	}
}

// TestSeriesWriterThins: far past its bound the file stays under it, keeps the newest
// samples whole and the oldest at a coarser grain.
func TestSeriesWriterThins(t *testing.T) {
	path := filepath.Join(t.TempDir(), SeriesFile)
	const max = 16 << 10
	w, err := OpenSeriesMax(path, max)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2500 // two samples a step, ~80 bytes each: ~25 times the bound
	for i := int64(0); i < n; i++ {
		lr := sampleAt(i)
		lr.Name, lr.Value = LearningRate, 1e-4
		if err := w.Append([]Sample{sampleAt(i), lr}); err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() > max {
				t.Fatalf("after %d samples the file is %d bytes, bound %d", i, st.Size(), max)
			}
		}
	}
	w.Close()
	all, err := ReadSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	// Both curves keep their whole length, thinned alike.
	var got, lrs []Sample
	for _, s := range all {
		if s.Name == Loss {
			got = append(got, s)
		} else {
			lrs = append(lrs, s)
		}
	}
	if len(lrs) == 0 || lrs[0].Step != 0 || lrs[len(lrs)-1].Step != n-1 || len(lrs) < len(got)-1 || len(lrs) > len(got)+1 {
		t.Errorf("learning rate: %d samples from step %d, want as many as the loss's %d, from 0 to %d", len(lrs), lrs[0].Step, len(got), n-1)
	}
	if len(got) < 50 || len(got) >= n {
		t.Fatalf("%d samples kept of %d", len(got), n)
	}
	if got[0].Step != 0 {
		t.Errorf("the first sample (step 0) is gone: first kept is step %d", got[0].Step)
	}
	// The newest part is whole: the last 20 steps are all there, in order.
	for i := 1; i <= 20; i++ {
		if got[len(got)-i].Step != n-int64(i) {
			t.Fatalf("newest part not whole: %d from the end is step %d, want %d", i, got[len(got)-i].Step, n-int64(i))
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Step <= got[i-1].Step {
			t.Fatalf("steps out of order at %d: %d after %d", i, got[i].Step, got[i-1].Step)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*thin*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSeriesWriterErrors: a write that cannot happen is an error, not a panic.
func TestSeriesWriterErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenSeries(filepath.Join(dir, "missing", SeriesFile)); err == nil || !strings.Contains(err.Error(), "series: open") {
		t.Errorf("OpenSeries in a missing dir: %v", err)
	}
	if _, err := OpenSeriesMax(filepath.Join(dir, SeriesFile), 10); err == nil {
		t.Error("a 10-byte bound: no error")
	}
	// /dev/full fails every write with ENOSPC, as a full disk does.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	w, err := OpenSeries("/dev/full")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append([]Sample{sampleAt(1)}); err == nil || !strings.Contains(err.Error(), "series: write") {
		t.Errorf("Append to a full device: %v, want the write error", err)
	}
}
