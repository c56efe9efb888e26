package observe

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/trainwrap/trainwrap/internal/testkit"
)

// statusClient is one TCP client of the status server: silent ones connect and send
// nothing, the others send one keep-alive request and then idle.
type statusClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialStatus(t *testing.T, addr string, request bool) *statusClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if request {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	return &statusClient{c: c, br: bufio.NewReader(c)}
}

// response reads the answer to the request, which must keep the connection alive.
func (s *statusClient) response(deadline time.Time) error {
	s.c.SetReadDeadline(deadline)
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return fmt.Errorf("no response: %w", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(b) != "ok\n" || resp.Close {
		return fmt.Errorf("response %d %q (close %v, %v), want a keep-alive 200 ok", resp.StatusCode, b, resp.Close, err)
	}
	return nil
}

// closedByServer waits for the server to close the connection (EOF) until deadline.
func (s *statusClient) closedByServer(deadline time.Time) error {
	s.c.SetReadDeadline(deadline)
	_, err := s.br.ReadByte()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errors.New("the server never closed the idle connection")
	case err == nil:
		return errors.New("the server sent bytes nobody asked for")
	}
	return nil // a reset is a close too
}

// The status server holds at most its cap of connections, the rest wait in the
// kernel's queue (costing no descriptor) and are served as slots free up.
func TestStatusServerCapsConnections(t *testing.T) {
	const max, extra = 4, 3
	long := serverLimits{maxConns: max, readHeaderTimeout: time.Hour, readTimeout: time.Hour, writeTimeout: time.Hour, idleTimeout: time.Hour}
	srv, err := startServer("127.0.0.1:0", newMetrics(""), t.TempDir(), long, func(msg string) { t.Errorf("report: %s", msg) })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	var clients []*statusClient
	for i := 0; i < max+extra; i++ {
		clients = append(clients, dialStatus(t, srv.addr(), true))
	}
	testkit.Eventually(t, time.Minute, fmt.Sprintf("%d connections held", max), func() bool { return srv.ln.open.Load() == max })
	// The first max (the kernel queues connections in order) have their answers; the
	// others are answered once a slot is free.
	deadline := time.Now().Add(2 * time.Minute)
	answered := 0
	// Each close lets one queued client in, so every client is answered in turn while
	// never more than max are held.
	for _, c := range clients {
		if err := c.response(deadline); err != nil {
			t.Fatalf("client %d of %d: %v (held %d, peak %d)", answered+1, len(clients), err, srv.ln.open.Load(), srv.ln.peak.Load())
		}
		answered++
		c.c.Close()
	}
	if p := srv.ln.peak.Load(); p != max {
		t.Fatalf("peak of %d connections held at once, want the cap %d", p, max)
	}
	testkit.Eventually(t, time.Minute, "every slot given back", func() bool { return srv.ln.open.Load() == 0 })
}

// Idle connections are closed by the server: keep-alive ones after the idle timeout,
// silent ones after the header timeout (both injected short here; the test waits for
// the close itself, with a deadline, and never measures its timing).
func TestStatusServerClosesIdleConnections(t *testing.T) {
	const max = 4
	short := serverLimits{maxConns: max, readHeaderTimeout: 50 * time.Millisecond, readTimeout: time.Hour, writeTimeout: time.Hour, idleTimeout: 50 * time.Millisecond}
	srv, err := startServer("127.0.0.1:0", newMetrics(""), t.TempDir(), short, func(msg string) { t.Errorf("report: %s", msg) })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	cases := []struct {
		name    string
		request bool
	}{
		{"keep-alive after one request", true},
		{"silent", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Three times the cap: the later ones get in only because the server
			// closes the earlier ones.
			var clients []*statusClient
			for i := 0; i < 3*max; i++ {
				clients = append(clients, dialStatus(t, srv.addr(), tc.request))
			}
			deadline := time.Now().Add(2 * time.Minute)
			for i, c := range clients {
				if tc.request {
					if err := c.response(deadline); err != nil {
						t.Fatalf("client %d: %v", i+1, err)
					}
				}
				if err := c.closedByServer(deadline); err != nil {
					t.Fatalf("client %d: %v (held %d)", i+1, err, srv.ln.open.Load())
				}
			}
			if p := srv.ln.peak.Load(); p > max {
				t.Fatalf("peak of %d connections held at once, over the cap %d", p, max)
			}
			testkit.Eventually(t, time.Minute, "every slot given back", func() bool { return srv.ln.open.Load() == 0 })
		})
	}
}

func TestConnCapFollowsTheDescriptorLimit(t *testing.T) {
	if n := connCap(); n < 4 || n > maxStatusConns {
		t.Fatalf("connCap() = %d, want 4..%d", n, maxStatusConns)
	}
}
