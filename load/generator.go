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
	// Transport sends requests. By default an http:// target gets HTTP/1.1
	// connections of the generator's own, one per worker (see h1Client), and
	// an https:// target a Transport tuned for MaxInFlight connections to one
	// host, without compression.
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
	// UserAgent is sent with every request whose headers name no other.
	UserAgent = "slolab-load"
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
	fixed      [][]fixedHeaders // per CUJ and template
	h1         *h1Client        // nil: requests go through cfg.Transport
	lag        *histogram       // schedule lag of every send: actual − intended send time
	inflight   atomic.Int64
	started    atomic.Int64 // start, in Unix ns, once Run began
	stopped    atomic.Int64 // when sending stopped, in ns from start
	pool       sync.Pool
	reqCtx     context.Context
	idle       idleWorkers
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
	g := &Generator{basePath: strings.TrimSuffix(u.Path, "/"), lag: newHistogram()}
	if cfg.Transport == nil {
		if u.Scheme == "http" {
			g.h1 = newH1Client(u, cfg.Timeout)
		} else {
			cfg.Transport = NewTransport(cfg.MaxInFlight, cfg.Timeout)
		}
	}
	g.cfg, g.base = cfg, u
	for _, c := range cfg.Plan.CUJs {
		g.stats = append(g.stats, &cujStats{name: c.Name, latency: newHistogram()})
		fx := make([]fixedHeaders, len(c.Templates))
		for i, t := range c.Templates {
			var err error
			if fx[i], err = newFixedHeaders(cfg.Headers, cfg.Users, t); err != nil {
				return nil, fmt.Errorf("CUJ %s, request %s %s: %w", c.Name, t.Method, t.Path, err)
			}
		}
		g.fixed = append(g.fixed, fx)
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
	h1       h1Exchange
	reusable bool // false when the transport may still read the body
}

// Run sends the plan until it ends or ctx is cancelled, then waits for the
// requests in flight (after a cancellation, for at most Config.Drain) and
// returns the report. Cancellation is not an error: the report says the run
// was interrupted.
func (g *Generator) Run(ctx context.Context) (*Report, error) {
	if !g.ran.CompareAndSwap(false, true) {
		return nil, errors.New("load: a generator runs once")
	}
	reqCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cancelRequests := func() {
		cancel()
		if g.h1 != nil {
			g.h1.cancel()
		}
	}
	defer cancel()
	g.reqCtx = reqCtx
	start := g.cfg.Start
	if start.IsZero() {
		start = g.cfg.Now()
	}
	g.started.Store(start.UnixNano())
	var wg sync.WaitGroup
	interrupted := g.dispatch(ctx, start, &wg)
	g.idle.close()
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
	var woke time.Time
	for {
		it, ok := stream.Next()
		if !ok {
			return false
		}
		at := start.Add(it.Due)
		if at.After(g.cfg.Now()) {
			// Wake at most every wakeSlack: requests due in between go out
			// together at the next wake.
			until := at
			if w := woke.Add(wakeSlack); w.After(until) {
				until = w
			}
			if !sl.sleep(ctx, until, g.cfg.Now) {
				return true
			}
			woke = g.cfg.Now()
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
		if w := g.idle.pop(); w != nil {
			w <- c
		} else {
			go g.worker(c, wg)
		}
	}
}

// worker sends calls until the run ends. Workers live as long as the run so
// their stacks, grown once to what a send needs, are reused, and each keeps
// its own connection to an http:// target; there are never more of them than
// requests were in flight at once.
func (g *Generator) worker(c *call, wg *sync.WaitGroup) {
	var conn *h1Conn
	defer func() {
		if conn != nil {
			g.h1.release(conn)
		}
	}()
	next := make(chan *call, 1)
	for {
		g.send(c, &conn)
		// Idle again before the call stops counting as in flight, so the
		// dispatcher never sees room for a call and no idle worker to take
		// it, and opens a connection it does not need.
		idle := g.idle.push(next)
		g.inflight.Add(-1)
		wg.Done()
		if !idle {
			return
		}
		if c = <-next; c == nil {
			return
		}
	}
}

// idleWorkers is a stack of the workers waiting for a call, each by the
// channel it takes calls on. The dispatcher hands a call to the worker that
// became idle last, so at a steady rate the same few workers (and their
// connections, buffers and stacks, warm in the caches) carry the load, and
// those a burst added stay idle at the bottom.
type idleWorkers struct {
	mu     sync.Mutex
	stack  []chan *call
	closed bool
}

// pop returns the worker idle since the shortest time, or nil.
func (w *idleWorkers) pop() chan *call {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.stack)
	if n == 0 {
		return nil
	}
	c := w.stack[n-1]
	w.stack = w.stack[:n-1]
	return c
}

// push adds a worker; false after close, when it should end.
func (w *idleWorkers) push(c chan *call) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.stack = append(w.stack, c)
	return true
}

// close ends every idle worker and every worker that becomes idle later.
func (w *idleWorkers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, c := range w.stack {
		close(c)
	}
	w.stack = nil
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

// wakeSlack is the least time between two of the dispatcher's wakes. Each
// wake from an idle process costs tens of microseconds of CPU (the timer,
// the poller, a thread woken to run the workers), more than a request's own
// writing and reading, so above 1/wakeSlack requests a second the dispatcher
// sends the requests due since its last wake together, each at most
// wakeSlack late, instead of waking for each: at 16,000/s it wakes 1,000
// times a second, not 16,000. Below that rate every request has a wake of
// its own. A millisecond is the runtime's own timer resolution in an idle
// process, and a tenth of the default late-after.
const wakeSlack = time.Millisecond

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

// send sends one call, over the worker's connection *conn to an http://
// target or through the configured transport, and records what came back.
func (g *Generator) send(c *call, conn **h1Conn) {
	defer func() {
		if c.reusable {
			g.pool.Put(c)
		}
	}()
	st := g.stats[c.item.CUJ]
	sent := g.cfg.Now()
	lag := sent.Sub(c.intended)
	g.lag.record(lag)
	st.sent.Add(1)
	if lag > g.cfg.LateAfter {
		st.late.Add(1)
	}
	deadline := sent.Add(g.cfg.Timeout)
	var code int
	var err error
	if g.h1 != nil {
		if err = g.buildWire(c); err == nil {
			err = g.h1.do(g.reqCtx, conn, &c.h1, sent, deadline)
			code = c.h1.status
		}
		c.reusable = true // the call's bytes are not read once do returns
	} else {
		code, err = g.roundTrip(c, deadline)
		// After an error the transport may still read the body in the background.
		c.reusable = err == nil
	}
	end := g.cfg.Now()
	if *conn != nil {
		(*conn).lastUsed = end
	}
	if err != nil {
		if g.reqCtx.Err() != nil {
			st.cancelled.Add(1)
			return
		}
		st.fail(err)
		st.latency.record(end.Sub(c.intended))
		return
	}
	st.status(code)
	st.latency.record(end.Sub(c.intended))
}

// roundTrip sends a call through the configured http.RoundTripper.
func (g *Generator) roundTrip(c *call, deadline time.Time) (int, error) {
	req := g.build(c)
	ctx, cancel := context.WithDeadline(g.reqCtx, deadline)
	defer cancel()
	resp, err := g.cfg.Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// Started returns when the run's plan started, and false before Run.
func (g *Generator) Started() (time.Time, bool) {
	ns := g.started.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
