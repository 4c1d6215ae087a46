// Package proxy is slolab's HTTP reverse proxy: for every request it finds the
// CUJ and route, the client group, the faults to inject, forwards faithfully
// (streaming bodies, upgrades, trailers, keep-alive) and records what the
// client experienced.
package proxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/split"
)

// DefaultFaultHeader marks responses a fault rule changed, naming the rules.
const DefaultFaultHeader = "X-Slolab-Fault"

// DefaultUpstreamTimeout bounds the wait for the upstream's response head,
// from when the request has gone out: nginx's proxy_read_timeout and an AWS
// load balancer's idle timeout.
const DefaultUpstreamTimeout = 60 * time.Second

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
	// UpstreamTimeout bounds the wait for the upstream's response head once
	// the request has gone out (default DefaultUpstreamTimeout). The proxy
	// then answers 504, which counts against availability.
	UpstreamTimeout time.Duration
	// CUJTimeouts overrides UpstreamTimeout for the CUJs it names.
	CUJTimeouts map[string]time.Duration
	// Transport, when set, forwards every request, through net/http (the
	// dedicated HTTP/1.1 path is then off). By default the proxy keeps its
	// own pool of keep-alive connections to the upstream.
	Transport http.RoundTripper
	// Classes, when set, sorts every failed request into an error class
	// (see package errclass), reading the first bytes of an error
	// response's body as they pass to the client.
	Classes *errclass.Classifier
	Logger  *slog.Logger
	Now     func() time.Time
}

