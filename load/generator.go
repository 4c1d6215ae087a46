// Package load is slolab's open-model load generator: requests are sent at
// the times a plan sets, whatever the target's response times, and latency is
// measured from each request's intended send time, so a stall shows up in the
// percentiles instead of being hidden (coordinated omission). A plan splits a
// rate (constant or in stages) over a service's CUJs by share or rate, fills
// request templates with seeded variables and many client identities, and can
// be sharded over machines. `slolab load`, `slolab lab` and experiments all
// run it in-process.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Generator. Zero values take the defaults noted.
type Config struct {
	Plan   *Plan
	Target string // base URL of the target: http://127.0.0.1:8080
	Users  Users  // default 1000 users, X-User-ID and cookie slolab_user
	// Headers go on every request; a template's own headers win.
	Headers http.Header
	// MaxInFlight bounds concurrent requests; a request due while it is
	// reached is dropped and counted, never queued. Default 10000.
	MaxInFlight int
	// Timeout bounds each request from its send. Default 30s.
	Timeout time.Duration
	// LateAfter: a request sent more than this after its intended time is
	// counted late (the generator itself fell behind). Default 10ms.
	LateAfter time.Duration
	// Drain is how long requests in flight may finish after the run is
	// interrupted; then they are cancelled. Default 2s.
	Drain time.Duration
	// Start is the plan's time zero (default: when Run starts). Shards on
	// several machines can share one start to replay a plan in step.
	Start time.Time
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Transport sends requests (default: a Transport tuned for MaxInFlight
	// connections to one host, without compression).
	Transport http.RoundTripper
}

// Defaults.
const (
	DefaultUsers       = 1000
	DefaultUserHeader  = "X-User-ID"
	DefaultUserCookie  = "slolab_user"
	DefaultMaxInFlight = 10000
	DefaultTimeout     = 30 * time.Second
	DefaultLateAfter   = 10 * time.Millisecond
	DefaultDrain       = 2 * time.Second
)

func (c *Config) defaults() {
	if c.Users.N == 0 {
		c.Users = Users{N: DefaultUsers, Header: DefaultUserHeader, Cookie: DefaultUserCookie}
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.LateAfter == 0 {
		c.LateAfter = DefaultLateAfter
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Generator sends a plan's requests. Create it with New, run it once with Run.
type Generator struct {
	cfg        Config
	base       *url.URL
	basePath   string
	stats      []*cujStats
	lag        *histogram // schedule lag of every send: actual − intended send time
	inflight   atomic.Int64
	started    atomic.Int64 // start, in Unix ns, once Run began
	stopped    atomic.Int64 // when sending stopped, in ns from start
	pool       sync.Pool
	reqCtx     context.Context
	work       chan *call // to idle workers
	ran        atomic.Bool
	coarseOnly bool // wait with the runtime's timers alone (tests in a synctest bubble)
}

// New checks cfg and prepares a generator.
func New(cfg Config) (*Generator, error) {
	cfg.defaults()
	if cfg.Plan == nil {
		return nil, errors.New("load: no plan")
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target: want an http:// or https:// URL such as http://127.0.0.1:8080, got %q", cfg.Target)
	}
	if err := cfg.Users.check(); err != nil {
		return nil, err
	}
	if cfg.MaxInFlight < 1 {
		return nil, fmt.Errorf("max in flight: want at least 1, got %d", cfg.MaxInFlight)
	}
	if cfg.Timeout < 0 || cfg.LateAfter < 0 || cfg.Drain < 0 {
		return nil, errors.New("timeout, late-after and drain must not be negative")
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport(cfg.MaxInFlight, cfg.Timeout)
	}
	g := &Generator{cfg: cfg, base: u, basePath: strings.TrimSuffix(u.Path, "/"), lag: newHistogram()}
	for _, c := range cfg.Plan.CUJs {
		g.stats = append(g.stats, &cujStats{name: c.Name, latency: newHistogram()})
	}
	g.pool.New = func() any { return &call{header: http.Header{}} }
	return g, nil
}

// NewTransport returns an http.Transport for load: as many idle connections
// to the target as requests may be in flight, no compression, and HTTP/2
// when the target offers it over TLS.
func NewTransport(maxInFlight int, timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConns:        maxInFlight,
		MaxIdleConnsPerHost: maxInFlight,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   true,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}
}

// call is one request in flight, reused through a pool.
type call struct {
	item     Item
	intended time.Time
	rng      rand.PCG
	vals     values
	path     []byte
	body     []byte
	id       []byte
	scratch  []byte
	header   http.Header
	reader   bodyReader
	reusable bool // false when the transport may still read the body
}

// bodyReader is a request body that needs no allocation per request.
type bodyReader struct{ bytes.Reader }

// Close does nothing: the bytes belong to the call.
func (*bodyReader) Close() error { return nil }

// Run sends the plan until it ends or ctx is cancelled, then waits for the
// requests in flight (after a cancellation, for at most Config.Drain) and
// returns the report. Cancellation is not an error: the report says the run
// was interrupted.
func (g *Generator) Run(ctx context.Context) (*Report, error) {
	if !g.ran.CompareAndSwap(false, true) {
		return nil, errors.New("load: a generator runs once")
	}
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	g.reqCtx = reqCtx
	start := g.cfg.Start
	if start.IsZero() {
		start = g.cfg.Now()
	}
	g.started.Store(start.UnixNano())
	var wg sync.WaitGroup
	g.work = make(chan *call)
	interrupted := g.dispatch(ctx, start, &wg)
	close(g.work)
	g.stopped.Store(int64(g.cfg.Now().Sub(start)))
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if interrupted {
		t := time.NewTimer(g.cfg.Drain)
		select {
		case <-done:
		case <-t.C:
			cancelRequests()
			<-done
		}
		t.Stop()
	} else {
		<-done
	}
	return g.report(start, interrupted), nil
}

// dispatch walks the plan, waiting for each request's time; it reports
// whether ctx stopped it.
func (g *Generator) dispatch(ctx context.Context, start time.Time, wg *sync.WaitGroup) bool {
	stream := g.cfg.Plan.Stream()
	var sl sleeper
	if !g.coarseOnly {
		sl.fine = newFineTimer()
	}
	defer sl.stop()
	limit := int64(g.cfg.MaxInFlight)
	for {
		it, ok := stream.Next()
		if !ok {
			return false
		}
		at := start.Add(it.Due)
		if at.After(g.cfg.Now()) {
			if !sl.sleep(ctx, at, g.cfg.Now) {
				return true
			}
		} else if ctx.Err() != nil {
			return true
		}
		st := g.stats[it.CUJ]
		if g.inflight.Load() >= limit {
			st.dropped.Add(1)
			continue
		}
		g.inflight.Add(1)
		wg.Add(1)
		c := g.pool.Get().(*call)
		c.item, c.intended = it, at
		select {
		case g.work <- c: // an idle worker takes it
		default:
			go g.worker(c, wg)
		}
	}
}

// worker sends calls until the run ends. Workers live as long as the run so
// their stacks, grown once to what net/http needs, are reused; there are
// never more of them than requests were in flight at once.
func (g *Generator) worker(c *call, wg *sync.WaitGroup) {
	for {
		g.send(c, wg)
		var ok bool
		if c, ok = <-g.work; !ok {
			return
		}
	}
}

// sleeper waits with one reusable runtime timer for the bulk of a wait
// (cancellable) and a fine timer for the last stretch, which the runtime's
// timers would round up to a millisecond in an idle process.
type sleeper struct {
	t    *time.Timer
	fine *fineTimer
}

// coarse is how much of a wait is left to the fine timer.
const coarse = 2 * time.Millisecond

func (s *sleeper) sleep(ctx context.Context, until time.Time, now func() time.Time) bool {
	d := until.Sub(now())
	if d > coarse {
		if s.t == nil {
			s.t = time.NewTimer(d - coarse)
		} else {
			s.t.Reset(d - coarse)
		}
		select {
		case <-s.t.C:
		case <-ctx.Done():
			return false
		}
		d = until.Sub(now())
	}
	if ctx.Err() != nil {
		return false
	}
	if d > 0 && !s.fine.wait(d) {
		time.Sleep(d)
	}
	return true
}

func (s *sleeper) stop() {
	if s.t != nil {
		s.t.Stop()
	}
	s.fine.close()
}

func (g *Generator) send(c *call, wg *sync.WaitGroup) {
	defer func() {
		g.inflight.Add(-1)
		if c.reusable {
			g.pool.Put(c)
		}
		wg.Done()
	}()
	st := g.stats[c.item.CUJ]
	sent := g.cfg.Now()
	lag := sent.Sub(c.intended)
	g.lag.record(lag)
	st.sent.Add(1)
	if lag > g.cfg.LateAfter {
		st.late.Add(1)
	}
	req := g.build(c)
	ctx, cancel := context.WithDeadline(g.reqCtx, sent.Add(g.cfg.Timeout))
	resp, err := g.cfg.Transport.RoundTrip(req.WithContext(ctx))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	end := g.cfg.Now()
	// After an error the transport may still read the body in the background.
	c.reusable = err == nil
	if err != nil {
		if g.reqCtx.Err() != nil {
			st.cancelled.Add(1)
			return
		}
		st.fail(err)
		st.latency.record(end.Sub(c.intended))
		return
	}
	st.status(resp.StatusCode)
	st.latency.record(end.Sub(c.intended))
}

// build fills the request's template. Everything random is drawn from a
// generator seeded with (plan seed, request index), so a request is the same
// whichever shard sends it and whatever order requests complete in.
func (g *Generator) build(c *call) *http.Request {
	p := g.cfg.Plan
	t := p.CUJs[c.item.CUJ].Templates[c.item.Template]
	c.rng.Seed(p.Seed, c.item.K)
	user := uniform(&c.rng, uint64(g.cfg.Users.N)) + 1
	c.id = appendID(c.id[:0], user)
	c.vals.fill(t, c.id, c.item.K, &c.rng)

	c.path = append(c.path[:0], g.basePath...)
	c.path = c.vals.appendText(c.path, &t.path)
	u := &url.URL{Scheme: g.base.Scheme, Host: g.base.Host}
	if path, query, ok := bytes.Cut(c.path, []byte("?")); ok {
		u.Path, u.RawQuery = string(path), string(query)
	} else {
		u.Path = string(c.path)
	}
	h := c.header
	clear(h)
	for k, v := range g.cfg.Headers {
		h[k] = v
	}
	users := g.cfg.Users
	if users.Header != "" {
		h[http.CanonicalHeaderKey(users.Header)] = []string{string(c.id)}
	}
	if users.Cookie != "" {
		c.scratch = append(append(append(c.scratch[:0], users.Cookie...), '='), c.id...)
		h["Cookie"] = []string{string(c.scratch)}
	}
	c.scratch = appendAddr(c.scratch[:0], user)
	h["X-Forwarded-For"] = []string{string(c.scratch)}
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
	if len(t.body.segs) > 0 || t.body.lit != "" {
		c.body = c.vals.appendText(c.body[:0], &t.body)
		c.reader.Reset(c.body)
		req.Body = &c.reader
		req.ContentLength = int64(len(c.body))
	}
	return req
}

// Started returns when the run's plan started, and false before Run.
func (g *Generator) Started() (time.Time, bool) {
	ns := g.started.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
