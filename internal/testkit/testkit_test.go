package testkit

import (
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
	start := time.Now()
	Eventually(t, 5*time.Second, "a flag", func() bool { return time.Since(start) > 30*time.Millisecond })
	if time.Since(start) > 2*time.Second {
		t.Fatal("Eventually waited far past the moment its condition held")
	}
}