func (c *Config) defaults() {
	if c.FaultHeader == "" {
		c.FaultHeader = DefaultFaultHeader
	}
	if c.FaultHeader == "-" {
		c.FaultHeader = ""
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
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
// canary upstream. Serve runs it on a listener with a dedicated HTTP/1.1
// path; as an http.Handler it serves whatever net/http hands it.
type Proxy struct {
	cfg       Config
	rp        *httputil.ReverseProxy // to Upstream
	canary    *httputil.ReverseProxy // to the split's canary upstream, in weight mode
	timeouts  []time.Duration        // per CUJ index
	revHeader string                 // the split's revision header, in header mode

	samples sync.Pool // *[]byte: error bodies' samples, while classifying

	fast               bool          // Serve takes the dedicated path
	stable, canaryPool *upstreamPool // its upstream connections
}

// New returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	cfg.defaults()
	if cfg.Upstream == nil || cfg.Routes == nil || cfg.Faults == nil || cfg.Recorder == nil {
		return nil, errors.New("proxy.New: upstream, routes, faults and recorder are required")
	}
	if cfg.UpstreamTimeout < 0 {
		return nil, fmt.Errorf("proxy.New: the upstream timeout must be positive, got %s", cfg.UpstreamTimeout)
	}
	p := &Proxy{cfg: cfg, timeouts: make([]time.Duration, len(cfg.Routes.CUJs()))}
	for i := range p.timeouts {
		p.timeouts[i] = cfg.UpstreamTimeout
	}
	for name, d := range cfg.CUJTimeouts {
		i := cfg.Routes.CUJIndex(name)
		if i < 0 || d <= 0 {
			return nil, fmt.Errorf("proxy.New: upstream timeout %s for CUJ %q: want a positive timeout for a CUJ of the spec", d, name)
		}
		p.timeouts[i] = d
	}
	transport := cfg.Transport
	if transport == nil {
		transport = NewTransport()
	}
	p.rp = p.reverseProxy(cfg.Upstream, transport)
	p.fast = cfg.Transport == nil && plainHTTP(cfg.Upstream)
	p.stable = newUpstreamPool(cfg.Upstream.Host, hostPort(cfg.Upstream))
	if cfg.Split != nil {
		if c := cfg.Split.Canary(); c != nil {
			p.canary = p.reverseProxy(c, transport)
			p.fast = p.fast && plainHTTP(c)
			p.canaryPool = newUpstreamPool(c.Host, hostPort(c))
		}
		p.revHeader = cfg.Split.Header()
	}
	return p, nil
}

// plainHTTP reports whether the dedicated path can forward to u: plain HTTP,
// no base path or query to merge into every request's.
func plainHTTP(u *url.URL) bool {
	return u.Scheme == "http" && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func (p *Proxy) poolFor(rev match.Revision) *upstreamPool {
	if rev == match.RevisionCanary && p.canaryPool != nil {
		return p.canaryPool
	}
	return p.stable
}

func (p *Proxy) timeoutFor(route *match.Route) time.Duration { return p.timeouts[route.CUJ] }

func (p *Proxy) closeIdle() {
	p.stable.closeIdle()
	if p.canaryPool != nil {
		p.canaryPool.closeIdle()
	}
}

// exchange is what the proxy found and decided for one request before
// answering it.
type exchange struct {
	start time.Time
	route *match.Route
	group match.Group
	run   *match.Grouper // the experiment run counting the request, or nil
	rev   match.Revision
	d     fault.Decision

	fail   string // how the request failed without a response of the upstream's (an errclass kind), or ""
	sample []byte // the first bytes of an error response's body, when classifying
}

// begin matches the request to its route, puts the client in its group,
// asks the fault rules and the split, both paths alike.
func (p *Proxy) begin(r *http.Request) exchange {
	start := p.cfg.Now()
	route := p.cfg.Routes.Match(r)
	table := p.cfg.Faults.Table()
	group, run := table.Group(r, route, match.ClientIP(r, p.cfg.TrustForwardedFor), start)
	x := exchange{start: start, route: route, group: group, run: run, rev: match.RevisionNone, d: table.Decide(r, route, group, start)}
	if p.cfg.Split != nil {
		x.rev = p.cfg.Split.Pick(r, route)
	}
	return x
}

// record records a finished request: the status the client saw (0 for
// none) and the latency up to end.
func (p *Proxy) record(x *exchange, method, path string, code int, end time.Time) {
	if x.rev == match.RevisionNone && p.cfg.Split != nil {
		x.rev = match.RevisionStable // header mode, and the response named none (an answer of the proxy's own)
	}
	p.cfg.Recorder.Observe(sli.Observation{Route: x.route, Revision: x.rev, Group: x.group, Run: x.run, Method: method, Code: code, Latency: end.Sub(x.start)})
	if p.cfg.Classes != nil && sli.Bad(code) {
		p.classify(x, method, path, code, end)
	}
	if x.sample != nil {
		b := x.sample[:0]
		x.sample = nil
		p.samples.Put(&b)
	}
}

// classify counts a failed request in its error class: the status and body
// the client saw, or how the request failed when the proxy answered.
func (p *Proxy) classify(x *exchange, method, path string, code int, end time.Time) {
	kind := x.fail
	switch {
	case kind != "":
	case code == 0 && x.d.Terminal != nil && x.d.Terminal.Spec.Abort:
		kind = errclass.KindAbort
	case code == 0:
		kind = errclass.KindReset
	case code == http.StatusGatewayTimeout && x.sample == nil:
		kind = errclass.KindTimeout // the client left, then the upstream's timeout ran out
	default:
		kind = errclass.KindStatus
	}
	body := x.sample
	if kind != errclass.KindStatus {
		body = nil // the proxy's own message names hosts and errors, not a class
	}
	p.cfg.Classes.Observe(errclass.Event{
		CUJ: x.route.CUJName, Route: x.route.Pattern, Method: method, Path: path, Status: code, Kind: kind,
		Body: body, Injected: len(x.d.Injected) > 0, Fault: p.injectedNames(x), Time: end,
	})
}

// sampling returns a buffer for an error response's first bytes, or nil
// when the response is not one or nothing classifies. record gives it back.
func (p *Proxy) sampling(code int) []byte {
	if p.cfg.Classes == nil || !sli.Bad(code) {
		return nil
	}
	if b, ok := p.samples.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, p.cfg.Classes.SampleSize())
}

// keepBytes appends what of b fits in the sample s: nothing once s is full,
// or when s is nil.
func keepBytes[T string | []byte](s []byte, b T) []byte {
	return append(s, b[:min(len(b), cap(s)-len(s))]...)
}

// faultNames is the fault header's value: the rules injected, or "".
func (p *Proxy) faultNames(x *exchange) string {
	if p.cfg.FaultHeader == "" {
		return ""
	}
	return p.injectedNames(x)
}

// injectedNames names the rules injected into the request, or "".
func (p *Proxy) injectedNames(x *exchange) string {
	if len(x.d.Injected) == 0 {
		return ""
	}
	names := make([]string, len(x.d.Injected))
	for i, rule := range x.d.Injected {
		names[i] = rule.Spec.Name
	}
	return strings.Join(names, ", ")
}

// statusResponse is a status fault's answer: code, header and body.
func (p *Proxy) statusResponse(x *exchange) (int, http.Header, string) {
	t := x.d.Terminal
	st := t.Spec.Status
	h := http.Header{}
	if names := p.faultNames(x); names != "" {
		h.Set(p.cfg.FaultHeader, names)
	}
	for k, v := range st.Headers {
		h.Set(k, v)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	body := st.Body
	if body == "" {
		body = fmt.Sprintf("%d %s (injected by slolab fault %s)\n", st.Code, http.StatusText(st.Code), t.Spec.Name)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return st.Code, h, body
}

// statusLine is a status code and its reason phrase.
func statusLine(code int) string {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + text
}

// ServeHTTP handles one request handed over by net/http: match, group,
// decide, delay, answer or forward, record.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := p.begin(r)
	rw := &recorder{ResponseWriter: w, p: p}
	var fc *forwarding
	defer func() {
		code := rw.finalCode()
		rec := recover()
		if rec != nil {
			// A broken copy (ReverseProxy panics with ErrAbortHandler) cut the
			// response short: the client got nothing whole.
			code = 0
		}
		end := p.cfg.Now()
		if r.Context().Err() != nil && !rw.aborted {
			if fc != nil {
				end = fc.clientLeft(end)
			}
			if code == 0 || rw.upstreamErr {
				code = StatusClientClosedRequest
				if fc != nil && fc.timedOut.Load() {
					code = http.StatusGatewayTimeout // the upstream never answered: not the client's doing
				}
			}
		}
		if x.rev == match.RevisionNone && p.cfg.Split != nil {
			x.rev = p.cfg.Split.FromResponse(rw.Header()) // header mode: the response tells
		}
		x.sample, x.fail = rw.sample, rw.fail
		p.record(&x, r.Method, r.URL.Path, code, end)
		if rec != nil {
			panic(rec)
		}
	}()

	if names := p.faultNames(&x); names != "" {
		w.Header().Set(p.cfg.FaultHeader, names)
	}
	if d := x.d.Delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if t := x.d.Terminal; t != nil {
		if t.Spec.Abort {
			rw.aborted = true
			panic(http.ErrAbortHandler) // net/http closes the connection without a response
		}
		code, h, body := p.statusResponse(&x)
		for k, v := range h {
			rw.Header()[k] = v
		}
		rw.WriteHeader(code)
		if r.Method != http.MethodHead {
			io.WriteString(rw, body)
		}
		return
	}
	fc = p.startForwarding(r, &x)
	defer fc.stop()
	out := r.WithContext(fc.ctx)
	if x.rev == match.RevisionCanary && p.canary != nil {
		p.canary.ServeHTTP(rw, out)
		return
	}
	p.rp.ServeHTTP(rw, out)
}

// StatusClientClosedRequest is recorded when the client went away before the
// response was complete (nginx's 499). It does not count against
// availability, unless the upstream then failed to answer within its timeout.
const StatusClientClosedRequest = 499

// upstreamErrorText is the answer to a failed upstream: 504 for a timeout,
// 502 otherwise, with its error class kind, and the reason for the
// X-Slolab-Error header and the body.
func upstreamErrorText(host string, err error) (code int, kind, reason, msg string) {
	code, kind, reason = http.StatusBadGateway, errclass.KindUnreachable, "unreachable"
	var ne net.Error
	var ht headerTimeoutError
	if errors.As(err, &ht) || errors.As(err, &ne) && ne.Timeout() {
		code, kind, reason = http.StatusGatewayTimeout, errclass.KindTimeout, "timed out"
	} else if !isDialError(err) {
		kind, reason = errclass.KindFailed, "failed"
	}
	return code, kind, reason, fmt.Sprintf("slolab proxy: upstream %s %s: %v\n", host, reason, unwrapURLError(err))
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
