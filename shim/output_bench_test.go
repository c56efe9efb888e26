package shim

import (
	"bytes"
	"io"
	"testing"

	"github.com/trainwrap/trainwrap/classify"
)

// BenchmarkTee is the supervisor's per-byte cost on training-log output, with the
// observers an attempt has: passthrough to a discarded stdout, the timestamped log into
// a discarded writer, the classifier and the built-in step recogniser.
func BenchmarkTee(b *testing.B) {
	line := []byte("{'loss': 0.6948, 'grad_norm': 1.2345, 'learning_rate': 4.9e-05, 'epoch': 0.78, 'step': 1234, 'tokens_per_sec': 51234.5}\n")
	data := bytes.Repeat(line, (4<<20)/len(line))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	s := &supervisor{}
	var cls *classify.Classifier
	for i := 0; i < b.N; i++ {
		cls = classify.New()
		t := newTee(io.Discard, 1, []LineObserver{cls})
		t.segments = builtinStepObserver{s}
		t.pump(bytes.NewReader(data), io.Discard)
	}
	if cls.Lines() != int64(len(data)/len(line)) {
		b.Fatalf("the classifier saw %d lines, want %d", cls.Lines(), len(data)/len(line))
	}
}
