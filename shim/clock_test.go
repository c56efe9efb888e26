package shim

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// manualClock is a Clock that moves only when Advance is called; its timers and
// tickers fire, in Advance or Reset, once their time has come. Like the runtime's since
// Go 1.23, Stop and Reset discard a value that fired but was not received.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	fired  int // one-shot timers fired so far: the stall, SIGABRT grace and backoff timers
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
				c.fired++
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

// report is what the test learns after each move: the clock's time, the one-shot
// timers fired so far, and the active ones with the time to the earliest (-1 for none).
func (c *manualClock) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	pending, next := 0, time.Duration(-1)
	for _, t := range c.timers {
		if t.active && t.period == 0 {
			pending++
			if d := t.at.Sub(c.now); next < 0 || d < next {
				next = d
			}
		}
	}
	return fmt.Sprintf("%d %d %d %d", c.now.UnixNano(), c.fired, pending, next)
}

// followClockFIFO advances c by each duration written, one a line, to the FIFO at
// path, and appends c's report to path+".ack" after each: the supervisor runs in a
// process of its own, and this is how its test moves its clock and sees its timers.
func followClockFIFO(c *manualClock, path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clock fifo:", err)
		os.Exit(2)
	}
	ack, err := os.OpenFile(path+".ack", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clock ack:", err)
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
		if _, err := fmt.Fprintln(ack, c.report()); err != nil {
			fmt.Fprintln(os.Stderr, "clock ack:", err)
			os.Exit(2)
		}
	}
}

// clockControl moves the clock of a supervisor started with testOptions.ClockFIFO
// set to its path.
type clockControl struct {
	path string
	w    *os.File
	sent atomic.Int64 // moves written; the ack file has a line for each once they are done
}

// clockAck is the supervisor clock's report after a move.
type clockAck struct {
	now     time.Time
	fired   int           // one-shot timers fired since the supervisor started
	pending int           // one-shot timers armed
	next    time.Duration // until the earliest of them fires; -1 for none
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

// advance moves the supervisor's clock d forward and returns its report once the
// move is done: every timer that came due has fired.
func (cc *clockControl) advance(t *testing.T, d time.Duration) clockAck {
	t.Helper()
	if _, err := fmt.Fprintln(cc.w, d); err != nil {
		t.Fatal(err)
	}
	n := int(cc.sent.Add(1))
	var line string
	testkit.Eventually(t, time.Minute, fmt.Sprintf("the clock's report of move %d", n), func() bool {
		b, _ := os.ReadFile(cc.path + ".ack")
		lines := strings.Split(string(b), "\n")
		if len(lines) <= n { // the last element is what follows the last newline
			return false
		}
		line = lines[n-1]
		return true
	})
	var a clockAck
	var now, next int64
	if _, err := fmt.Sscan(line, &now, &a.fired, &a.pending, &next); err != nil {
		t.Fatalf("clock report %q: %v", line, err)
	}
	a.now, a.next = time.Unix(0, now), time.Duration(next)
	return a
}

// armed waits until the supervisor has n one-shot timers armed, and returns the
// clock's report then; the clock does not move.
func (cc *clockControl) armed(t *testing.T, n int) clockAck {
	t.Helper()
	var a clockAck
	testkit.Eventually(t, time.Minute, fmt.Sprintf("%d timer(s) armed", n), func() bool {
		a = cc.advance(t, 0)
		return a.pending == n
	})
	return a
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
			cc.sent.Add(1)
		}
	}
}
