package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one client connection on the dedicated HTTP/1.1 path. Its
// goroutine reads a request head, decides, forwards and streams the
// response, then reads the next head; the request, URL and header map it
// hands to the route table and the fault rules are reused from request to
// request.
type conn struct {
	s        *server
	p        *Proxy
	nc       net.Conn
	br       *bufio.Reader // from a pool while a request is read or served; nil while idle
	src      connReader    // br reads from it
	idle     [idleBufSize]byte
	remote   string
	clientIP string
	state    atomic.Int32
	up       atomic.Pointer[upConn] // the upstream connection in use, for a forced close
	deadline time.Time              // the read deadline set on nc; zero: none
	handed   bool                   // handed to net/http
	sample   *[]byte                // the error response's sample being kept, while its body is copied
	bodyLeft int64                  // the request body's bytes not yet read
	upload   *upload                // the request body being sent, if it came after its head
	out      heldWrite              // a response's last bytes, written by the wait for the next request
	w        connWriter             // what the response's buffered writer writes to

	head reqHead
	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	resp respHead

	watch watch
}

const (
	stateIdle   = iota // waiting for a request
	stateActive        // serving one
	stateClosed        // closed by shutdown
)

// headBufSize is the client read buffer: a request head must fit in it to
// take the dedicated path (net/http takes larger ones, up to 1 MiB).
const headBufSize = 4 << 10

// idleBufSize is what an idle connection reads its next request's first
// bytes into: a connection holds no 4 KiB buffer while it waits, and a head
// this small costs no more reads than with one.
const idleBufSize = 1 << 10

// heldGrace bounds the wait of a read that wrote a response's last bytes
// (see heldWrite): a client's next request, or its close, that came before
// the write is read after it.
const heldGrace = 20 * time.Millisecond

// watchAfter is how long the proxy waits on the upstream before it starts
// watching the client connection for a disconnect. Fast requests never pay
// for the watch.
const watchAfter = 10 * time.Millisecond

var aLongTimeAgo = time.Unix(1, 0)

func newConn(s *server, nc net.Conn) *conn {
	c := &conn{s: s, p: s.p, nc: nc, hdr: http.Header{}, remote: nc.RemoteAddr().String()}
	c.clientIP, _, _ = net.SplitHostPort(c.remote)
	c.src.c = c
	c.w.c = c
	c.out.init(nc, func() bool {
		// The response is out: the connection is idle, unless the proxy shuts down.
		c.state.CompareAndSwap(stateActive, stateIdle)
		return !c.s.shutting.Load()
	})
	return c
}

// connWriter is what a response's buffered writer writes to: the client
// connection, or, for the last bytes of a response after which the
// connection waits for another request, the held write. Every byte the
// dedicated path sends a client goes through it.
type connWriter struct {
	c    *conn
	hold bool
}

func (w *connWriter) Write(p []byte) (int, error) {
	if w.hold && !w.c.out.held() {
		bp := heads.Get().(*[]byte)
		*bp = append((*bp)[:0], p...)
		w.c.out.hold(*bp, bp)
		return len(p), nil
	}
	return w.c.nc.Write(p)
}

// connReader is what the client buffer reads: the bytes read ahead (by
// the idle wait, or by the watch while a request was served: a pipelined
// request's first byte), then the connection.
type connReader struct {
	c    *conn
	left []byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if len(r.left) > 0 {
		n := copy(p, r.left)
		r.left = r.left[n:]
		return n, nil
	}
	return r.c.nc.Read(p)
}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headBufSize) }}

func (c *conn) serve() {
	defer c.close()
	now := time.Now()
	for first := true; ; first = false {
		if c.s.shutting.Load() {
			return
		}
		n, err := c.readHead(now, first)
		if err != nil || !c.state.CompareAndSwap(stateIdle, stateActive) {
			return
		}
		if n < 0 || !c.head.parse(string(c.peekHead(n))) {
			c.handOff()
			return
		}
		_, _ = c.br.Discard(n)
		keep, end := c.serveRequest()
		if !keep || !c.out.held() && !c.state.CompareAndSwap(stateActive, stateIdle) {
			return // (a held response turns the connection idle once it is out)
		}
		now = end
	}
}

func (c *conn) peekHead(n int) []byte {
	b, _ := c.br.Peek(n)
	return b
}

