package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/rundir"
)

func TestStallLatency(t *testing.T) {
	log := strings.Join([]string{
		"2026-11-28T23:57:10.000Z [1] global_step=11 loss=0.7",
		"2026-11-28T23:57:10.500Z [1] global_step=12 loss=0.7",
		"2026-11-28T23:57:11.000Z [1] {'loss': 0.7}",
		"2026-11-28T23:57:14.000Z [1] Fatal Python error: Aborted",
		"2026-11-28T23:57:20.000Z [2] global_step=13 loss=0.7",
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "train.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 28, 23, 57, 15, 0, time.UTC)
	tests := []struct {
		attempt int
		want    time.Duration
		err     string
	}{
		{attempt: 1, want: 4500 * time.Millisecond},
		{attempt: 2, want: -5 * time.Second},
		{attempt: 3, err: "no progress line of attempt 3"},
	}
	for _, tt := range tests {
		got, err := stallLatency(path, rundir.Record{Attempt: tt.attempt, End: end})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("attempt %d: error %v, want %q", tt.attempt, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("attempt %d: %v, %v; want %v", tt.attempt, got, err, tt.want)
		}
	}
}

func TestRunSuiteRejectsUnknownScenario(t *testing.T) {
	_, err := RunSuite(t.Context(), SuiteOptions{Exe: "/bin/true", Only: []string{"success,gremlins"}})
	if err == nil || !strings.Contains(err.Error(), `--only "gremlins": no such scenario; choose from success, cuda-oom`) {
		t.Fatalf("error %v", err)
	}
}
