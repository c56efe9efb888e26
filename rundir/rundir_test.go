package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateRoundTripAndCorruption(t *testing.T) {
	d := New(t.TempDir())
	if _, err := ReadState(d.State()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing state.json: %v, want ErrNotExist", err)
	}
	st := State{RunID: "abc", Supervisor: Proc{PID: 1, StartTime: 2}, Attempt: 3, Status: StatusRunning, Step: 40}
	if err := WriteState(d.State(), st); err != nil {
		t.Fatal(err)
	}
	got, err := ReadState(d.State())
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != "abc" || got.Attempt != 3 || got.Step != 40 || got.Updated.IsZero() {
		t.Fatalf("read back %+v", got)
	}
	// No temporary files are left next to it.
	entries, _ := os.ReadDir(d.Path)
	if len(entries) != 1 {
		t.Fatalf("run dir holds %d entries after an atomic write, want 1", len(entries))
	}
	os.WriteFile(d.State(), []byte(`{"run_id": "abc", "attempt": `), 0o644)
	_, err = ReadState(d.State())
	if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), d.State()) {
		t.Fatalf("corrupt state.json: %v, want ErrCorruptState naming the file and the way out", err)
	}
}

func TestRecords(t *testing.T) {
	cases := []struct {
		name    string
		tail    string
		want    int
		wantErr string
	}{
		{"clean", "", 2, ""},
		{"torn last line after a crash", `{"run_id":"x","attem`, 2, ""},
		{"bad line in the middle", "garbage\n" + `{"run_id":"x","attempt":3}` + "\n", 2, "line 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t.TempDir())
			if recs, err := ReadRecords(d.Runs()); err != nil || recs != nil {
				t.Fatalf("missing runs.jsonl: %v %v, want nothing", recs, err)
			}
			for i := 1; i <= 2; i++ {
				if err := AppendRecord(d.Runs(), Record{RunID: "x", Attempt: i, Class: "cuda_oom", Decision: DecisionRestart}); err != nil {
					t.Fatal(err)
				}
			}
			f, _ := os.OpenFile(d.Runs(), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString(tc.tail)
			f.Close()
			recs, err := ReadRecords(d.Runs())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.want || recs[1].Attempt != 2 || recs[0].Class != "cuda_oom" {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

func TestDirPaths(t *testing.T) {
	d := New("rel")
	if !filepath.IsAbs(d.Path) {
		t.Fatalf("New(rel).Path = %q, want absolute", d.Path)
	}
	if d.TrainLog() != filepath.Join(d.Path, "logs", "train.log") || d.Manifests() != filepath.Join(d.Path, "checkpoints") {
		t.Fatalf("paths: %q %q", d.TrainLog(), d.Manifests())
	}
	if New("").Path != New(DefaultDir).Path {
		t.Fatal("the empty path is not the default run dir")
	}
}
