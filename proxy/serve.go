package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ServeOptions tune how Serve accepts and keeps client connections. Zero
// values take the defaults noted.
type ServeOptions struct {
	// Drain bounds how long in-flight requests may finish after ctx ends
	// (default 30s); then the connections still open are closed.
	Drain time.Duration
	// ReadHeaderTimeout bounds the wait for a request head: from a new
	// connection, or from a request's first byte, to the end of its head
	// (default 30s). A client that is slower is disconnected (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (default 2m).
	IdleTimeout time.Duration
	// MaxConns caps the client connections open at once (0: no cap). At the
	// cap, new connections wait in the listen backlog until one closes.
	MaxConns int
	// H2C also serves HTTP/2 without TLS (prior knowledge), besides HTTP/1.1.
	H2C bool
}

func (o *ServeOptions) defaults() {
	if o.Drain == 0 {
		o.Drain = 30 * time.Second
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = 30 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 2 * time.Minute
	}
}

// Serve serves the proxy on ln until ctx ends, then stops accepting, lets
// in-flight requests finish within Drain, closes what is left, and returns
// once every request has been recorded. It returns nil after a clean
// shutdown, or the listener's error.
//
// HTTP/1.1 requests to a plain-HTTP upstream take a dedicated forwarding
// path: one goroutine per client connection reads each request head,
// forwards it on a pooled upstream connection and streams the response
// back, with no per-request goroutine and one allocation per request head.
// A connection whose next request needs more than that path does (HTTP/1.0,
// h2c, upgrades and WebSockets, Expect: 100-continue, chunked request
// bodies, heads over 4 KiB, anything malformed) is handed whole to net/http
// and ServeHTTP, which handle every case.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener, opt ServeOptions) error {
	opt.defaults()
	s := &server{p: p, opt: opt, conns: map[*conn]struct{}{}, closing: make(chan struct{}), force: make(chan struct{})}
	if opt.MaxConns > 0 {
		s.slots = make(chan struct{}, opt.MaxConns)
	}
	s.dialCtx, s.cancelDial = context.WithCancel(context.WithoutCancel(ctx))
	defer s.cancelDial()
	s.handoff = &handoff{conns: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}
	s.std = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: opt.ReadHeaderTimeout,
		IdleTimeout:       opt.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:          slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelDebug),
	}
	if opt.H2C {
		s.std.Protocols = new(http.Protocols)
		s.std.Protocols.SetHTTP1(true)
		s.std.Protocols.SetUnencryptedHTTP2(true)
	}
	stdDone := make(chan error, 1)
	go func() { stdDone <- s.std.Serve(s.handoff) }()
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.accept(ln) }()

	var err error
	select {
	case err = <-acceptDone:
	case <-ctx.Done():
	}
	close(s.closing)
	ln.Close()
	if ctx.Err() != nil {
		err = <-acceptDone
	}
	s.shutdown(stdDone)
	return err
}

// server is one Serve call's state.
type server struct {
	p       *Proxy
	opt     ServeOptions
	std     *http.Server // serves the connections handed off
	handoff *handoff
	slots   chan struct{} // MaxConns; nil without a cap

	closing    chan struct{} // closed when ctx ends
	force      chan struct{} // closed when the drain time is over
	dialCtx    context.Context
	cancelDial context.CancelFunc
	shutting   atomic.Bool

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// accept accepts connections until the listener closes.
func (s *server) accept(ln net.Listener) error {
	var backoff time.Duration
	for {
		if s.slots != nil {
			select {
			case s.slots <- struct{}{}:
			case <-s.closing:
				return nil
			}
		}
		nc, err := ln.Accept()
		if err != nil {
			s.release()
			select {
			case <-s.closing:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, or another passing failure: wait and retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.p.cfg.Logger.Warn("accepting a connection", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.closing:
				return nil
			}
			continue
		}
		backoff = 0
		if !s.p.fast {
			s.handOff(nc, nil)
			continue
		}
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			s.release()
			continue
		}
		go c.serve()
	}
}

// release frees a MaxConns slot.
func (s *server) release() {
	if s.slots != nil {
		<-s.slots
	}
}

func (s *server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handOff gives a connection to net/http, with the bytes already read from
// it (buffered) to be read again first.
func (s *server) handOff(nc net.Conn, buffered []byte) {
	rc := &replayConn{Conn: nc, buf: buffered, release: s.release}
	select {
	case s.handoff.conns <- rc:
	case <-s.handoff.done:
		_ = rc.Close()
	}
}

// shutdown closes idle connections, waits for active ones to finish their
// request, and after Drain closes what is left.
func (s *server) shutdown(stdDone <-chan error) {
	s.mu.Lock()
	s.shutting.Store(true)
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.Background(), s.opt.Drain)
	defer cancel()
	stdErr := make(chan error, 1)
	go func() { stdErr <- s.std.Shutdown(dctx) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-dctx.Done():
		close(s.force)
		s.cancelDial()
		s.mu.Lock()
		for c := range s.conns {
			c.forceClose()
		}
		s.mu.Unlock()
		<-done
	}
	if err := <-stdErr; err != nil {
		s.std.Close()
	}
	<-stdDone
	s.p.closeIdle()
}

// handoff is the listener net/http's server accepts handed-off connections from.
type handoff struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// replayConn is a client connection handed to net/http: reads return the
// bytes the dedicated path had already read, then the connection's own.
// Closing it frees its MaxConns slot.
type replayConn struct {
	net.Conn
	buf     []byte
	release func()
	once    sync.Once
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