// readHead waits for the next request head and returns its length, or -1
// when the head is not one for the dedicated path.
func (c *conn) readHead(now time.Time, first bool) (int, error) {
	wait := c.s.opt.IdleTimeout
	if first {
		wait = c.s.opt.ReadHeaderTimeout
	}
	if !c.out.held() {
		c.setIdleDeadline(now.Add(wait), wait/16)
	}
	if c.br != nil && c.br.Buffered() == 0 && len(c.src.left) == 0 {
		c.releaseReader() // nothing pipelined: wait without the buffer
	}
	if c.br == nil {
		var n int
		var err error
		if c.out.held() {
			n, err = c.readHeld(now.Add(wait))
		} else {
			n, err = c.nc.Read(c.idle[:])
		}
		if n == 0 {
			return 0, err
		}
		c.src.left = c.idle[:n]
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(&c.src)
	}
	started := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return i + 4, nil
		}
		if len(buf) == c.br.Size() || len(buf) > 0 && !isTokenByte(buf[0]) {
			return -1, nil // a long head, a TLS handshake, leading blank lines: net/http answers
		}
		if len(buf) > 0 && !started && !first {
			// The head began but did not come whole: bound the rest of it.
			// (A new connection's first head is bounded from the start.)
			started = true
			c.setDeadline(time.Now().Add(c.s.opt.ReadHeaderTimeout))
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// readHeld writes the previous response's held bytes and waits for the
// next request's first bytes in one read (see heldWrite). The wait is
// bounded by heldGrace: bytes that came before the write (a pipelined
// request, a close) raise no readiness the wait would see, so after the
// grace the read is made the usual way, up to the idle deadline.
func (c *conn) readHeld(idleAt time.Time) (int, error) {
	grace := time.Now().Add(heldGrace)
	if idleAt.Before(grace) {
		grace = idleAt
	}
	c.setDeadline(grace)
	n, begun, err := c.out.run(c.idle[:])
	switch {
	case !begun: // the grace was over before the read began
		if err := c.out.flush(); err != nil {
			return 0, err
		}
		c.state.CompareAndSwap(stateActive, stateIdle)
	case n > 0:
		return n, nil
	case err == nil:
		return 0, net.ErrClosed // the proxy shuts down
	case !isTimeout(err) || !time.Now().Before(idleAt):
		return 0, err
	}
	c.setDeadline(idleAt)
	return c.nc.Read(c.idle[:])
}

func isTokenByte(b byte) bool { return b > ' ' && b < 0x7f && b != ':' }

// setIdleDeadline sets the read deadline to t, unless the one set is
// already within slack of it: a busy connection does not reset its timer on
// every request.
func (c *conn) setIdleDeadline(t time.Time, slack time.Duration) {
	if d := t.Sub(c.deadline); !c.deadline.IsZero() && d >= 0 && d <= slack {
		return
	}
	c.setDeadline(t)
}

func (c *conn) setDeadline(t time.Time) {
	c.deadline = t
	_ = c.nc.SetReadDeadline(t)
}

// handOff gives the connection, with the bytes read but not consumed, to net/http.
func (c *conn) handOff() {
	if c.out.flush() != nil {
		return
	}
	buf, _ := c.br.Peek(c.br.Buffered())
	buf = append(bytes.Clone(buf), c.src.left...)
	c.src.left = nil
	c.setDeadline(time.Time{})
	c.handed = true
	c.s.handOff(c.nc, buf)
}

func (c *conn) releaseReader() {
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
}

func (c *conn) close() {
	_ = c.out.flush() // a response held for the next read, when there is none (shutdown)
	if c.br != nil {
		c.releaseReader()
	}
	if !c.handed {
		c.nc.Close()
		c.s.release()
	}
	c.s.untrack(c)
}

// closeIfIdle closes the connection if it waits for a request (shutdown).
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosed) {
		c.nc.Close()
	}
}

// forceClose closes the connection and the upstream connection it uses
// (the drain time is over).
func (c *conn) forceClose() {
	c.nc.Close()
	if uc := c.up.Load(); uc != nil {
		uc.nc.Close()
	}
}

