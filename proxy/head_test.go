package proxy

import (
	"bufio"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// What the dedicated path reads from a request head, net/http reads the
// same: the method, target, path, query, host, length and every field's
// values. Whatever it is not sure of it leaves to net/http.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /messages/7?a=1&b=%20 HTTP/1.1\r\nHost: chat.example.com:8080\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n",
		"POST /update HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n",
		"GET /a%2Fb HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nA :b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\nY: z\r\n\r\n",
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nTe: trailers, deflate\r\nForwarded: for=1.2.3.4\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nX: \x80\xff\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var h reqHead
		if !h.parse(text) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(text)))
		if err != nil {
			t.Fatalf("the dedicated path took a head net/http refuses (%v):\n%q", err, text)
		}
		if req.Method != h.method || req.RequestURI != h.target || req.URL.Path != h.path || req.URL.RawPath != h.rawPath ||
			req.URL.RawQuery != h.query || req.Host != h.host || req.ContentLength != h.contentLength || req.Close != h.close {
			t.Fatalf("head %q\nnet/http: %s %s path %q raw %q query %q host %q length %d close %v\nparse:    %s %s path %q raw %q query %q host %q length %d close %v",
				text, req.Method, req.RequestURI, req.URL.Path, req.URL.RawPath, req.URL.RawQuery, req.Host, req.ContentLength, req.Close,
				h.method, h.target, h.path, h.rawPath, h.query, h.host, h.contentLength, h.close)
		}
		got := http.Header{}
		for _, f := range h.fields {
			got.Add(f.name, f.value)
		}
		want := req.Header.Clone()
		if req.Host != "" && want.Get("Host") == "" {
			want.Set("Host", req.Host) // net/http moves Host out of the header
		}
		for k, v := range want {
			if !slices.Equal(got[textproto.CanonicalMIMEHeaderKey(k)], v) {
				t.Fatalf("head %q: field %s is %q to net/http, %q to parse", text, k, v, got[k])
			}
		}
	})
}
