package load

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A call's request is made twice over: as an http.Request for a configured
// Transport (build), and as the bytes the generator's own HTTP/1.1 client
// writes (buildWire), the same request as net/http would write it.

// bodyReader is a request body that needs no allocation per request.
type bodyReader struct{ bytes.Reader }

// Close does nothing: the bytes belong to the call.
func (*bodyReader) Close() error { return nil }

// fill draws a call's user and variables and writes its path (with the
// query, if any). Everything random is drawn from a generator seeded with
// (plan seed, request index), so a request is the same whichever shard sends
// it and whatever order requests complete in.
func (g *Generator) fill(c *call) (*Template, *fixedHeaders, uint64) {
	p := g.cfg.Plan
	t := p.CUJs[c.item.CUJ].Templates[c.item.Template]
	c.rng.Seed(p.Seed, c.item.K)
	user := uniform(&c.rng, uint64(g.cfg.Users.N)) + 1
	c.id = appendID(c.id[:0], user)
	c.vals.fill(t, c.id, c.item.K, &c.rng)
	c.path = append(c.path[:0], g.basePath...)
	c.path = c.vals.appendText(c.path, &t.path)
	return t, &g.fixed[c.item.CUJ][c.item.Template], user
}

func (t *Template) hasBody() bool { return len(t.body.segs) > 0 || t.body.lit != "" }

// build makes a call's http.Request.
func (g *Generator) build(c *call) *http.Request {
	t, fx, user := g.fill(c)
	u := &url.URL{Scheme: g.base.Scheme, Host: g.base.Host}
	if path, query, ok := bytes.Cut(c.path, []byte("?")); ok {
		u.Path, u.RawQuery = string(path), string(query)
	} else {
		u.Path = string(c.path)
	}
	h := c.header
	clear(h)
	for k, v := range fx.header {
		h[k] = v
	}
	users := g.cfg.Users
	if fx.user {
		h[http.CanonicalHeaderKey(users.Header)] = []string{string(c.id)}
	}
	if fx.cookie {
		c.scratch = append(append(append(c.scratch[:0], users.Cookie...), '='), c.id...)
		h["Cookie"] = []string{string(c.scratch)}
	}
	if fx.xff {
		c.scratch = appendAddr(c.scratch[:0], user)
		h["X-Forwarded-For"] = []string{string(c.scratch)}
	}
	for _, ht := range t.headers {
		c.scratch = c.vals.appendText(c.scratch[:0], &ht.value)
		h[ht.name] = []string{string(c.scratch)}
	}
	req := &http.Request{
		Method:     t.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       g.base.Host,
	}
	if t.Host != "" {
		req.Host = t.Host
	}
	if t.hasBody() {
		c.body = c.vals.appendText(c.body[:0], &t.body)
		c.reader.Reset(c.body)
		req.Body = &c.reader
		req.ContentLength = int64(len(c.body))
	}
	return req
}

