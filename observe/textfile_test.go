package observe

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// TestTextfileCoalescesProgress: a burst of progress events (one per output line) costs
// a write or two, not one each, and the last step still reaches the file.
func TestTextfileCoalescesProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trainwrap.prom")
	o, err := New(context.Background(), Options{MetricsTextfile: path})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.Publish(Event{Kind: Started, Attempt: 1})
	const n = 2000
	for i := 1; i <= n; i++ {
		o.Publish(Event{Kind: Progress, Attempt: 1, Step: int64(i)})
	}
	testkit.Eventually(t, time.Minute, "the last step in the textfile", func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		v, _ := value(parseMetrics(t, string(b)), "trainwrap_step", nil)
		return v == n
	})
	// One write at New, one for Started, then progress at most once a second: the
	// burst took well under two seconds.
	if w := o.tf.writes.Load(); w > 5 {
		t.Errorf("%d textfile writes for %d progress events", w, n)
	}
}
