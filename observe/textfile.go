package observe

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/trainwrap/trainwrap/rundir"
)

// progressEvery limits textfile rewrites for progress events, which can come once per
// output line; every other event is written at once.
const progressEvery = time.Second

// textfileHeartbeat is the longest the textfile goes unwritten while the supervisor
// lives, so that trainwrap_last_update_timestamp_seconds in it ages only when trainwrap
// is gone: a quiet job (no output within the stall timeout) publishes no events.
const textfileHeartbeat = 15 * time.Second

// textfile writes the registry in the node_exporter textfile-collector format after
// events, through a temporary file and a rename, so the collector never reads half a
// file. Writes happen on its own goroutine; Publish only pokes it.
type textfile struct {
	path   string
	m      *metrics
	kick   chan struct{}
	urgent atomic.Bool
	report func(string)
	done   chan struct{}
	writes atomic.Int64 // files written, for the rate limit's test
	// heartbeat is textfileHeartbeat; a test shortens it.
	heartbeat time.Duration
}

// checkTextfile refuses paths node_exporter would ignore, at start, when the user can
// still fix the flag.
func checkTextfile(path string) error {
	if !strings.HasSuffix(path, ".prom") {
		return fmt.Errorf("--metrics-textfile %s: node_exporter only reads files ending in .prom; rename it", path)
	}
	return nil
}

func newTextfile(path string, m *metrics, report func(string)) *textfile {
	return &textfile{path: path, m: m, kick: make(chan struct{}, 1), report: report, done: make(chan struct{}), heartbeat: textfileHeartbeat}
}

// poke asks for a write without blocking; pokes that arrive while one is pending
// coalesce into it.
func (t *textfile) poke(urgent bool) {
	if urgent {
		t.urgent.Store(true)
	}
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *textfile) run(ctx context.Context) {
	defer close(t.done)
	var last time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	beat := time.NewTicker(t.heartbeat)
	defer beat.Stop()
	write := func() {
		pending = false
		t.urgent.Store(false)
		last = time.Now()
		if err := t.write(); err != nil {
			t.report(err.Error())
		}
	}
	for {
		select {
		case <-beat.C:
			if time.Since(last) >= t.heartbeat/2 {
				write()
			}
		case <-ctx.Done():
			write() // the final state, e.g. job_up 0 after the last exit
			return
		case <-t.kick:
			if t.urgent.Load() || time.Since(last) >= progressEvery {
				timer.Stop()
				write()
			} else if !pending {
				pending = true
				timer.Reset(progressEvery - time.Since(last))
			}
		case <-timer.C:
			if pending {
				write()
			}
		}
	}
}

func (t *textfile) write() error {
	t.writes.Add(1)
	mfs, err := t.m.reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics textfile %s: gather: %w", t.path, err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("metrics textfile %s: encode: %w", t.path, err)
		}
	}
	if err := rundir.WriteFileAtomic(filepath.Clean(t.path), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics textfile: %w", err)
	}
	return nil
}
