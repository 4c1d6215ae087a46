package proxy

// The net/http path: httputil.ReverseProxy forwards what net/http's server
// hands ServeHTTP (every request the dedicated path does not take, and
// every request when a Transport is set).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slolab.dev/slolab/fault"
)

// reverseProxy forwards to one upstream; the stable and the canary upstream
// each have their own, so the request path needs no per-request state to
// know where it goes.
func (p *Proxy) reverseProxy(upstream *url.URL, transport http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(pr, upstream) },
		Transport:      transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.upstreamError(w, r, upstream, err)
		},
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelDebug),
	}
}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *copyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }

// forwarding is one request forwarded through net/http. Its context is the
// client's, except that a client leaving before the response head does not
// cancel it: the proxy waits for the upstream up to the timeout, so that an
// upstream that never answers counts against availability.
type forwarding struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	client   context.Context
	mods     []*fault.Rule
	timeout  time.Duration
	timer    atomic.Pointer[time.Timer]
	headSeen atomic.Bool
	timedOut atomic.Bool
	mu       sync.Mutex
	left     time.Time // when the client left
	stopLeft func() bool
}

type forwardingKey struct{}

func (p *Proxy) startForwarding(r *http.Request, x *exchange) *forwarding {
	fc := &forwarding{client: r.Context(), mods: x.d.Modifiers, timeout: p.timeoutFor(x.route)}
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	fc.cancel = cancel
	fc.stopLeft = context.AfterFunc(r.Context(), func() {
		fc.mu.Lock()
		fc.left = p.cfg.Now()
		fc.mu.Unlock()
		if fc.headSeen.Load() {
			cancel(context.Canceled) // the response is under way: stop it
		}
	})
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
		fc.timer.Store(time.AfterFunc(fc.timeout, func() {
			if !fc.headSeen.Load() {
				fc.timedOut.Store(true)
				cancel(headerTimeoutError{fc.timeout})
			}
		}))
	}}
	fc.ctx = context.WithValue(httptrace.WithClientTrace(ctx, trace), forwardingKey{}, fc)
	return fc
}

// gotHead notes that the response head arrived; it reports false when the
// client had left by then.
func (fc *forwarding) gotHead() bool {
	fc.headSeen.Store(true)
	if t := fc.timer.Load(); t != nil {
		t.Stop()
	}
	if fc.client.Err() != nil {
		fc.cancel(context.Canceled)
		return false
	}
	return true
}

// clientLeft returns when the client left, if it did before end.
func (fc *forwarding) clientLeft(end time.Time) time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !fc.left.IsZero() && fc.left.Before(end) {
		return fc.left
	}
	return end
}

func (fc *forwarding) stop() {
	fc.stopLeft()
	if t := fc.timer.Load(); t != nil {
		t.Stop()
	}
	fc.cancel(context.Canceled)
}

func forwardingOf(ctx context.Context) *forwarding {
	fc, _ := ctx.Value(forwardingKey{}).(*forwarding)
	return fc
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest, upstream *url.URL) {
	pr.SetURL(upstream)
	pr.Out.Host = pr.In.Host // forward the client's Host, as most proxies in front of an app do
	if xff, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	if prior := pr.In.Header["Forwarded"]; len(prior) > 0 {
		ip, _, _ := net.SplitHostPort(pr.In.RemoteAddr)
		pr.Out.Header.Set("Forwarded", strings.Join(prior, ", ")+", "+forwardedElement(ip, pr.In.Host))
	}
	// The client's trailers arrive after the head: share the map net/http
	// fills in at the end of the body, so that the transport sends them.
	pr.Out.Trailer = pr.In.Trailer
	if fc := forwardingOf(pr.In.Context()); fc != nil && len(fc.mods) > 0 {
		applyRequest(pr.Out, fc.mods)
	}
}

// forwardedElement is this hop's element of a Forwarded header (RFC 7239).
func forwardedElement(clientIP, host string) string {
	node := clientIP
	if strings.Contains(node, ":") {
		node = `"[` + node + `]"`
	}
	if node == "" {
		node = "unknown"
	}
	return "for=" + node + ";host=" + strconv.Quote(host) + ";proto=http"
}

var errClientLeft = errors.New("the client left before the response head arrived")

func (p *Proxy) modifyResponse(resp *http.Response) error {
	fc := forwardingOf(resp.Request.Context())
	if fc == nil {
		return nil
	}
	if !fc.gotHead() {
		return errClientLeft
	}
	applyResponse(resp, fc.mods)
	return nil
}

// headerTimeoutError is an upstream that sent no response head in time.
type headerTimeoutError struct{ d time.Duration }

func (e headerTimeoutError) Error() string {
	return fmt.Sprintf("no response head within %s", e.d)
}

// upstreamError answers 502 with a plain reason when the upstream cannot be
// reached or breaks, or 504 when it does not answer in time, so a user or a
// log shows why.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, upstream *url.URL, err error) {
	rw, _ := w.(*recorder)
	if rw != nil {
		rw.upstreamErr = true
	}
	fc := forwardingOf(r.Context())
	if fc != nil {
		if cause := context.Cause(r.Context()); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		if fc.client.Err() != nil {
			return // the client left; nobody to answer
		}
	}
	code, kind, reason, msg := upstreamErrorText(upstream.Host, err)
	if rw != nil {
		rw.fail = kind
	}
	p.cfg.Logger.Warn("upstream error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Slolab-Error", "upstream "+reason)
	w.WriteHeader(code)
	fmt.Fprint(w, msg)
}
