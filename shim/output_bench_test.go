package shim

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkTee is the supervisor's per-byte cost on training-log output: passthrough
// to a discarded stdout, the timestamped log into a discarded writer, and one observer.
func BenchmarkTee(b *testing.B) {
	line := []byte("{'loss': 0.6948, 'learning_rate': 5e-05, 'epoch': 0.78}\n")
	data := bytes.Repeat(line, (4<<20)/len(line))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var n int64
	obs := LineObserverFunc(func(l []byte) { n += int64(len(l)) })
	for i := 0; i < b.N; i++ {
		t := newTee(io.Discard, 1, []LineObserver{obs})
		t.pump(bytes.NewReader(data), io.Discard)
	}
	if n == 0 {
		b.Fatal("observer saw nothing")
	}
}
