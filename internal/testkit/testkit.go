// Package testkit holds the two helpers every package's tests need when they watch
// real processes: a buffer that a process's output goroutine and the test share, and
// a wait with a deadline instead of a bare sleep.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for one writer goroutine (exec's output copier, an
// Observer's reporter) and a reading test.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Eventually polls cond every 10 ms until it holds, and fails the test naming what it
// waited for when d passes first.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Returns runs f on a goroutine of its own and fails the test naming what when f has
// not returned after d. It replaces "took less than X": the test holds what f must
// not wait for (a hung server, a child that sleeps for an hour) until f has returned,
// so returning at all proves f did not wait, whatever the machine's speed; d is only
// a deadline for an f that blocks for good, and should be far beyond any slow machine
// (a minute).
func Returns(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not return within %s: it waits for what it must not", what, d)
	}
}
