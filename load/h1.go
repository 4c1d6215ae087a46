package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// h1Client sends requests to a plain http:// target over HTTP/1.1
// connections of its own, one per worker: the worker writes a request and
// reads its response on the same goroutine, where net/http's Transport hands
// each request from the caller to a writing and a reading goroutine per
// connection and allocates a Request, a Response and their header maps. The
// profile in docs/benchmarks.md shows what that saves. It keeps what a load
// generator needs of HTTP/1.1: keep-alive, Content-Length, chunked and
// close-delimited bodies, HEAD, 1xx, 204 and 304 answers, Connection: close,
// and a request on a connection the server closed while it was idle is sent
// again on a new one, as net/http does. https:// targets and a configured
// Transport go through net/http.
type h1Client struct {
	addr    string // host:port to dial
	timeout time.Duration

	mu     sync.Mutex
	conns  map[*h1Conn]struct{}
	closed bool
}

func newH1Client(u *url.URL, timeout time.Duration) *h1Client {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &h1Client{addr: addr, timeout: timeout, conns: map[*h1Conn]struct{}{}}
}

// h1Conn is one keep-alive connection, owned by one worker at a time.
type h1Conn struct {
	nc       net.Conn
	r        *bufio.Reader
	lastUsed time.Time // when its last response ended (the generator's clock)
}

// h1ReadBuffer is each connection's read buffer: net/http's default size.
const h1ReadBuffer = 4 << 10

// idleCheckAfter: a connection idle for longer is checked for a close by the
// server before it carries a request. Servers close idle connections after
// seconds (Go's and Node's defaults are 5 s and more), so a connection
// reused within this time needs no check, and at high rates none does.
const idleCheckAfter = 500 * time.Millisecond

func (h *h1Client) dial(ctx context.Context, deadline time.Time) (*h1Conn, error) {
	d := net.Dialer{Timeout: min(h.timeout, 10*time.Second), Deadline: deadline, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{nc: nc, r: bufio.NewReaderSize(nc, h1ReadBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		nc.Close()
		return nil, context.Canceled
	}
	h.conns[c] = struct{}{}
	return c, nil
}

func (h *h1Client) release(c *h1Conn) {
	c.nc.Close()
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// cancel interrupts every request in flight and fails every later one: the
// end of the drain after an interruption.
func (h *h1Client) cancel() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.conns {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
	}
}

// h1Exchange is one request's bytes and what came back.
type h1Exchange struct {
	req        []byte
	head       bool // a HEAD request: the response has no body
	replayable bool // safe to send again after a stale connection failed it
	status     int
}

// do sends x.req on *cp (dialling when nil) and reads the response, leaving
// in *cp the connection to reuse, or nil.
func (h *h1Client) do(ctx context.Context, cp **h1Conn, x *h1Exchange, now, deadline time.Time) error {
	if c := *cp; c != nil && now.Sub(c.lastUsed) > idleCheckAfter && !c.alive() {
		h.release(c)
		*cp = nil
	}
	for attempt := 0; ; attempt++ {
		c := *cp
		fresh := c == nil
		if fresh {
			var err error
			if c, err = h.dial(ctx, deadline); err != nil {
				return err
			}
			*cp = c
		}
		keep, started, err := c.exchange(x, deadline)
		if err == nil && keep {
			return nil
		}
		h.release(c)
		*cp = nil
		if err == nil {
			return nil
		}
		// A reused connection that yields not one byte of a response was
		// most likely closed by the server while idle: send again, once, on
		// a new connection, if the request may be sent twice.
		if fresh || started || attempt > 0 || !x.replayable || ctx.Err() != nil || !isClosedConn(err) {
			return err
		}
	}
}

func isClosedConn(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &op) && !op.Timeout()
}

// exchange writes the request and reads the response; keep says whether the
// connection may carry another, started whether any of the response arrived.
func (c *h1Conn) exchange(x *h1Exchange, deadline time.Time) (keep, started bool, err error) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return false, false, err
	}
	if _, err := c.nc.Write(x.req); err != nil {
		return false, false, err
	}
	for {
		if _, err := c.r.Peek(1); err != nil {
			return false, started, err
		}
		started = true
		st, err := c.readHead()
		if err != nil {
			return false, true, err
		}
		// 1xx answers come before the real one (101 ends HTTP on the
		// connection: count it and close).
		if st.code >= 100 && st.code < 200 && st.code != 101 {
			continue
		}
		x.status = st.code
		noBody := x.head || st.code == 101 || st.code == 204 || st.code == 304
		switch {
		case noBody:
		case st.chunked:
			if err := c.discardChunked(); err != nil {
				return false, true, err
			}
		case st.length >= 0:
			if _, err := c.r.Discard(int(st.length)); err != nil {
				return false, true, unexpectedEOF(err)
			}
		default: // delimited by the server closing the connection
			if _, err := c.r.WriteTo(io.Discard); err != nil {
				return false, true, err
			}
			return false, true, nil
		}
		return st.keepAlive && st.code != 101, true, nil
	}
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// h1Head is what a response head says about its body and its connection.
type h1Head struct {
	code      int
	length    int64 // −1 when not given
	chunked   bool
	keepAlive bool
}

// maxHeadBytes bounds a response head, as net/http's default of 1 MB does.
const maxHeadBytes = 1 << 20

var (
	errMalformed = errors.New("malformed HTTP response")
	errHeadLarge = errors.New("response head larger than 1 MB")
)

// readHead reads a status line and the header fields after it.
func (c *h1Conn) readHead() (h1Head, error) {
	st := h1Head{length: -1}
	total := 0
	line, err := c.line(&total)
	if err != nil {
		return st, err
	}
	// HTTP/1.x SSS reason
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return st, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	minor := line[7]
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 || len(line) > 12 && line[12] != ' ' {
		return st, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	st.code = code
	st.keepAlive = minor != '0'
	for {
		line, err := c.line(&total)
		if err != nil {
			return st, err
		}
		if len(line) == 0 {
			return st, nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return st, fmt.Errorf("%w: header line %q", errMalformed, truncate(line))
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 || st.length >= 0 && n != st.length {
				return st, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(v))
			}
			st.length = n
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			st.chunked = hasToken(v, "chunked")
		case bytes.EqualFold(k, []byte("Connection")):
			if hasToken(v, "close") {
				st.keepAlive = false
			} else if hasToken(v, "keep-alive") {
				st.keepAlive = true
			}
		}
	}
}

// line returns the next line without its CRLF; the bytes stay valid until
// the next read. A line longer than the buffer keeps its first part only.
func (c *h1Conn) line(total *int) ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	*total += len(line)
	if errors.Is(err, bufio.ErrBufferFull) {
		// Keep the prefix (Peek would overwrite it): copy it, skip the rest.
		head := bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			if *total > maxHeadBytes {
				return nil, errHeadLarge
			}
			line, err = c.r.ReadSlice('\n')
			*total += len(line)
		}
		line = head
	}
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	if *total > maxHeadBytes {
		return nil, errHeadLarge
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

// discardChunked reads a chunked body and its trailer.
func (c *h1Conn) discardChunked() error {
	total := 0
	for {
		line, err := c.line(&total)
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 63)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, truncate(line))
		}
		if n == 0 {
			break
		}
		if _, err := c.r.Discard(int(n)); err != nil {
			return unexpectedEOF(err)
		}
		if crlf, err := c.line(&total); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
		total = 0 // the bound is on each chunk's framing, not on the body
	}
	for { // trailer fields, then an empty line
		line, err := c.line(&total)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// hasToken reports whether a comma-separated header value holds token.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
