package testtool

import (
	"net/http"
	"net/http/httptest"
	"strconv"
)

// ServeInMemory answers r with h without a network, for a test's
// http.RoundTripper. Like a net/http server answering a small body written
// at once, it sets Content-Length when the handler did not. That matters
// beyond fidelity: for a response of unknown length httputil.ReverseProxy
// flushes at once through time.AfterFunc(-1, …), and in a testing/synctest
// bubble under the race detector such a timer, due at once, intermittently
// crashes the Go 1.26 runtime (SIGSEGV in runtime.(*timer).modify).
func ServeInMemory(h http.Handler, r *http.Request) *http.Response {
	if r.Body == nil { // a client request may have none; a server request always has one
		r.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	// Result's header is the snapshot taken when the handler first wrote, so
	// the length is set on the response, not on the recorder.
	resp := rec.Result()
	if resp.ContentLength < 0 && resp.Header.Get("Transfer-Encoding") == "" {
		resp.ContentLength = int64(rec.Body.Len())
		resp.Header.Set("Content-Length", strconv.Itoa(rec.Body.Len()))
	}
	resp.Request = r
	return resp
}