// buildWire writes a call's request as HTTP/1.1 bytes into c.h1.req: the
// same request build makes, as net/http would write it.
func (g *Generator) buildWire(c *call) error {
	t, fx, user := g.fill(c)
	b := append(c.h1.req[:0], t.Method...)
	b = append(b, ' ')
	path, query, _ := bytes.Cut(c.path, []byte("?"))
	b = appendEscapedPath(b, path)
	if len(query) > 0 {
		b = append(append(b, '?'), query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if t.Host != "" {
		b = append(b, t.Host...)
	} else {
		b = append(b, g.base.Host...)
	}
	b = append(b, "\r\n"...)
	b = append(b, fx.wire...)
	users := g.cfg.Users
	if fx.user {
		b = appendField(b, users.Header, c.id)
	}
	if fx.cookie {
		c.scratch = append(append(append(c.scratch[:0], users.Cookie...), '='), c.id...)
		b = appendField(b, "Cookie", c.scratch)
	}
	if fx.xff {
		c.scratch = appendAddr(c.scratch[:0], user)
		b = appendField(b, "X-Forwarded-For", c.scratch)
	}
	for _, ht := range t.headers {
		c.scratch = c.vals.appendText(c.scratch[:0], &ht.value)
		v := bytes.Trim(c.scratch, " \t")
		if !validFieldValue(v) {
			c.h1.req = b
			return fmt.Errorf("invalid header field value for %q", ht.name)
		}
		b = appendField(b, ht.name, v)
	}
	c.h1.head = t.Method == http.MethodHead
	c.h1.replayable = replayable(t.Method)
	if t.hasBody() {
		c.body = c.vals.appendText(c.body[:0], &t.body)
	} else {
		c.body = c.body[:0]
	}
	// net/http sends a length with a body, and a zero one for these methods
	// (many servers expect it).
	if len(c.body) > 0 || t.Method == http.MethodPost || t.Method == http.MethodPut || t.Method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(c.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.h1.req = append(b, c.body...)
	return nil
}

// replayable: methods net/http sends again after a stale connection failed them.
func replayable(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func appendField(b []byte, name string, value []byte) []byte {
	b = append(append(append(b, name...), ": "...), value...)
	return append(b, "\r\n"...)
}

// fixedHeaders is what a template's requests carry besides their own
// headers and the user's identity, worked out once: the configured headers
// the template does not override, with a User-Agent when none is set, and
// which identity headers go out (a template's own header of that name wins,
// as the identity wins over a configured header).
type fixedHeaders struct {
	header            http.Header // for net/http
	wire              []byte      // the same as "Name: value\r\n" lines
	user, cookie, xff bool
}

// Header fields the request line, the body or the connection decide;
// net/http ignores them in a request's Header too.
var decidedFields = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

func newFixedHeaders(configured http.Header, users Users, t *Template) (fixedHeaders, error) {
	own := map[string]bool{}
	for _, ht := range t.headers {
		if !validFieldName(ht.name) {
			return fixedHeaders{}, fmt.Errorf("header %q: not a valid field name", ht.name)
		}
		if ht.value.static && !validFieldValue([]byte(ht.value.lit)) {
			return fixedHeaders{}, fmt.Errorf("header %s: the value holds a control character", ht.name)
		}
		own[ht.name] = true
	}
	fx := fixedHeaders{header: http.Header{}}
	identity := map[string]bool{}
	if users.Header != "" {
		name := http.CanonicalHeaderKey(users.Header)
		if !validFieldName(name) {
			return fixedHeaders{}, fmt.Errorf("user header %q: not a valid field name", users.Header)
		}
		fx.user, identity[name] = !own[name], true
	}
	if users.Cookie != "" {
		fx.cookie, identity["Cookie"] = !own["Cookie"], true
	}
	fx.xff, identity["X-Forwarded-For"] = !own["X-Forwarded-For"], true
	names := make([]string, 0, len(configured))
	for k := range configured {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		name := http.CanonicalHeaderKey(k)
		if !validFieldName(name) {
			return fixedHeaders{}, fmt.Errorf("header %q: not a valid field name", k)
		}
		if own[name] || identity[name] || decidedFields[name] {
			continue
		}
		for _, v := range configured[k] {
			v = strings.Trim(v, " \t")
			if !validFieldValue([]byte(v)) {
				return fixedHeaders{}, fmt.Errorf("header %s: the value holds a control character", name)
			}
			fx.header[name] = append(fx.header[name], v)
			fx.wire = appendField(fx.wire, name, []byte(v))
		}
	}
	if !own["User-Agent"] && fx.header["User-Agent"] == nil {
		fx.header["User-Agent"] = []string{UserAgent}
		fx.wire = appendField(fx.wire, "User-Agent", []byte(UserAgent))
	}
	return fx, nil
}

// validFieldName reports whether name is an HTTP token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds no control character but tab.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// pathSafe marks the bytes url.URL.EscapedPath leaves as they are.
var pathSafe = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+,/:;=@") {
		t[c] = true
	}
	return t
}()

// appendEscapedPath writes path as net/http writes a request's URL.Path.
func appendEscapedPath(b, path []byte) []byte {
	if len(path) == 0 {
		return append(b, '/')
	}
	for _, c := range path {
		if !pathSafe[c] {
			return append(b, (&url.URL{Path: string(path)}).EscapedPath()...)
		}
	}
	return append(b, path...)
}
