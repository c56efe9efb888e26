package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				b.Write([]byte("x"))
			}
		}()
	}
	wg.Wait()
	if n := len(b.String()); n != 400 {
		t.Fatalf("buffer holds %d bytes, want 400", n)
	}
}

func TestEventuallyReturnsWhenTheConditionHolds(t *testing.T) {
	calls := 0
	Eventually(t, time.Minute, "the third poll", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3: Eventually must return at the first poll that holds", calls)
	}
}

func TestReturns(t *testing.T) {
	Returns(t, time.Minute, "a quick call", func() {})

	// A call that blocks for good fails the test: seen from a test of its own.
	release := make(chan struct{})
	defer close(release)
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		Returns(ft, 10*time.Millisecond, "a blocked call", func() { <-release })
	}()
	if !strings.Contains(ft.msg, "a blocked call did not return within 10ms") {
		t.Errorf("Fatalf message %q", ft.msg)
	}
}

// fatalRecorder records Fatalf and panics to end the call, as FailNow would.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}
