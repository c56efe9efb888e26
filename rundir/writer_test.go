package rundir

import (
	"os"
	"strings"
	"sync"
	"testing"
)

// warnings collects what a Writer warns about.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(msg string) { w.mu.Lock(); w.msgs = append(w.msgs, msg); w.mu.Unlock() }

func (w *warnings) count(sub string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// While runs.jsonl cannot be written (here it is /dev/full, whose every write fails
// with ENOSPC), records wait in memory, bounded, with one warning for the whole
// outage; the next successful write puts them into runs.jsonl in order.
func TestWriterKeepsRecordsThroughAFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to fail writes with ENOSPC: %v", err)
	}
	cases := []struct {
		name    string
		records int
		dropped int
	}{
		{"a few records", 3, 0},
		{"more than the bound", MaxPendingRecords + 6, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := New(t.TempDir())
			var warn warnings
			w := NewWriter(d, warn.add)
			if fi, err := os.Stat(d.Path + "/" + ReserveFile); err != nil || fi.Size() != ReserveSize {
				t.Fatalf("reserve: %v %v", fi, err)
			}
			if err := os.Symlink("/dev/full", d.Runs()); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= tc.records; i++ {
				w.AppendRecord(Record{RunID: "x", Attempt: i, Decision: DecisionRestart})
				w.WriteState(State{RunID: "x", Attempt: i, Status: StatusBackoff})
			}
			if n := warn.count("cannot write the attempt record"); n != 1 || warn.count("no space left on device") != 1 {
				t.Fatalf("warnings %q, want one naming ENOSPC", warn.msgs)
			}
			if got, want := w.Pending(), tc.records-tc.dropped; got != want {
				t.Fatalf("%d records pending, want %d", got, want)
			}
			// Space returns.
			if err := os.Remove(d.Runs()); err != nil {
				t.Fatal(err)
			}
			w.WriteState(State{RunID: "x", Attempt: tc.records, Status: StatusRunning})
			recs, torn, err := ReadRecords(d.Runs())
			if err != nil || torn.Warning() != "" {
				t.Fatal(err, torn.Warning())
			}
			if len(recs) != tc.records-tc.dropped || w.Pending() != 0 {
				t.Fatalf("%d records written, %d pending; want %d, 0", len(recs), w.Pending(), tc.records-tc.dropped)
			}
			for i, r := range recs {
				if r.Attempt != tc.dropped+i+1 {
					t.Fatalf("record %d is attempt %d, want %d: out of order", i, r.Attempt, tc.dropped+i+1)
				}
			}
			if warn.count("written again") != 1 {
				t.Fatalf("warnings %q, want one saying the records were written", warn.msgs)
			}
			if tc.dropped > 0 && warn.count("6 older one(s) lost") != 1 {
				t.Fatalf("warnings %q, want the dropped records counted", warn.msgs)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(d.Path + "/" + ReserveFile); !os.IsNotExist(err) {
				t.Fatalf("reserve left behind after Close: %v", err)
			}
		})
	}
}

// Records that never found space are handed back by Close, as JSON lines a person can
// paste into runs.jsonl, instead of being lost without a word.
func TestWriterCloseReturnsUnwrittenRecords(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to fail writes with ENOSPC: %v", err)
	}
	d := New(t.TempDir())
	var warn warnings
	w := NewWriter(d, warn.add)
	if err := os.Symlink("/dev/full", d.Runs()); err != nil {
		t.Fatal(err)
	}
	w.AppendRecord(Record{RunID: "x", Attempt: 1, Class: "disk_full", Decision: DecisionGiveUp})
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), `{"run_id":"x","attempt":1,`) || !strings.Contains(err.Error(), d.Runs()) {
		t.Fatalf("Close: %v, want the unwritten record as JSON and the file named", err)
	}
}
