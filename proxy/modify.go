package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/fault"
)

// applyRequest applies the replace and patch actions of injected rules to the
// outgoing request, in evaluation order.
func applyRequest(out *http.Request, mods []*fault.Rule) {
	for _, m := range mods {
		s := m.Spec
		if s.Replace != nil && s.Replace.Request != nil {
			rr := s.Replace.Request
			if rr.Method != "" {
				out.Method = rr.Method
			}
			if rr.Path != "" {
				out.URL.Path, out.URL.RawPath = rr.Path, ""
			}
			if rr.Query != nil {
				out.URL.RawQuery = *rr.Query
			}
			for k, v := range rr.Headers {
				out.Header.Set(k, v)
			}
			if rr.Body != nil {
				setRequestBody(out, *rr.Body)
				setBodyType(out.Header, rr.Headers, *rr.Body)
			}
		}
		if s.Patch != nil && s.Patch.Request != nil {
			rp := s.Patch.Request
			for k, v := range rp.Headers {
				out.Header.Add(k, v)
			}
			if len(rp.Query) > 0 {
				q := out.URL.Query()
				for k, v := range rp.Query {
					q.Add(k, v)
				}
				out.URL.RawQuery = q.Encode()
			}
			if rp.Body != "" {
				appendRequestBody(out, rp.Body)
			}
		}
		if changesResponseBody(m) {
			// The upstream must answer with a body we can edit as text.
			out.Header.Del("Accept-Encoding")
		}
	}
}

func changesResponseBody(m *fault.Rule) bool {
	s := m.Spec
	return s.Replace != nil && s.Replace.Response != nil && s.Replace.Response.Body != nil ||
		s.Patch != nil && s.Patch.Response != nil && s.Patch.Response.Body != ""
}

func setRequestBody(out *http.Request, body string) {
	if out.Body != nil {
		out.Body.Close()
	}
	out.Body = io.NopCloser(strings.NewReader(body))
	out.ContentLength = int64(len(body))
	out.TransferEncoding = nil
	out.Header.Set("Content-Length", strconv.Itoa(len(body)))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
}

