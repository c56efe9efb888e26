package training

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadSeriesSkipsTornLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), SeriesFile)
	body := `{"t":"2026-12-02T04:00:00Z","attempt":1,"step":10,"name":"loss","v":2.5}
{"t":"2026-12-02T04:00:01Z","attempt":1,"step":20,"name":"lo
{"t":"2026-12-02T04:00:02Z","attempt":1,"step":30,"name":"loss","v":2.25}
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSeries(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Step != 10 || got[1].Value != 2.25 {
		t.Fatalf("ReadSeries = %+v, want steps 10 and 30", got)
	}
	if got, err := ReadSeries(filepath.Join(t.TempDir(), "missing")); err != nil || got != nil {
		t.Fatalf("missing file: %v, %v; want no samples, no error", got, err)
	}
}
