package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"slolab.dev/slolab/match"
)

// forward sends the request to the upstream on a pooled connection and
// streams the response back, both ways as the bytes come.
func (c *conn) forward(r *http.Request, x *exchange, bw *bufio.Writer) outcome {
	pool := c.p.poolFor(x.rev)
	var uc *upConn
	var up *upload
	var err error
	for attempt := 0; ; attempt++ {
		if uc, err = pool.get(c.s.dialCtx, x.start); err != nil {
			return c.upstreamFailed(r, x, bw, err)
		}
		c.up.Store(uc)
		var sentAt time.Time
		if sentAt, up, err = c.sendRequest(uc, c.p.timeoutFor(x.route)); err == nil {
			err = c.readResponseHead(uc, r.Method, sentAt, c.p.timeoutFor(x.route), up, bw)
		}
		if err == nil {
			break
		}
		uc.out.release()
		uc.nc.Close()
		c.up.Store(nil)
		if attempt == 0 && c.retryable(uc, r, err) {
			continue // the upstream had closed the idle connection: a fresh one
		}
		if errors.Is(err, errClientBody) || up != nil && errors.Is(c.finishUpload(uc), errClientBody) {
			return outcome{code: StatusClientClosedRequest} // the client broke off its body: not the upstream's doing
		}
		return c.upstreamFailed(r, x, bw, err)
	}
	defer c.up.Store(nil)
	if !c.watch.goneAt().IsZero() {
		// The client left while the upstream took its time, but the upstream
		// answered within its timeout: the client's own choice.
		uc.nc.Close()
		if up != nil {
			_ = c.finishUpload(uc) // the client left: whatever became of its body
		}
		return outcome{code: StatusClientClosedRequest}
	}
	if x.rev == match.RevisionNone && c.p.revHeader != "" {
		// Header mode: the response names its revision, as split.FromResponse reads it.
		x.rev = match.RevisionStable
		if c.resp.revision != nil {
			x.rev = match.RevisionOf(string(c.resp.revision))
		}
	}
	resp := &c.resp
	closeClient := c.mustClose() || resp.framing == framingClose || up != nil && !up.complete()
	c.writeResponseHead(bw, x, closeClient)
	upErr, cErr := c.copyBody(bw, uc)
	uploaded := up == nil || c.finishUpload(uc) == nil
	switch {
	case cErr != nil:
		uc.nc.Close()
		return outcome{code: StatusClientClosedRequest}
	case upErr != nil:
		uc.nc.Close()
		c.p.cfg.Logger.Warn("upstream broke off a response", "method", r.Method, "path", r.URL.Path, "status", resp.status, "err", upErr)
		return outcome{code: 0} // the client got a truncated response
	}
	end := c.p.cfg.Now()
	if resp.close || !uploaded {
		uc.nc.Close()
	} else {
		pool.put(uc, end)
	}
	return outcome{code: resp.status, keep: !closeClient && uploaded, end: end}
}

