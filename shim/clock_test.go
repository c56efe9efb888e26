package shim

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// manualClock is a Clock that moves only when Advance is called; its timers and
// tickers fire, in Advance or Reset, once their time has come. Like the runtime's since
// Go 1.23, Stop and Reset discard a value that fired but was not received.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c      *manualClock
	ch     chan time.Time
	at     time.Time
	period time.Duration // a ticker's; 0 for a timer
	active bool
}

func newManualClock(now time.Time) *manualClock { return &manualClock{now: now} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTimer(d time.Duration) Timer { return c.add(d, 0) }

func (c *manualClock) NewTicker(d time.Duration) Ticker { return manualTicker{c.add(d, d)} }

// manualTicker is a manualTimer with a period, and a Stop that returns nothing.
type manualTicker struct{ t *manualTimer }

func (k manualTicker) C() <-chan time.Time { return k.t.ch }
func (k manualTicker) Stop()               { k.t.Stop() }

func (c *manualClock) add(d, period time.Duration) *manualTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d), period: period, active: true}
	c.timers = append(c.timers, t)
	c.fireLocked()
	return t
}

// Advance moves the clock d forward and fires what is due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.fireLocked()
}

func (c *manualClock) fireLocked() {
	for _, t := range c.timers {
		for t.active && !t.at.After(c.now) {
			select {
			case t.ch <- t.at:
			default: // a full channel drops the tick, as time.Ticker does
			}
			if t.period > 0 {
				t.at = t.at.Add(t.period)
			} else {
				t.active = false
			}
		}
	}
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	t.drain()
	return was
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.drain()
	t.at, t.active = t.c.now.Add(d), true
	t.c.fireLocked()
	return was
}

func (t *manualTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// followClockFIFO advances c by each duration written, one a line, to the FIFO at
// path: the supervisor runs in a process of its own, and this is how its test moves
// its clock.
func followClockFIFO(c *manualClock, path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clock fifo:", err)
		os.Exit(2)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d, err := time.ParseDuration(sc.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, "clock fifo:", err)
			os.Exit(2)
		}
		c.Advance(d)
	}
}

// clockControl moves the clock of a supervisor started with testOptions.ClockFIFO
// set to its path.
type clockControl struct {
	path string
	w    *os.File
}

func newClockControl(t *testing.T) *clockControl {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clock")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read and write: opening never waits for the supervisor to open its end.
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &clockControl{path: path, w: w}
}

func (cc *clockControl) advance(t *testing.T, d time.Duration) {
	t.Helper()
	if _, err := fmt.Fprintln(cc.w, d); err != nil {
		t.Fatal(err)
	}
}

// run advances the clock by step on every real step/10 until stop is closed: for the
// part of a test whose timing is not what it checks.
func (cc *clockControl) run(t *testing.T, step time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(step / 10)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := fmt.Fprintln(cc.w, step); err != nil {
				t.Error(err)
				return
			}
		}
	}
}
