package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/trainwrap/trainwrap/internal/jsonl"
	"github.com/trainwrap/trainwrap/rundir"
)

// MaxSamplesBytes bounds samples.jsonl. Past it the file is thinned: the newest quarter
// is kept whole and every other older sample is dropped, so the history still reaches
// back to the start of the run, only coarser.
const MaxSamplesBytes = 1 << 20

// Sample is one line of samples.jsonl: the host and its GPUs at one moment, and where
// the job was.
type Sample struct {
	Time         time.Time `json:"t"`
	Attempt      int       `json:"attempt,omitempty"`
	Step         int64     `json:"step,omitempty"`
	Up           bool      `json:"up,omitempty"`
	MemTotal     uint64    `json:"mem_total,omitempty"`
	MemAvailable uint64    `json:"mem_available,omitempty"`
	Disks        []Disk    `json:"disks,omitempty"`
	GPUs         []GPU     `json:"gpus,omitempty"`
}

// Disk is the free space of the filesystem that holds Path.
type Disk struct {
	Path  string `json:"path"`
	Free  uint64 `json:"free"`
	Total uint64 `json:"total"`
}

// GPU is one GPU's state as NVML reports it.
type GPU struct {
	Index          int    `json:"index"`
	UUID           string `json:"uuid,omitempty"`
	TempC          uint32 `json:"temp_c"`
	MemUsed        uint64 `json:"mem_used"`
	MemTotal       uint64 `json:"mem_total"`
	UtilPct        uint32 `json:"util_pct"`
	PowerMW        uint32 `json:"power_mw,omitempty"`
	ECCUncorrected uint64 `json:"ecc_uncorrected,omitempty"`
}

// gpuSource reads every GPU; a nil gpuSource means there is no NVML on this host.
type gpuSource interface {
	Read() ([]GPU, error)
	Close()
}

// jobView is what the sampler records of the job with each sample; the Observer keeps
// it current from events.
type jobView struct {
	Attempt int
	Step    int64
	Up      bool
}

// sampler appends a Sample to the run dir's samples.jsonl every interval. It is the
// only writer of that file.
type sampler struct {
	path     string
	disks    []string
	gpus     gpuSource
	job      func() jobView
	onSample func(Sample)
	errOut   func(error)
	maxBytes int64
	fs       procfs.FS
	hasFS    bool
	lastErr  string
}

func (s *sampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	s.tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick()
		}
	}
}

// tick takes and stores one sample. A partial sample (one source failed) is still
// stored. Errors are reported once each until they change, so a full disk does not
// flood the log every interval.
func (s *sampler) tick() {
	smp, err := s.take()
	s.onSample(smp)
	if werr := appendSample(s.path, smp, s.maxBytes); werr != nil {
		err = errors.Join(err, werr)
	}
	if err == nil {
		s.lastErr = ""
		return
	}
	if err.Error() != s.lastErr {
		s.errOut(err)
	}
	s.lastErr = err.Error()
}

func (s *sampler) take() (Sample, error) {
	smp := Sample{Time: time.Now().UTC()}
	if s.job != nil {
		j := s.job()
		smp.Attempt, smp.Step, smp.Up = j.Attempt, j.Step, j.Up
	}
	var errs []error
	if s.hasFS {
		if mi, err := s.fs.Meminfo(); err == nil {
			if mi.MemTotalBytes != nil {
				smp.MemTotal = *mi.MemTotalBytes
			}
			if mi.MemAvailableBytes != nil {
				smp.MemAvailable = *mi.MemAvailableBytes
			}
		} else {
			errs = append(errs, fmt.Errorf("sample host memory: %w", err))
		}
	}
	for _, p := range s.disks {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			// A checkpoint root the job has not created yet is not a failure.
			if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("sample disk free of %s: %w", p, err))
			}
			continue
		}
		smp.Disks = append(smp.Disks, Disk{Path: p, Free: st.Bavail * uint64(st.Bsize), Total: st.Blocks * uint64(st.Bsize)})
	}
	if s.gpus != nil {
		g, err := s.gpus.Read()
		if err != nil {
			errs = append(errs, err)
		}
		smp.GPUs = g
	}
	return smp, errors.Join(errs...)
}

// appendSample appends one line to path, thinning the file first when it has grown
// past maxBytes.
func appendSample(path string, smp Sample, maxBytes int64) error {
	b, err := json.Marshal(smp)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size()+int64(len(b)) > maxBytes {
		if err := thinSamples(path); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("append sample to %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("append sample to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append sample to %s: %w", path, err)
	}
	return nil
}

// thinSamples rewrites path atomically with the newest quarter of its lines whole and
// every other line of the rest, so the history keeps its whole span at half the detail.
func thinSamples(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("thin %s: %w", path, err)
	}
	lines := bytes.SplitAfter(data, []byte{'\n'})
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	keepFrom := len(lines) - len(lines)/4
	var out bytes.Buffer
	out.Grow(len(data) * 5 / 8)
	for i, l := range lines {
		if i >= keepFrom || i%2 == 0 {
			if l[len(l)-1] != '\n' { // a torn line from a crash: drop it
				continue
			}
			out.Write(l)
		}
	}
	if err := rundir.WriteFileAtomic(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("thin samples: %w", err)
	}
	return nil
}

// ReadSamples reads samples.jsonl. A missing file is no samples; lines that do not
// parse (a line torn by a crash) are skipped, since the history is advisory.
func ReadSamples(path string) ([]Sample, error) {
	out, err := jsonl.Read[Sample](path, nil)
	if err != nil {
		return out, fmt.Errorf("read samples %s: %w", path, err)
	}
	return out, nil
}

func itoa(i int) string { return strconv.Itoa(i) }
