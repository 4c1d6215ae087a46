package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strconv"
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
	if x.sample = c.p.sampling(resp.status); x.sample != nil {
		c.sample = &x.sample // copyBody keeps the body's first bytes as they pass
	}
	upErr, cErr := c.copyBody(bw, uc)
	c.sample = nil
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

// upstreamFailed answers 502, or 504 when the upstream did not answer in
// time, with the reason; the same answer as ServeHTTP's.
func (c *conn) upstreamFailed(r *http.Request, x *exchange, bw *bufio.Writer, err error) outcome {
	code, kind, reason, msg := upstreamErrorText(c.p.poolFor(x.rev).host, err)
	x.fail = kind
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
