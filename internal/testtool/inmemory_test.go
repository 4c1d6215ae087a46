package testtool

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A handler that writes a small body without a length gets one, as from a
// net/http server; ReverseProxy then copies it without an immediate-flush timer.
func TestServeInMemoryGivesASmallBodyItsLength(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	resp := ServeInMemory(h, httptest.NewRequest("GET", "/", nil))
	if resp.ContentLength != 2 || resp.Header.Get("Content-Length") != "2" {
		t.Errorf("ContentLength %d, header %q; want 2 and \"2\"", resp.ContentLength, resp.Header.Get("Content-Length"))
	}
}