// serveRequest serves the request whose head c.head holds and records it.
// It reports whether the connection can carry another request, and when
// the request ended.
func (c *conn) serveRequest() (keep bool, end time.Time) {
	r := &c.req
	c.head.request(r, &c.url, c.hdr, &c.vals, c.remote)
	c.bodyLeft = c.head.contentLength
	if c.bodyLeft > int64(c.br.Buffered()) {
		c.setDeadline(time.Time{}) // a body takes its time, as with net/http: the head's deadlines are for heads
	}
	x := c.p.begin(r)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(&c.w)
	o := c.exchange(r, &x, bw)
	c.watch.stop(c)
	if gone := c.watch.goneAt(); !gone.IsZero() {
		o.keep = false
		if o.end.IsZero() || gone.Before(o.end) {
			o.end = gone // the client waited until then
		}
	}
	if o.end.IsZero() {
		o.end = c.p.cfg.Now()
	}
	// Recorded before the response's last bytes go out, as net/http's path
	// records before its server flushes: a client that has its response
	// finds the request counted.
	c.p.record(&x, r.Method, r.URL.Path, o.code, o.end)
	// When the connection goes on, the response's last bytes go out with
	// the wait for the next request (readHeld).
	c.w.hold = o.keep && c.bodyLeft == 0 && c.br.Buffered() == 0 && len(c.src.left) == 0 && !c.s.shutting.Load()
	if bw.Flush() != nil {
		o.keep = false
	}
	c.w.hold = false
	bw.Reset(nil)
	writers.Put(bw)
	if o.keep && c.bodyLeft > 0 {
		// The request's body, unread, goes before the next request.
		_, err := io.CopyN(io.Discard, c.br, c.bodyLeft)
		o.keep = err == nil
	}
	if cap(c.resp.buf) > headBufSize {
		c.resp.buf = nil // an idle connection keeps no large response head
	}
	return o.keep && !c.s.shutting.Load(), o.end
}

// outcome is how one request ended on the dedicated path.
type outcome struct {
	code int       // the status recorded: see the table in docs/proxy.md
	keep bool      // the client connection can carry another request
	end  time.Time // when the client's wait ended (zero: now)
}

var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

// exchange answers the request: delay, then an injected answer or the
// upstream's.
func (c *conn) exchange(r *http.Request, x *exchange, bw *bufio.Writer) outcome {
	if x.d.Delay > 0 && !c.sleep(x.d.Delay) {
		return outcome{code: StatusClientClosedRequest}
	}
	if t := x.d.Terminal; t != nil {
		if t.Spec.Abort {
			return outcome{code: 0} // the connection closes without a response
		}
		return c.answer(r, x, bw)
	}
	if len(x.d.Modifiers) > 0 {
		return c.forwardModified(r, x, bw)
	}
	return c.forward(r, x, bw)
}

// sleep waits an injected delay, watching the client. It reports false
// when the client left meanwhile.
func (c *conn) sleep(d time.Duration) bool {
	c.watch.start(c)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.watch.ended():
		if !c.watch.goneAt().IsZero() {
			return false
		}
		// The client sent its next request: it is there, so just wait.
		select {
		case <-t.C:
			return true
		case <-c.s.force:
			return false
		}
	case <-c.s.force:
		return false
	}
}

// answer writes a status fault's response.
func (c *conn) answer(r *http.Request, x *exchange, bw *bufio.Writer) outcome {
	code, h, body := c.p.statusResponse(x)
	keep := !c.mustClose()
	if !keep {
		h.Set("Connection", "close")
	}
	if h.Get("Date") == "" {
		h.Set("Date", c.p.cfg.Now().UTC().Format(http.TimeFormat))
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(statusLine(code))
	bw.WriteString("\r\n")
	_ = h.Write(bw)
	bw.WriteString("\r\n")
	if r.Method != http.MethodHead {
		bw.WriteString(body)
	}
	if x.sample = c.p.sampling(code); x.sample != nil {
		x.sample = keepBytes(x.sample, body)
	}
	return outcome{code: code, keep: keep}
}

// mustClose reports whether the connection ends with this response: the
// client asked, the proxy shuts down, or too much of the request body is
// left unread to drop it.
func (c *conn) mustClose() bool {
	return c.head.close || c.bodyLeft > maxDiscard || c.s.shutting.Load()
}

// maxDiscard is the most of an unread request body the proxy reads and
// drops to keep the connection (net/http's figure).
const maxDiscard = 256 << 10

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
