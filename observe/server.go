package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// listenAddr makes a bare port ("9400" or ":9400") bind to 127.0.0.1: the page shows
// commands, paths and log lines, which are nobody else's business unless the user
// names an interface.
func listenAddr(addr string) (string, error) {
	if _, err := strconv.Atoi(addr); err == nil {
		return net.JoinHostPort("127.0.0.1", addr), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %q: %v; give HOST:PORT or PORT, e.g. 127.0.0.1:9400", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// serverLimits bound what clients of the status server can hold. Every connection is
// a file descriptor of the supervisor, which needs descriptors of its own to start the
// job (pipes, a pty, /proc reads): idle keep-alive connections that never close (a
// browser tab, a scraper, a port scan) once made every restart fail with "too many
// open files".
type serverLimits struct {
	maxConns          int
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
}

// maxStatusConns is the most connections the status server holds at once, whatever
// the descriptor limit; the page refreshes itself and a scraper needs one.
const maxStatusConns = 64

func defaultServerLimits() serverLimits {
	return serverLimits{
		maxConns:          connCap(),
		readHeaderTimeout: 5 * time.Second,
		readTimeout:       10 * time.Second,
		writeTimeout:      30 * time.Second,
		idleTimeout:       30 * time.Second,
	}
}

// connCap is maxStatusConns, or an eighth of the descriptor limit when that is less
// (at least 4), so that the server never takes more than a small share of the
// supervisor's descriptors.
func connCap() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return maxStatusConns
	}
	return int(min(maxStatusConns, max(4, rl.Cur/8)))
}

// server serves /metrics, the status page at / and /healthz.
type server struct {
	srv  *http.Server
	ln   *limitListener
	done chan struct{}
}

// startServer listens on addr and serves in the background. Once it listens, nothing
// the server meets stops the job: a failed accept is retried by http.Server, and
// if serving ends for another reason, report says so once and the run goes on.
func startServer(addr string, m *metrics, stateDir string, lim serverLimits, report func(string)) (*server, error) {
	hostport, err := listenAddr(addr)
	if err != nil {
		return nil, err
	}
	inner, err := net.Listen("tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w; pick a free port or stop what holds it", addr, err)
	}
	ln := newLimitListener(inner, lim.maxConns)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		// Rendered into a buffer so a failure can still become a proper 500.
		var b bytes.Buffer
		if err := RenderPage(&b, stateDir, true); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b.Bytes())
	})
	s := &server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: lim.readHeaderTimeout,
			ReadTimeout:       lim.readTimeout,
			WriteTimeout:      lim.writeTimeout,
			IdleTimeout:       lim.idleTimeout,
			MaxHeaderBytes:    64 << 10,
			// http.Server logs to stderr on its own; its errors are the clients'.
			ErrorLog: log.New(io.Discard, "", 0),
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			report(fmt.Sprintf("the status server on %s stopped: %v; the job is not affected", ln.Addr(), err))
		}
	}()
	return s, nil
}

func (s *server) addr() string { return s.ln.Addr().String() }

// close lets requests in flight finish for a moment, then drops them.
func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// limitListener accepts at most max connections at a time; further clients wait in
// the kernel's accept queue, which costs the supervisor no descriptor, until one of
// the held connections closes.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	open      atomic.Int64 // connections accepted and not yet closed
	peak      atomic.Int64 // the most open at once
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, max), closed: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &limitConn{Conn: c, l: l}, nil
}

// Close stops the listener and wakes an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}
