package rundir

import (
	"errors"
	"fmt"
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

// runs.jsonl survives a crash mid-append: the next record starts on a fresh line, and
// readers skip the torn line (naming it) and read every other record.
func TestRecords(t *testing.T) {
	const torn = `{"run_id":"x","attem`
	glued := `{"run_id":"x","attempt":3,"class":"cuda_oom","decision":"restart"}`
	cases := []struct {
		name string
		tail string // written raw after two good records
		then bool   // append record 3 with AppendRecord after the tail
		want int
		torn []int
	}{
		{"clean", "", false, 2, nil},
		{"torn last line after a crash", torn, false, 2, []int{3}},
		{"append after a torn last line starts a fresh line", torn, true, 3, []int{3}},
		{"record glued onto a torn line by an old writer", torn + glued + "\n", false, 3, []int{3}},
		{"bad line in the middle", "garbage\n" + glued + "\n", false, 3, []int{3}},
		{"two torn lines", "garbage\n" + glued + "\n" + torn, true, 4, []int{3, 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t.TempDir())
			if recs, tr, err := ReadRecords(d.Runs()); err != nil || recs != nil || tr.Warning() != "" {
				t.Fatalf("missing runs.jsonl: %v %v %q, want nothing", recs, err, tr.Warning())
			}
			for i := 1; i <= 2; i++ {
				if err := AppendRecord(d.Runs(), Record{RunID: "x", Attempt: i, Class: "cuda_oom", Decision: DecisionRestart}); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.OpenFile(d.Runs(), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.tail)
			f.Close()
			if tc.then {
				if err := AppendRecord(d.Runs(), Record{RunID: "x", Attempt: 9, Class: "hang", Decision: DecisionDone}); err != nil {
					t.Fatal(err)
				}
			}
			recs, tr, err := ReadRecords(d.Runs())
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tc.want || recs[1].Attempt != 2 || recs[0].Class != "cuda_oom" {
				t.Fatalf("records %+v, want %d", recs, tc.want)
			}
			if tc.then {
				if recs[len(recs)-1].Attempt != 9 || recs[len(recs)-1].Class != "hang" {
					t.Fatalf("the record appended after the torn line was lost: %+v", recs[len(recs)-1])
				}
				b, _ := os.ReadFile(d.Runs())
				lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, `{"run_id":"x","attempt":9,`) {
					t.Fatalf("the appended record does not start a line of its own: %q", last)
				}
			}
			if fmt.Sprint(tr.Lines) != fmt.Sprint(tc.torn) {
				t.Fatalf("torn lines %v, want %v", tr.Lines, tc.torn)
			}
			w := tr.Warning()
			if len(tc.torn) == 0 && w != "" {
				t.Fatalf("warning %q for a clean file", w)
			}
			if len(tc.torn) > 0 && (!strings.Contains(w, d.Runs()) || !strings.Contains(w, fmt.Sprint(tc.torn[0]))) {
				t.Fatalf("warning %q does not name the file and line %d", w, tc.torn[0])
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
