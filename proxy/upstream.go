package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// upstreamPool keeps idle keep-alive connections to one upstream for the
// dedicated path. A connection belongs to one request at a time and has no
// goroutine of its own: the client connection's goroutine writes the
// request and reads the response.
type upstreamPool struct {
	host    string // as the upstream URL names it, for messages
	addr    string // host:port
	dialer  net.Dialer
	maxIdle int
	idleFor time.Duration // idle connections older than this are closed

	mu   sync.Mutex
	idle []*upConn // most recently used last
}

// upConn is one connection to the upstream.
type upConn struct {
	nc       net.Conn
	br       *bufio.Reader // reads from the upConn itself
	reused   bool          // it served a request before this one
	lastUsed time.Time     // when it went idle
	deadline bool          // a read deadline is set

	// out is a request the next read writes before it waits for the
	// response. No byte can have come before it (the previous response was
	// read whole), so the wait is exact.
	out heldWrite
}

// staleAfter is how long a connection may sit idle before it is checked for
// a close by the upstream before use (a keep-alive timeout on the upstream's
// side: Node.js closes idle connections after 5s).
const staleAfter = time.Second

func newUpstreamPool(host, addr string) *upstreamPool {
	return &upstreamPool{
		host:    host,
		addr:    addr,
		dialer:  net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: 1024,
		idleFor: 90 * time.Second,
	}
}

// get returns an idle connection, or dials a new one.
func (p *upstreamPool) get(ctx context.Context, now time.Time) (*upConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(uc.lastUsed) < staleAfter || alive(uc.nc) {
			return uc, nil
		}
		uc.nc.Close()
	}
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{nc: nc}
	uc.out.init(nc, nil)
	uc.br = bufio.NewReaderSize(uc, 4<<10)
	return uc, nil
}

// put returns a connection whose response was read completely.
func (p *upstreamPool) put(uc *upConn, now time.Time) {
	uc.reused, uc.lastUsed = true, now
	p.mu.Lock()
	if len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		uc.nc.Close()
		return
	}
	p.idle = append(p.idle, uc)
	var old *upConn
	if first := p.idle[0]; now.Sub(first.lastUsed) > p.idleFor {
		old = first
		p.idle = append(p.idle[:0], p.idle[1:]...)
	}
	p.mu.Unlock()
	if old != nil {
		old.nc.Close()
	}
}

// closeIdle closes every idle connection.
func (p *upstreamPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, uc := range idle {
		uc.nc.Close()
	}
}

// alive reports whether an idle connection is still open: a peek that
// neither blocks nor consumes finds nothing to read (EAGAIN). End of file
// means the upstream closed it; data means it sent something unasked.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	cerr := rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(err, syscall.EAGAIN)
	})
	return cerr == nil && ok
}

// Read reads from the connection, writing the held request first.
func (uc *upConn) Read(p []byte) (int, error) {
	if !uc.out.held() {
		return uc.nc.Read(p)
	}
	n, _, err := uc.out.run(p) // a read that could not begin keeps the request for the next
	return n, err
}

// setDeadline bounds the wait for the next read; the zero time clears it.
func (uc *upConn) setDeadline(t time.Time) {
	if t.IsZero() && !uc.deadline {
		return
	}
	uc.deadline = !t.IsZero()
	_ = uc.nc.SetReadDeadline(t)
}

// framing is how a message's body is delimited.
type framing uint8

const (
	framingNone    framing = iota // no body (HEAD, 1xx, 204, 304)
	framingLength                 // Content-Length bytes
	framingChunked                // chunked transfer coding
	framingClose                  // until the upstream closes the connection
)

// respHead is an upstream response head as the dedicated path reads it: the
// raw bytes and where each field line is, so that it can be passed on with
// only the hop-by-hop fields left out.
type respHead struct {
	buf           []byte // the head, line by line, CRLFs included
	status        int
	statusRest    []byte // the status line after the version, without CRLF: " 200 OK"
	lines         []span // the field lines in buf
	framing       framing
	contentLength int64
	close         bool // the upstream will close the connection after this response
	hasDate       bool
	revision      []byte // the split's revision header, in header mode
}