func appendRequestBody(out *http.Request, suffix string) {
	orig := out.Body
	if orig == nil || orig == http.NoBody {
		setRequestBody(out, suffix)
		return
	}
	out.Body = readCloser{io.MultiReader(orig, strings.NewReader(suffix)), orig}
	out.GetBody = nil
	if out.ContentLength >= 0 {
		out.ContentLength += int64(len(suffix))
		out.Header.Set("Content-Length", strconv.FormatInt(out.ContentLength, 10))
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// applyResponse applies the replace and patch actions to the upstream's response.
func applyResponse(resp *http.Response, mods []*fault.Rule) {
	for _, m := range mods {
		s := m.Spec
		if s.Replace != nil && s.Replace.Response != nil {
			rr := s.Replace.Response
			if rr.Status != 0 {
				resp.StatusCode = rr.Status
				resp.Status = strconv.Itoa(rr.Status) + " " + http.StatusText(rr.Status)
			}
			for k, v := range rr.Headers {
				resp.Header.Set(k, v)
			}
			if rr.Body != nil {
				resp.Body.Close()
				setResponseBody(resp, io.NopCloser(strings.NewReader(*rr.Body)), int64(len(*rr.Body)))
				setBodyType(resp.Header, rr.Headers, *rr.Body)
			}
		}
		if s.Patch != nil && s.Patch.Response != nil {
			rp := s.Patch.Response
			for k, v := range rp.Headers {
				resp.Header.Add(k, v)
			}
			if rp.Body != "" {
				n := int64(-1)
				if resp.ContentLength >= 0 {
					n = resp.ContentLength + int64(len(rp.Body))
				}
				setResponseBody(resp, readCloser{io.MultiReader(resp.Body, strings.NewReader(rp.Body)), resp.Body}, n)
			}
		}
	}
}

// setBodyType gives a replaced body the Content-Type that fits it, unless
// the rule sets one: the upstream's (or the client's) type described the
// body that is gone, and a plain-text error under "application/json" breaks
// the client that reads it.
func setBodyType(h http.Header, ruleHeaders map[string]string, body string) {
	for k := range ruleHeaders {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			return
		}
	}
	switch {
	case body == "":
		h.Del("Content-Type")
	case json.Valid([]byte(body)):
		h.Set("Content-Type", "application/json")
	default:
		h.Set("Content-Type", http.DetectContentType([]byte(body)))
	}
}

func setResponseBody(resp *http.Response, body io.ReadCloser, n int64) {
	resp.Body = body
	resp.ContentLength = n
	resp.Header.Del("Content-Encoding") // a replaced or extended body is no longer the upstream's encoding
	if n >= 0 {
		resp.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		resp.TransferEncoding = nil
	} else {
		resp.Header.Del("Content-Length")
	}
}

// forwardModified forwards a request that replace or patch rules change.
// The request and the response go through net/http's own message writing
// and reading, on an upstream connection of their own, so that every change
// of method, path, headers and bodies is framed as net/http frames it. Only
// requests a rule injected into take this way.
func (c *conn) forwardModified(r *http.Request, x *exchange, bw *bufio.Writer) outcome {
	h := &c.head
	r.Header = c.p.outgoingHeader(h, c.clientIP)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = []string{""} // or net/http's client would add its own
	}
	var body *io.LimitedReader
	if c.bodyLeft > 0 {
		body = &io.LimitedReader{R: c.br, N: c.bodyLeft}
		r.Body = io.NopCloser(body)
	}
	r.Close = false
	applyRequest(r, x.d.Modifiers)
	uc, err := c.p.poolFor(x.rev).get(c.s.dialCtx, x.start)
	if err != nil {
		return c.upstreamFailed(r, x, bw, err)
	}
	c.up.Store(uc)
	defer c.up.Store(nil)
	defer uc.nc.Close()
	w := writers.Get().(*bufio.Writer)
	w.Reset(uc.nc)
	err = r.Write(w)
	if err == nil {
		err = w.Flush()
	}
	w.Reset(nil)
	writers.Put(w)
	if body != nil {
		c.bodyLeft = body.N
	}
	if err != nil {
		if body != nil && body.N > 0 {
			return outcome{code: StatusClientClosedRequest} // the client broke off its body
		}
		return c.upstreamFailed(r, x, bw, err)
	}
	sentAt, timeout := time.Now(), c.p.timeoutFor(x.route)
	var resp *http.Response
	for {
		if err := c.waitFirstByte(uc, sentAt, timeout, nil); err != nil {
			return c.upstreamFailed(r, x, bw, err)
		}
		uc.setDeadline(sentAt.Add(timeout))
		if resp, err = http.ReadResponse(uc.br, r); err != nil {
			if isTimeout(err) {
				err = headerTimeoutError{timeout}
			}
			return c.upstreamFailed(r, x, bw, err)
		}
		if resp.StatusCode >= 200 {
			break
		}
		bw.WriteString("HTTP/1.1 " + statusLine(resp.StatusCode) + "\r\n") // an interim response: pass it on
		_ = resp.Header.Write(bw)
		bw.WriteString("\r\n")
		_ = bw.Flush()
	}
	defer resp.Body.Close()
	uc.setDeadline(time.Time{})
	if !c.watch.goneAt().IsZero() {
		return outcome{code: StatusClientClosedRequest}
	}
	applyResponse(resp, x.d.Modifiers)
	removeHopByHop(resp.Header)
	if names := c.p.faultNames(x); names != "" {
		resp.Header.Set(c.p.cfg.FaultHeader, names)
	}
	if resp.Header.Get("Date") == "" {
		resp.Header.Set("Date", c.p.cfg.Now().UTC().Format(http.TimeFormat))
	}
	if x.sample = c.p.sampling(resp.StatusCode); x.sample != nil {
		resp.Body = &sampleReader{ReadCloser: resp.Body, sample: &x.sample}
	}
	keep := !c.mustClose()
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor, resp.Close = "HTTP/1.1", 1, 1, !keep
	cw := &clientWriter{w: bw}
	err = resp.Write(cw)
	switch {
	case cw.err != nil:
		return outcome{code: StatusClientClosedRequest}
	case err != nil:
		return outcome{code: 0} // the upstream broke off its response
	}
	return outcome{code: resp.StatusCode, keep: keep}
}

// clientWriter notes a failure to write to the client, to tell it from the
// upstream's.
type clientWriter struct {
	w   io.Writer
	err error
}

func (w *clientWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// outgoingHeader is the request header as the dedicated path forwards it
// (see writeRequestHead), as a map for the rules to change.
func (p *Proxy) outgoingHeader(h *reqHead, clientIP string) http.Header {
	out := make(http.Header, len(h.fields)+3)
	var xff, fwd []string
	for _, f := range h.fields {
		switch f.kind {
		case fieldPass:
			out.Add(f.name, f.value)
		case fieldXFF:
			xff = append(xff, f.value)
		case fieldForwarded:
			fwd = append(fwd, f.value)
		}
	}
	if h.teTrailers {
		out.Set("Te", "trailers")
	}
	if clientIP != "" {
		out.Set("X-Forwarded-For", strings.Join(append(xff, clientIP), ", "))
	}
	out.Set("X-Forwarded-Host", h.host)
	out.Set("X-Forwarded-Proto", "http")
	if len(fwd) > 0 {
		out.Set("Forwarded", strings.Join(append(fwd, forwardedElement(clientIP, h.host)), ", "))
	}
	return out
}

// removeHopByHop drops a response's hop-by-hop fields, and those its
// Connection field names.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		h.Del(name)
	}
}

// sampleReader keeps a body's first bytes as they are read.
type sampleReader struct {
	io.ReadCloser
	sample *[]byte
}

func (r *sampleReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	*r.sample = keepBytes(*r.sample, b[:n])
	return n, err
}