// retryable reports whether a request that failed on a reused connection
// before any response byte may go again on a fresh one: the upstream had
// closed the idle connection. As in net/http, only a request without a body
// that either never went out or is idempotent.
func (c *conn) retryable(uc *upConn, r *http.Request, err error) bool {
	if !uc.reused || c.head.contentLength > 0 || isTimeout(err) || uc.br.Buffered() > 0 || !c.watch.goneAt().IsZero() {
		return false
	}
	var we writeError
	if errors.As(err, &we) {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// writeError is a failure to send the request.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// sendRequest sends the request head with the body bytes already read.
// When that is the whole request, it goes out with the wait for the
// response (upConn.writeThenRead); otherwise it is written now and the rest
// of the body follows (startUpload).
func (c *conn) sendRequest(uc *upConn, timeout time.Duration) (time.Time, *upload, error) {
	bp := heads.Get().(*[]byte)
	b := c.p.appendRequestHead((*bp)[:0], &c.head, c.clientIP)
	if n := min(int64(c.br.Buffered()), c.bodyLeft); n > 0 {
		body, _ := c.br.Peek(int(n))
		b = append(b, body...)
		_, _ = c.br.Discard(int(n))
		c.bodyLeft -= n
	}
	*bp = b
	uc.out.hold(b, bp)
	if c.bodyLeft == 0 {
		return time.Now(), nil, nil
	}
	if err := uc.out.flush(); err != nil {
		return time.Time{}, nil, err
	}
	return time.Time{}, c.startUpload(uc, timeout), nil
}

// appendRequestHead appends the request line and fields as the client sent
// them, less the hop-by-hop ones, with X-Forwarded-For, -Host and -Proto
// (and Forwarded, when the client sent one) extended or set.
func (p *Proxy) appendRequestHead(b []byte, h *reqHead, clientIP string) []byte {
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.target...)
	b = append(b, " HTTP/1.1\r\n"...)
	for _, f := range h.fields {
		if f.kind == fieldPass {
			b = appendField(b, f.name, f.value)
		}
	}
	if h.teTrailers {
		b = appendField(b, "Te", "trailers")
	}
	if clientIP != "" {
		b = append(b, "X-Forwarded-For: "...)
		for _, f := range h.fields {
			if f.kind == fieldXFF {
				b = append(b, f.value...)
				b = append(b, ", "...)
			}
		}
		b = append(b, clientIP...)
		b = append(b, "\r\n"...)
	}
	b = appendField(b, "X-Forwarded-Host", h.host)
	b = appendField(b, "X-Forwarded-Proto", "http")
	if h.nfwd > 0 {
		b = append(b, "Forwarded: "...)
		for _, f := range h.fields {
			if f.kind == fieldForwarded {
				b = append(b, f.value...)
				b = append(b, ", "...)
			}
		}
		b = append(b, forwardedElement(clientIP, h.host)...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func writeField(w *bufio.Writer, name, value string) {
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(value)
	w.WriteString("\r\n")
}

// readResponseHead waits for the response head, passing 1xx responses on
// to the client. The wait is bounded by the timeout from when the request
// was sent; after watchAfter the client is watched, so that one that leaves
// is noticed (the wait goes on: an upstream that never answers counts).
func (c *conn) readResponseHead(uc *upConn, method string, sentAt time.Time, timeout time.Duration, up *upload, bw *bufio.Writer) error {
	for {
		if err := c.waitFirstByte(uc, sentAt, timeout, up); err != nil {
			return err
		}
		if buf, _ := uc.br.Peek(uc.br.Buffered()); !bytes.Contains(buf, []byte("\r\n\r\n")) && up == nil {
			// The head came in pieces: the rest of it within the timeout.
			uc.setDeadline(sentAt.Add(timeout))
		}
		if err := c.resp.read(uc.br, method, c.p.revHeader); err != nil {
			if isTimeout(err) {
				return headerTimeoutError{timeout}
			}
			return err
		}
		if c.resp.status >= 200 || c.resp.status == http.StatusSwitchingProtocols {
			if c.resp.status == http.StatusSwitchingProtocols {
				return errors.New("101 Switching Protocols to a request that asked for no upgrade")
			}
			return nil
		}
		// An interim response (103 Early Hints, a 100 nobody asked for): pass it on.
		bw.WriteString("HTTP/1.1")
		bw.Write(c.resp.statusRest)
		bw.WriteString("\r\n")
		for _, s := range c.resp.lines {
			if !s.hop {
				bw.Write(trimCRLF(c.resp.buf[s.start:s.end]))
				bw.WriteString("\r\n")
			}
		}
		bw.WriteString("\r\n")
		_ = bw.Flush()
		if up == nil {
			sentAt = time.Now()
		}
	}
}

// waitFirstByte waits until the upstream starts its response.
func (c *conn) waitFirstByte(uc *upConn, sentAt time.Time, timeout time.Duration, up *upload) error {
	if uc.br.Buffered() > 0 {
		return nil
	}
	if up != nil {
		// The deadline is set when the body has gone (upload.run), and cut
		// short when the client breaks off the body.
		uc.setDeadline(time.Time{})
		if _, err := uc.br.Peek(1); err != nil {
			if errors.Is(c.finishUpload(uc), errClientBody) {
				return errClientBody
			}
			if isTimeout(err) {
				return headerTimeoutError{timeout}
			}
			return err
		}
		return nil
	}
	deadline := sentAt.Add(timeout)
	if watchAt := time.Now().Add(watchAfter); !c.watch.running && watchAt.Before(deadline) {
		uc.setDeadline(watchAt)
		_, err := uc.br.Peek(1)
		if err == nil || !isTimeout(err) {
			return err
		}
		c.watch.start(c)
	}
	uc.setDeadline(deadline)
	if _, err := uc.br.Peek(1); err != nil {
		if isTimeout(err) {
			return headerTimeoutError{timeout}
		}
		return err
	}
	return nil
}

// writeResponseHead passes the upstream's head on, as HTTP/1.1, less the
// hop-by-hop fields, with the Date the upstream left out, the fault header
// and, when the client connection ends with this response, Connection: close.
func (c *conn) writeResponseHead(bw *bufio.Writer, x *exchange, closeClient bool) {
	resp := &c.resp
	bw.WriteString("HTTP/1.1")
	bw.Write(resp.statusRest)
	bw.WriteString("\r\n")
	for _, s := range resp.lines {
		if !s.hop {
			bw.Write(trimCRLF(resp.buf[s.start:s.end]))
			bw.WriteString("\r\n")
		}
	}
	if !resp.hasDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate(c.p.cfg.Now()))
		bw.WriteString("\r\n")
	}
	if names := c.p.faultNames(x); names != "" {
		writeField(bw, c.p.cfg.FaultHeader, names)
	}
	if closeClient {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// dates caches the Date header's text for the current second, as nginx
// does: formatting it for every response is most of a response head's cost.
var dates atomic.Pointer[dateText]

type dateText struct {
	unix int64
	text []byte
}

// httpDate returns the Date header's value for t; callers must not change it.
func httpDate(t time.Time) []byte {
	sec := t.Unix()
	if d := dates.Load(); d != nil && d.unix == sec {
		return d.text
	}
	d := &dateText{unix: sec, text: t.UTC().AppendFormat(nil, http.TimeFormat)}
	dates.Store(d)
	return d.text
}

// copyBody streams the response body as the upstream frames it. upErr is
// the upstream's failure (it broke off), cErr the client's (it left).
func (c *conn) copyBody(bw *bufio.Writer, uc *upConn) (upErr, cErr error) {
	switch c.resp.framing {
	case framingLength:
		return c.copyLength(bw, uc, c.resp.contentLength)
	case framingChunked:
		return c.copyChunked(bw, uc)
	case framingClose:
		for {
			if err := c.fill(bw, uc); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil, nil // the end of a body delimited by the connection's end
				}
				return c.classify(err)
			}
			b, _ := uc.br.Peek(uc.br.Buffered())
			if _, err := bw.Write(b); err != nil {
				return nil, err
			}
			_, _ = uc.br.Discard(len(b))
		}
	}
	return nil, nil
}

// copyLength copies n bytes of body. Large bodies go straight from one
// connection to the other through a 32 KiB buffer.
func (c *conn) copyLength(bw *bufio.Writer, uc *upConn, n int64) (upErr, cErr error) {
	br := uc.br
	for n > 0 {
		if br.Buffered() == 0 && n >= copyBufSize {
			if err := bw.Flush(); err != nil {
				return nil, err
			}
			return c.copyDirect(uc, n)
		}
		if err := c.fill(bw, uc); err != nil {
			return c.classify(err)
		}
		b, _ := br.Peek(int(min(int64(br.Buffered()), n)))
		if _, err := bw.Write(b); err != nil {
			return nil, err
		}
		_, _ = br.Discard(len(b))
		n -= int64(len(b))
	}
	return nil, nil
}

const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyDirect copies n bytes from the upstream connection (its buffer
// empty) to the client connection.
func (c *conn) copyDirect(uc *upConn, n int64) (upErr, cErr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for n > 0 {
		var m int
		err := c.readUpstream(uc, func() (err error) {
			m, err = uc.nc.Read(buf[:min(int64(len(buf)), n)])
			return err
		})
		if m > 0 {
			if _, werr := c.w.Write(buf[:m]); werr != nil {
				return nil, werr
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return c.classify(err)
		}
	}
	return nil, nil
}

// copyChunked copies a chunked body as it comes, chunk by chunk, its
// framing checked and kept: chunk extensions and trailers pass as sent.
func (c *conn) copyChunked(bw *bufio.Writer, uc *upConn) (upErr, cErr error) {
	for {
		line, err := c.readLine(bw, uc)
		if err != nil {
			return c.classify(err)
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return errors.New("malformed chunk size line"), nil
		}
		bw.Write(line)
		if _, err := bw.WriteString("\r\n"); err != nil {
			return nil, err
		}
		if size == 0 {
			for { // the trailer section, up to an empty line
				line, err := c.readLine(bw, uc)
				if err != nil {
					return c.classify(err)
				}
				bw.Write(line)
				if _, err := bw.WriteString("\r\n"); err != nil {
					return nil, err
				}
				if len(line) == 0 {
					return nil, nil
				}
			}
		}
		if upErr, cErr := c.copyLength(bw, uc, size); upErr != nil || cErr != nil {
			return upErr, cErr
		}
		if line, err := c.readLine(bw, uc); err != nil || len(line) != 0 {
			if err == nil {
				err = errors.New("chunk data longer than its size")
			}
			return c.classify(err)
		}
		if _, err := bw.WriteString("\r\n"); err != nil {
			return nil, err
		}
	}
}

// readLine reads one line of chunked framing (without its CRLF), at most 4 KiB.
func (c *conn) readLine(bw *bufio.Writer, uc *upConn) ([]byte, error) {
	for {
		buf, _ := uc.br.Peek(uc.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := buf[:i+1]
			_, _ = uc.br.Discard(i + 1)
			if !bytes.HasSuffix(line, []byte("\r\n")) {
				return nil, errors.New("chunked framing: a line without CRLF")
			}
			return line[:len(line)-2], nil
		}
		if len(buf) == uc.br.Size() {
			return nil, errors.New("chunked framing: a line over 4 KiB")
		}
		if len(buf) > 0 {
			err := c.readUpstream(uc, func() error { _, err := uc.br.Peek(len(buf) + 1); return err })
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := c.fill(bw, uc); err != nil {
			return nil, err
		}
	}
}

// parseChunkSize reads a chunk-size line: hexadecimal digits, then
// optionally chunk extensions after ';'.
func parseChunkSize(line []byte) (int64, bool) {
	digits, _, _ := bytes.Cut(line, []byte(";"))
	digits = bytes.TrimRight(digits, " \t")
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(digits), 16, 64)
	return n, err == nil && digits[0] != '+' && digits[0] != '-'
}

// fill makes sure the upstream's buffer holds a byte, flushing what the
// client has not yet received first: a response streams as it comes.
func (c *conn) fill(bw *bufio.Writer, uc *upConn) error {
	if uc.br.Buffered() > 0 {
		return nil
	}
	if err := bw.Flush(); err != nil {
		return clientError{err}
	}
	err := c.readUpstream(uc, func() error { _, err := uc.br.Peek(1); return err })
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readUpstream runs one read of the body that may block. While it blocks
// longer than watchAfter the client is watched, and a client that leaves
// cuts the read short.
func (c *conn) readUpstream(uc *upConn, read func() error) error {
	if c.watch.running || c.upload != nil {
		uc.setDeadline(time.Time{})
		return read()
	}
	uc.setDeadline(time.Now().Add(watchAfter))
	err := read()
	if !isTimeout(err) {
		return err
	}
	c.watch.interrupt.Store(uc)
	c.watch.start(c)
	uc.setDeadline(time.Time{})
	if !c.watch.goneAt().IsZero() {
		return clientError{io.ErrClosedPipe}
	}
	return read()
}

// clientError is the client's failure in the middle of a copy.
type clientError struct{ err error }

func (e clientError) Error() string { return e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// classify tells the client's failures from the upstream's.
func (c *conn) classify(err error) (upErr, cErr error) {
	var ce clientError
	if errors.As(err, &ce) || !c.watch.goneAt().IsZero() {
		return nil, err
	}
	return err, nil
}

// upload sends a request body that had not arrived with its head, while
// the response is awaited (an upstream may answer before it has read all
// of it).
type upload struct {
	left    int64 // the body's bytes to send
	sent    atomic.Int64
	done    chan struct{}
	readErr error // the client's: it left or broke off the body
	err     error // the upstream's
}

var errClientBody = errors.New("the client broke off the request body")

func (c *conn) startUpload(uc *upConn, timeout time.Duration) *upload {
	n := c.bodyLeft
	u := &upload{left: n, done: make(chan struct{})}
	c.upload = u
	c.setDeadline(time.Time{}) // a long upload is not an idle connection
	go func() {
		defer close(u.done)
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		buf := *bp
		for u.sent.Load() < n {
			m, err := c.br.Read(buf[:min(int64(len(buf)), n-u.sent.Load())])
			if m > 0 {
				if _, werr := uc.nc.Write(buf[:m]); werr != nil {
					u.err = werr
					return
				}
				u.sent.Add(int64(m))
			}
			if err != nil && u.sent.Load() < n {
				u.readErr = err
				_ = uc.nc.SetReadDeadline(aLongTimeAgo) // stop waiting for a response
				return
			}
		}
		// The request is out: the upstream has its timeout to answer.
		_ = uc.nc.SetReadDeadline(time.Now().Add(timeout))
	}()
	return u
}

// complete reports whether the whole body went out.
func (u *upload) complete() bool { return u.sent.Load() == u.left }

// finishUpload ends the upload: it waits for it when the whole body went
// out, and stops it otherwise (the upstream answered without reading it
// all, or failed). It returns errClientBody when the client broke the body
// off.
func (c *conn) finishUpload(uc *upConn) error {
	u := c.upload
	if u == nil {
		return nil
	}
	if !u.complete() {
		select {
		case <-u.done:
		default:
			uc.nc.Close()
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
			<-u.done
			c.setDeadline(time.Time{})
		}
	}
	<-u.done
	c.upload = nil
	c.bodyLeft = u.left - u.sent.Load()
	switch {
	case u.readErr != nil:
		return errClientBody
	case u.err != nil:
		return u.err
	case c.bodyLeft > 0:
		return errors.New("request body not sent whole")
	}
	return nil
}

// upstreamFailed answers 502, or 504 when the upstream did not answer in
// time, with the reason; the same answer as ServeHTTP's.
func (c *conn) upstreamFailed(r *http.Request, x *exchange, bw *bufio.Writer, err error) outcome {
	code, reason, msg := upstreamErrorText(c.p.poolFor(x.rev).host, err)
	c.p.cfg.Logger.Warn("upstream error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	if !c.watch.goneAt().IsZero() {
		return outcome{code: code} // nobody to answer; the upstream's failure counts all the same
	}
	keep := !c.mustClose()
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(statusLine(code))
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Slolab-Error: upstream ")
	bw.WriteString(reason)
	bw.WriteString("\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg)))
	bw.WriteString("\r\nDate: ")
	bw.Write(httpDate(c.p.cfg.Now()))
	bw.WriteString("\r\n")
	if names := c.p.faultNames(x); names != "" {
		writeField(bw, c.p.cfg.FaultHeader, names)
	}
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if r.Method != http.MethodHead {
		bw.WriteString(msg)
	}
	return outcome{code: code, keep: keep}
}
