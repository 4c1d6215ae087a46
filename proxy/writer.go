package proxy

import (
	"bufio"
	"net"
	"net/http"
)

// recorder wraps the client's ResponseWriter to learn the final status. It
// passes flushes, 1xx responses (except the upstream's 100 Continue, see
// WriteHeader) and hijacks (WebSocket upgrades) through.
type recorder struct {
	http.ResponseWriter
	code        int
	hijacked    bool
	aborted     bool // a fault closed the connection on purpose
	upstreamErr bool // the upstream round trip failed
	p           *Proxy
	fail        string // an errclass kind when the proxy answered for a failed upstream
	sample      []byte // an error response's first bytes, when the proxy classifies errors
}

func (w *recorder) WriteHeader(code int) {
	if code == http.StatusContinue {
		// The upstream's 100 Continue, relayed by ReverseProxy. net/http's
		// server sends its own when the body is first read, which happens
		// because the upstream asked for it; relaying this one as well gave
		// the client two, in whichever order the race ran.
		return
	}
	if code > 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: not the final status
		return
	}
	if w.code == 0 {
		w.code = code
		w.sample = w.p.sampling(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.sample = keepBytes(w.sample, b) // nothing while there is no sample: its capacity is 0
	return w.ResponseWriter.Write(b)
}

// Flush passes flushes through so streamed responses reach the client at once.
func (w *recorder) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // a writer that cannot flush just buffers
}

// Hijack hands the connection to ReverseProxy for an upgrade: the client got
// 101 Switching Protocols.
func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.code == 0 {
			w.code = http.StatusSwitchingProtocols
		}
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the connection's other controls.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finalCode is the status the client saw, or 0 when it saw none.
func (w *recorder) finalCode() int {
	if w.aborted {
		return 0
	}
	return w.code
}
