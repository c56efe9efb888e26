package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// webhook POSTs each notification as JSON to a URL. Incoming-webhook URLs carry their
// secret in the path or query, so only scheme://host ever appears in messages.
type webhook struct {
	url      string
	redacted string
	client   *http.Client
	perTry   time.Duration
	total    time.Duration
	backoff  time.Duration
	// after is the timer of the backoff and of the limit on all tries; nil is
	// time.After. A test ends the tries on an event with it.
	after func(time.Duration) <-chan time.Time
}

// parseWebhook checks the URL at start, so a typo is a usage error and not a silent
// loss of every alert.
func parseWebhook(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL itself may be the secret: name only what is wrong with it.
		return "", errors.New("--notify-webhook: not an http(s) URL with a host; give one such as https://hooks.slack.com/services/T000/B000/XXXX")
	}
	return u.Scheme + "://" + u.Host, nil
}

func (w *webhook) name() string { return "webhook " + w.redacted }

// deliver POSTs body, retrying network errors, 429 and 5xx with doubling backoff until
// it succeeds, a 4xx says retrying is useless, or w.total has passed.
func (w *webhook) deliver(ctx context.Context, _ Payload, body []byte) error {
	after := w.after
	if after == nil {
		after = time.After
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeUp := after(w.total)
	go func() {
		select {
		case <-timeUp:
			cancel(errTimeUp)
		case <-ctx.Done():
		}
	}()
	backoff := w.backoff
	for try := 1; ; try++ {
		retry, err := w.post(ctx, body)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if ctx.Err() != nil { // no backoff and no try past the end
			if errors.Is(context.Cause(ctx), errTimeUp) {
				err = fmt.Errorf("no answer before all tries' %s ran out", w.total)
			}
			return fmt.Errorf("gave up after %d tries in %s: %w", try, w.total, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %d tries in %s: %w", try, w.total, err)
		case <-after(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// errTimeUp ends a delivery whose tries took w.total.
var errTimeUp = errors.New("retry time up")

// post makes one try and says whether another may succeed.
func (w *webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.perTry)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request for the webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trainwrap")
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error prints the whole URL, secret included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", w.perTry)
		}
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("HTTP %s", resp.Status)
	default:
		return false, fmt.Errorf("HTTP %s (not retried: check the webhook URL)", resp.Status)
	}
}
