package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
)

// queueLen bounds each sink's backlog. Alerts come a few per attempt; a sink this far
// behind is down, and newer events matter more than a complete backlog.
const queueLen = 32

// notifier delivers one notification, retrying as it sees fit until ctx ends.
type notifier interface {
	// name is the sink's label in metrics and messages; it never holds a secret.
	name() string
	deliver(ctx context.Context, p Payload, body []byte) error
}

// queue feeds one notifier from a bounded channel on a goroutine of its own, so that a
// slow webhook delays neither the supervisor nor the other sinks.
type queue struct {
	n      notifier
	ch     chan Payload
	m      *metrics
	report func(string)
	wg     sync.WaitGroup
	drops  atomic.Int64 // drops not yet reported
}

func newQueue(n notifier, m *metrics, report func(string)) *queue {
	return &queue{n: n, ch: make(chan Payload, queueLen), m: m, report: report}
}

// offer enqueues p without blocking; a full queue drops it and counts the drop. The
// drop is reported later from the queue's goroutine: writing to stderr here could
// block the supervisor on a full pipe.
func (q *queue) offer(p Payload) {
	select {
	case q.ch <- p:
	default:
		q.m.dropped.WithLabelValues(q.n.name()).Inc()
		q.drops.Add(1)
	}
}

func (q *queue) start(ctx context.Context) {
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		for p := range q.ch {
			if ctx.Err() != nil {
				q.m.dropped.WithLabelValues(q.n.name()).Inc()
				continue
			}
			body, err := json.Marshal(p)
			if err == nil {
				err = q.n.deliver(ctx, p, body)
			}
			if err != nil {
				q.m.notifyFailed.WithLabelValues(q.n.name()).Inc()
				q.report(fmt.Sprintf("%s: %s event not delivered: %v", q.n.name(), p.Event, err))
			}
			if n := q.drops.Swap(0); n > 0 {
				q.report(fmt.Sprintf("%s: queue full, %d events dropped", q.n.name(), n))
			}
		}
	}()
}
