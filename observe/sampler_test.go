package observe

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/trainwrap/trainwrap/rundir"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

func TestSamplerRecordsHostAndJob(t *testing.T) {
	dir := t.TempDir()
	o, err := New(context.Background(), Options{SampleInterval: 40 * time.Millisecond, StateDir: dir, DiskPaths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.Publish(Event{Kind: Started, Attempt: 1})
	o.Publish(Event{Kind: Progress, Attempt: 1, Step: 77})
	path := rundir.New(dir).Samples()
	var samples []Sample
	testkit.Eventually(t, time.Minute, "a sample of step 77", func() bool {
		samples, err = ReadSamples(path)
		if err != nil {
			t.Fatal(err)
		}
		return len(samples) > 0 && samples[len(samples)-1].Step == 77
	})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	s := samples[len(samples)-1]
	if s.MemTotal == 0 || s.MemAvailable == 0 || s.MemAvailable > s.MemTotal {
		t.Errorf("host memory %d available of %d", s.MemAvailable, s.MemTotal)
	}
	if len(s.Disks) != 1 || s.Disks[0].Path != dir || s.Disks[0].Free == 0 || s.Disks[0].Free > s.Disks[0].Total {
		t.Errorf("disks: %+v", s.Disks)
	}
	if s.Attempt != 1 || !s.Up {
		t.Errorf("job in sample: attempt %d up %v", s.Attempt, s.Up)
	}
	if v := testutil.ToFloat64(o.m.diskFree.WithLabelValues(dir)); v <= 0 {
		t.Errorf("trainwrap_disk_free_bytes{path=%q} = %v", dir, v)
	}
	// On a host without NVML there are no GPU series and no error about it.
	if openGPUs() == nil {
		if n := testutil.CollectAndCount(o.m.gpuTemp); n != 0 || len(s.GPUs) != 0 {
			t.Errorf("no NVML, yet %d GPU series and %d GPUs in the sample", n, len(s.GPUs))
		}
	}
}

func TestSamplerReportsBadDiskOnce(t *testing.T) {
	dir := t.TempDir()
	var stderr testkit.Buffer
	// A path under a regular file cannot be statted (ENOTDIR): reported once. A
	// checkpoint root the job has not created yet is not a failure: never reported.
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(file, "sub")
	notYet := filepath.Join(dir, "not-created-yet")
	o, err := New(context.Background(), Options{SampleInterval: 20 * time.Millisecond, StateDir: dir, DiskPaths: []string{missing, notYet, dir}, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	path := rundir.New(dir).Samples()
	testkit.Eventually(t, time.Minute, "five samples", func() bool {
		s, _ := ReadSamples(path)
		return len(s) >= 5
	})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stderr.String(), missing); n != 1 {
		t.Errorf("the bad disk path was reported %d times, want once: %s", n, stderr.String())
	}
	if strings.Contains(stderr.String(), notYet) {
		t.Errorf("a path that does not exist yet was reported: %s", stderr.String())
	}
	s, _ := ReadSamples(path)
	if len(s[0].Disks) != 1 || s[0].Disks[0].Path != dir {
		t.Errorf("the good disk is not sampled beside the bad one: %+v", s[0].Disks)
	}
}

func TestSamplesStayBounded(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		n        int
	}{
		{"small bound, many samples", 8 << 10, 2000},
		{"bound never reached", 1 << 20, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), rundir.SamplesFile)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < tc.n; i++ {
				s := Sample{Time: t0.Add(time.Duration(i) * time.Second), Attempt: 1, Step: int64(i), MemTotal: 1 << 30, MemAvailable: 1 << 29}
				if err := appendSample(path, s, tc.maxBytes); err != nil {
					t.Fatal(err)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > tc.maxBytes {
				t.Errorf("samples file is %d bytes, bound %d", fi.Size(), tc.maxBytes)
			}
			got, err := ReadSamples(path)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Step != 0 || got[len(got)-1].Step != int64(tc.n-1) {
				t.Errorf("history spans steps %d..%d, want the first and the last sample kept (0..%d)", got[0].Step, got[len(got)-1].Step, tc.n-1)
			}
			for i := 1; i < len(got); i++ {
				if !got[i].Time.After(got[i-1].Time) {
					t.Fatalf("samples out of order at %d", i)
				}
			}
		})
	}
}

func TestReadSamplesSkipsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), rundir.SamplesFile)
	data := `{"t":"2026-01-01T00:00:00Z","step":1}` + "\n" + `{"t":"2026-01-01T00:00:30Z","step":2}` + "\n" + `{"t":"2026-01-01T00:01:00Z","st`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSamples(path)
	if err != nil || len(got) != 2 || got[1].Step != 2 {
		t.Fatalf("ReadSamples = %+v, %v; want the two whole lines", got, err)
	}
	if got, err := ReadSamples(filepath.Join(t.TempDir(), "none")); err != nil || got != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
}

// TestSamplesStartEachAttemptAfresh: a restarted attempt's samples do not carry the
// step the previous attempt reached.
func TestSamplesStartEachAttemptAfresh(t *testing.T) {
	dir := t.TempDir()
	o, err := New(context.Background(), Options{SampleInterval: 20 * time.Millisecond, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.Publish(Event{Kind: Started, Attempt: 1})
	o.Publish(Event{Kind: Progress, Attempt: 1, Step: 60})
	o.Publish(Event{Kind: Exited, Attempt: 1, ExitCode: 1, Class: "cuda_oom", Step: 60})
	o.Publish(Event{Kind: Started, Attempt: 2})
	path := rundir.New(dir).Samples()
	testkit.Eventually(t, time.Minute, "a sample of attempt 2", func() bool {
		s, _ := ReadSamples(path)
		return len(s) > 0 && s[len(s)-1].Attempt == 2
	})
	s, _ := ReadSamples(path)
	if last := s[len(s)-1]; last.Step != 0 || !last.Up {
		t.Errorf("attempt 2 before any progress sampled as step %d, up %v; want step 0 (unknown), up", last.Step, last.Up)
	}
}
