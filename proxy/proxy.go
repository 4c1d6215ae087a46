// Package proxy is slolab's HTTP reverse proxy: for every request it finds the
// CUJ and route, the client group, the faults to inject, forwards faithfully
// (streaming bodies, upgrades, trailers, keep-alive) and records what the
// client experienced.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/split"
)

// DefaultFaultHeader marks responses a fault rule changed, naming the rules.
const DefaultFaultHeader = "X-Slolab-Fault"

// Config configures a Proxy.
type Config struct {
	// Upstream is the app, or its stable release while Split sends a share
	// of the traffic to a canary.
	Upstream *url.URL
	// Split, when set, picks each request's revision: in weight mode it sends
	// requests to Upstream or to the split's canary upstream, in header mode
	// it reads the revision a mesh marked. SLIs are recorded per revision.
	Split    *split.Split
	Routes   *match.Table
	Faults   *fault.Registry
	Recorder *sli.Recorder
	// TrustForwardedFor attributes requests to the left-most X-Forwarded-For
	// address (behind a load balancer, or with a load generator that spreads
	// client identities) for client-IP groupings.
	TrustForwardedFor bool
	// FaultHeader names the response header listing the rules that changed a
	// response (default X-Slolab-Fault); "-" disables it.
	FaultHeader string
	// Transport forwards to the upstream (default: a transport tuned for a
	// busy single upstream).
	Transport http.RoundTripper
	Logger    *slog.Logger
	Now       func() time.Time
}

func (c *Config) defaults() {
	if c.FaultHeader == "" {
		c.FaultHeader = DefaultFaultHeader
	}
	if c.FaultHeader == "-" {
		c.FaultHeader = ""
	}
	if c.Transport == nil {
		c.Transport = NewTransport()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// NewTransport returns a transport tuned for proxying to one upstream: many
// idle keep-alive connections (net/http keeps 2 per host by default, which
// makes a busy proxy open and close connections constantly), no transparent
// decompression (bodies pass through as the upstream sent them).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// Proxy is an http.Handler forwarding to one upstream, or to a stable and a
// canary upstream.
type Proxy struct {
	cfg    Config
	rp     *httputil.ReverseProxy // to Upstream
	canary *httputil.ReverseProxy // to the split's canary upstream, in weight mode
}

// New returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	cfg.defaults()
	if cfg.Upstream == nil || cfg.Routes == nil || cfg.Faults == nil || cfg.Recorder == nil {
		return nil, errors.New("proxy.New: upstream, routes, faults and recorder are required")
	}
	p := &Proxy{cfg: cfg}
	p.rp = p.reverseProxy(cfg.Upstream)
	if cfg.Split != nil && cfg.Split.Canary() != nil {
		p.canary = p.reverseProxy(cfg.Split.Canary())
	}
	return p, nil
}

// reverseProxy forwards to one upstream; the stable and the canary upstream
// each have their own, so the request path needs no per-request state to
// know where it goes.
func (p *Proxy) reverseProxy(upstream *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(pr, upstream) },
		Transport:      p.cfg.Transport,
		ModifyResponse: p.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.upstreamError(w, r, upstream, err)
		},
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(p.cfg.Logger.Handler(), slog.LevelDebug),
	}
}

type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

type decisionKey struct{}

// ServeHTTP handles one request: match, group, decide, delay, answer or
// forward, record.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.cfg.Now()
	route := p.cfg.Routes.Match(r)
	table := p.cfg.Faults.Table()
	group, run := table.Group(r, route, match.ClientIP(r, p.cfg.TrustForwardedFor), start)
	d := table.Decide(r, route, group, start)
	rev := match.RevisionNone
	if p.cfg.Split != nil {
		rev = p.cfg.Split.Pick(r, route)
	}

	rw := &recorder{ResponseWriter: w}
	defer func() {
		code := rw.finalCode()
		rec := recover()
		if rec != nil {
			// A broken copy (ReverseProxy panics with ErrAbortHandler) cut the
			// response short: the client got nothing whole.
			code = 0
		}
		if r.Context().Err() != nil && (code == 0 || rw.upstreamErr) && !rw.aborted {
			code = StatusClientClosedRequest
		}
		if rev == match.RevisionNone && p.cfg.Split != nil {
			rev = p.cfg.Split.FromResponse(rw.Header()) // header mode: the response tells
		}
		p.cfg.Recorder.Observe(sli.Observation{Route: route, Revision: rev, Group: group, Run: run, Method: r.Method, Code: code, Latency: p.cfg.Now().Sub(start)})
		if rec != nil {
			panic(rec)
		}
	}()

	if len(d.Injected) > 0 && p.cfg.FaultHeader != "" {
		names := make([]string, len(d.Injected))
		for i, rule := range d.Injected {
			names[i] = rule.Spec.Name
		}
		w.Header().Set(p.cfg.FaultHeader, strings.Join(names, ", "))
	}
	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if t := d.Terminal; t != nil {
		if t.Spec.Abort {
			rw.aborted = true
			panic(http.ErrAbortHandler) // net/http closes the connection without a response
		}
		st := t.Spec.Status
		for k, v := range st.Headers {
			rw.Header().Set(k, v)
		}
		if rw.Header().Get("Content-Type") == "" {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		body := st.Body
		if body == "" {
			body = fmt.Sprintf("%d %s (injected by slolab fault %s)\n", st.Code, http.StatusText(st.Code), t.Spec.Name)
		}
		rw.Header().Set("Content-Length", fmt.Sprint(len(body)))
		rw.WriteHeader(st.Code)
		if r.Method != http.MethodHead {
			io.WriteString(rw, body)
		}
		return
	}
	if len(d.Modifiers) > 0 {
		r = r.WithContext(context.WithValue(r.Context(), decisionKey{}, d.Modifiers))
	}
	if rev == match.RevisionCanary && p.canary != nil {
		p.canary.ServeHTTP(rw, r)
		return
	}
	p.rp.ServeHTTP(rw, r)
}

// StatusClientClosedRequest is recorded when the client went away before the
// response was complete (nginx's 499). It does not count against availability.
const StatusClientClosedRequest = 499

func (p *Proxy) rewrite(pr *httputil.ProxyRequest, upstream *url.URL) {
	pr.SetURL(upstream)
	pr.Out.Host = pr.In.Host // forward the client's Host, as most proxies in front of an app do
	if xff, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	if mods, ok := pr.In.Context().Value(decisionKey{}).([]*fault.Rule); ok {
		applyRequest(pr.Out, mods)
	}
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	if mods, ok := resp.Request.Context().Value(decisionKey{}).([]*fault.Rule); ok {
		applyResponse(resp, mods)
	}
	return nil
}

// upstreamError answers 502 with a plain reason when the upstream cannot be
// reached or breaks, so a user or a log shows why.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, upstream *url.URL, err error) {
	if rw, ok := w.(*recorder); ok {
		rw.upstreamErr = true
	}
	if r.Context().Err() != nil {
		return // the client left; nobody to answer
	}
	code := http.StatusBadGateway
	reason := "unreachable"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		code, reason = http.StatusGatewayTimeout, "timed out"
	} else if !isDialError(err) {
		reason = "failed"
	}
	msg := fmt.Sprintf("slolab proxy: upstream %s %s: %v\n", upstream.Host, reason, unwrapURLError(err))
	p.cfg.Logger.Warn("upstream error", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Slolab-Error", "upstream "+reason)
	w.WriteHeader(code)
	fmt.Fprint(w, msg)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