type span struct {
	start, end int
	hop        bool
}

// maxHeadBytes bounds an upstream's response head.
const maxHeadBytes = 1 << 20

var errHeadTooLarge = errors.New("response head larger than 1 MiB")

// readHead reads one response head from the upstream. revisionHeader names
// the split's header to note ("" for none).
func (h *respHead) read(br *bufio.Reader, method string, revisionHeader string) error {
	buf := h.buf[:0]
	lines := h.lines[:0]
	*h = respHead{}
	var err error
	if buf, err = appendLine(buf, br); err != nil {
		return err
	}
	line := trimCRLF(buf)
	version, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') || !bytes.HasPrefix(version, []byte("HTTP/1.")) || len(version) != 8 {
		return fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 {
		return fmt.Errorf("malformed status line %q", line)
	}
	h.status = code
	http10 := version[7] == '0'
	statusEnd := len(buf)
	var connection [][]byte
	closeTok, keepAlive := false, false
	lengths, chunked, transferEncoding := 0, false, false
	var lengthLines []int
	for {
		start := len(buf)
		if buf, err = appendLine(buf, br); err != nil {
			return err
		}
		line := trimCRLF(buf[start:])
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !validFieldName(name) {
			return fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.Trim(value, " \t")
		s := span{start: start, end: len(buf)}
		switch {
		case equalFold(name, "Content-Length"):
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil || value[0] == '+' || (lengths > 0 && int64(n) != h.contentLength) {
				return fmt.Errorf("invalid Content-Length %q", value)
			}
			h.contentLength = int64(n)
			lengths++
			lengthLines = append(lengthLines, len(lines))
		case equalFold(name, "Transfer-Encoding"):
			transferEncoding = true
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.Trim(value[i+1:], " \t")
			}
			chunked = equalFold(last, "chunked")
		case equalFold(name, "Connection"):
			s.hop = true
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case equalFold(tok, "close"):
					closeTok = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				case len(tok) > 0:
					connection = append(connection, tok)
				}
			}
		case equalFold(name, "Keep-Alive"), equalFold(name, "Proxy-Connection"), equalFold(name, "Te"), equalFold(name, "Upgrade"):
			s.hop = true
		case equalFold(name, "Date"):
			h.hasDate = true
		case revisionHeader != "" && equalFold(name, revisionHeader):
			h.revision = value
		}
		lines = append(lines, s)
		if len(buf) > maxHeadBytes {
			return errHeadTooLarge
		}
	}
	for _, name := range connection {
		for i, s := range lines {
			n, _, _ := bytes.Cut(buf[s.start:s.end], []byte(":"))
			if bytes.EqualFold(n, name) {
				lines[i].hop = true
			}
		}
	}
	h.buf, h.lines = buf, lines
	h.close = closeTok || http10 && !keepAlive
	h.statusRest = buf[len(version):len(trimCRLF(buf[:statusEnd]))]
	switch {
	case code < 200 || code == 204 || code == 304 || method == "HEAD":
		h.framing = framingNone
	case transferEncoding && chunked:
		h.framing = framingChunked
		for _, i := range lengthLines {
			lines[i].hop = true // the chunks frame the body: a length beside them must not pass (RFC 9112, 6.3)
		}
	case transferEncoding:
		h.framing, h.close = framingClose, true
	case lengths > 0:
		h.framing = framingLength
	default:
		h.framing, h.close = framingClose, true
	}
	return nil
}

// appendLine appends one line, CRLF or LF included, however long it is.
func appendLine(dst []byte, br *bufio.Reader) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		dst = append(dst, frag...)
		if err == nil {
			return dst, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		if len(dst) > maxHeadBytes {
			return dst, errHeadTooLarge
		}
	}
}

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if c|0x20 != d|0x20 || (c|0x20 < 'a' || c|0x20 > 'z') && c != d {
			return false
		}
	}
	return true
}

func validFieldName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}
