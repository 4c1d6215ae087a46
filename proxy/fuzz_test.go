package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// inProcessApp is an upstream served in memory: it answers 200, echoing the
// request's method and path, and marks its answers.
type inProcessApp struct{}

func (inProcessApp) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	w := httptest.NewRecorder()
	w.Header().Set("X-App", "1")
	io.WriteString(w, r.Method+" "+r.URL.Path)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

// token reports whether s is an HTTP token, as a method or a header name
// must be.
func token(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// fieldValue reports whether s may be a header value on the wire.
func fieldValue(s string) bool {
	for _, c := range []byte(s) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzProxyRequest sends the proxy any method, path, header and body that
// an HTTP server would hand it, with fault rules that answer, patch and
// replace. Whatever they are, it answers with a valid status, and the
// recorder counts the request exactly once (in its CUJ, or _other).
func FuzzProxyRequest(f *testing.F) {
	for _, s := range []struct{ method, path, name, value, body string }{
		{"GET", "/messages/42", "X-User-ID", "alice", ""},
		{"POST", "/update", "Content-Type", "application/json", `{"text": "hi"}`},
		{"POST", "/send", "X-Debug", "1", "hello"},
		{"PUT", "/update", "Transfer-Encoding", "chunked", "x"},
		{"DELETE", "/messages/..%2f..%2fetc", "Forwarded", "for=1.2.3.4", ""},
		{"GET", "/login?next=/%00", "X-Forwarded-For", "1.2.3.4, 5.6.7.8", ""},
		{"CONNECT", "/", "Upgrade", "websocket", ""},
		{"OPTIONS", "/*", "Connection", "Upgrade, X-A", ""},
		{"get", "//double//slash/", "Host", "evil.example", ""},
		{"PROPFIND", "/" + strings.Repeat("a/", 200), "Te", "trailers", ""},
	} {
		f.Add(s.method, s.path, s.name, s.value, []byte(s.body))
	}
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		f.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	for name, rule := range map[string]string{
		"status":  `{"match": {"cuj": "update"}, "status": {"code": 503, "body": "down"}, "rate": "50%", "ttl": "1h"}`,
		"patch":   `{"match": {"cuj": "read"}, "patch": {"request": {"headers": {"X-Fault": "1"}, "query": {"f": "1"}}, "response": {"headers": {"X-Patched": "1"}, "body": "!"}}, "rate": "50%", "ttl": "1h"}`,
		"replace": `{"match": {"cuj": "send"}, "replace": {"request": {"path": "/elsewhere", "body": "{}"}, "response": {"status": 502}}, "rate": "50%", "ttl": "1h"}`,
	} {
		r, err := spec.ParseFaultRule(name, []byte(rule), name)
		if err != nil {
			f.Fatal(err)
		}
		if _, _, err := faults.Put(r); err != nil {
			f.Fatal(err)
		}
	}
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	upstream, _ := url.Parse("http://app.internal")
	p, err := proxy.New(proxy.Config{Upstream: upstream, Routes: routes, Faults: faults, Recorder: rec, Transport: inProcessApp{}})
	if err != nil {
		f.Fatal(err)
	}
	total := func() uint64 {
		var n uint64
		for i := range routes.CUJs() {
			n += rec.Window(i, sli.AllGroups, time.Hour).Total
		}
		return n
	}

	f.Fuzz(func(t *testing.T, method, path, name, value string, body []byte) {
		u, err := url.ParseRequestURI(path)
		if !token(method) || err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") || !token(name) || !fieldValue(value) {
			return // an HTTP server refuses these before any handler
		}
		req := httptest.NewRequest(method, "http://proxy.example"+u.RequestURI(), bytes.NewReader(body))
		if http.CanonicalHeaderKey(name) == "Host" {
			req.Host = value
		} else {
			req.Header.Set(name, value)
		}
		before := total()
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code < 100 || w.Code > 599 {
			t.Errorf("%s %q with %s: %q: status %d", method, path, name, value, w.Code)
		}
		if n := total() - before; n != 1 {
			t.Errorf("%s %q with %s: %q: recorded %d times, want once", method, path, name, value, n)
		}
	})
}
