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
	"slices"
	"strconv"
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
		g.send(c, &conn, wg)
		if !g.idle.push(next) {
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
func (g *Generator) send(c *call, conn **h1Conn, wg *sync.WaitGroup) {
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

// fill draws a call's user and variables and writes its path (with the
// query, if any). Everything random is drawn from a generator seeded with
// (plan seed, request index), so a request is the same whichever shard sends
// it and whatever order requests complete in.
func (g *Generator) fill(c *call) (*Template, *fixedHeaders, uint64) {
	p := g.cfg.Plan
	t := p.CUJs[c.item.CUJ].Templates[c.item.Template]
	c.rng.Seed(p.Seed, c.item.K)
	user := uniform(&c.rng, uint64(g.cfg.Users.N)) + 1
	c.id = appendID(c.id[:0], user)
	c.vals.fill(t, c.id, c.item.K, &c.rng)
	c.path = append(c.path[:0], g.basePath...)
	c.path = c.vals.appendText(c.path, &t.path)
	return t, &g.fixed[c.item.CUJ][c.item.Template], user
}

func (t *Template) hasBody() bool { return len(t.body.segs) > 0 || t.body.lit != "" }

// build makes a call's http.Request.
func (g *Generator) build(c *call) *http.Request {
	t, fx, user := g.fill(c)
	u := &url.URL{Scheme: g.base.Scheme, Host: g.base.Host}
	if path, query, ok := bytes.Cut(c.path, []byte("?")); ok {
		u.Path, u.RawQuery = string(path), string(query)
	} else {
		u.Path = string(c.path)
	}
	h := c.header
	clear(h)
	for k, v := range fx.header {
		h[k] = v
	}
	users := g.cfg.Users
	if fx.user {
		h[http.CanonicalHeaderKey(users.Header)] = []string{string(c.id)}
	}
	if fx.cookie {
		c.scratch = append(append(append(c.scratch[:0], users.Cookie...), '='), c.id...)
		h["Cookie"] = []string{string(c.scratch)}
	}
	if fx.xff {
		c.scratch = appendAddr(c.scratch[:0], user)
		h["X-Forwarded-For"] = []string{string(c.scratch)}
	}
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
	if t.hasBody() {
		c.body = c.vals.appendText(c.body[:0], &t.body)
		c.reader.Reset(c.body)
		req.Body = &c.reader
		req.ContentLength = int64(len(c.body))
	}
	return req
}

// buildWire writes a call's request as HTTP/1.1 bytes into c.h1.req: the
// same request build makes, as net/http would write it.
func (g *Generator) buildWire(c *call) error {
	t, fx, user := g.fill(c)
	b := append(c.h1.req[:0], t.Method...)
	b = append(b, ' ')
	path, query, _ := bytes.Cut(c.path, []byte("?"))
	b = appendEscapedPath(b, path)
	if len(query) > 0 {
		b = append(append(b, '?'), query...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if t.Host != "" {
		b = append(b, t.Host...)
	} else {
		b = append(b, g.base.Host...)
	}
	b = append(b, "\r\n"...)
	b = append(b, fx.wire...)
	users := g.cfg.Users
	if fx.user {
		b = appendField(b, users.Header, c.id)
	}
	if fx.cookie {
		c.scratch = append(append(append(c.scratch[:0], users.Cookie...), '='), c.id...)
		b = appendField(b, "Cookie", c.scratch)
	}
	if fx.xff {
		c.scratch = appendAddr(c.scratch[:0], user)
		b = appendField(b, "X-Forwarded-For", c.scratch)
	}
	for _, ht := range t.headers {
		c.scratch = c.vals.appendText(c.scratch[:0], &ht.value)
		v := bytes.Trim(c.scratch, " \t")
		if !validFieldValue(v) {
			c.h1.req = b
			return fmt.Errorf("invalid header field value for %q", ht.name)
		}
		b = appendField(b, ht.name, v)
	}
	c.h1.head = t.Method == http.MethodHead
	c.h1.replayable = replayable(t.Method)
	if t.hasBody() {
		c.body = c.vals.appendText(c.body[:0], &t.body)
	} else {
		c.body = c.body[:0]
	}
	// net/http sends a length with a body, and a zero one for these methods
	// (many servers expect it).
	if len(c.body) > 0 || t.Method == http.MethodPost || t.Method == http.MethodPut || t.Method == http.MethodPatch {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(c.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	c.h1.req = append(b, c.body...)
	return nil
}

// replayable: methods net/http sends again after a stale connection failed them.
func replayable(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func appendField(b []byte, name string, value []byte) []byte {
	b = append(append(append(b, name...), ": "...), value...)
	return append(b, "\r\n"...)
}

// fixedHeaders is what a template's requests carry besides their own
// headers and the user's identity, worked out once: the configured headers
// the template does not override, with a User-Agent when none is set, and
// which identity headers go out (a template's own header of that name wins,
// as the identity wins over a configured header).
type fixedHeaders struct {
	header            http.Header // for net/http
	wire              []byte      // the same as "Name: value\r\n" lines
	user, cookie, xff bool
}

// Header fields the request line, the body or the connection decide;
// net/http ignores them in a request's Header too.
var decidedFields = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

func newFixedHeaders(configured http.Header, users Users, t *Template) (fixedHeaders, error) {
	own := map[string]bool{}
	for _, ht := range t.headers {
		if !validFieldName(ht.name) {
			return fixedHeaders{}, fmt.Errorf("header %q: not a valid field name", ht.name)
		}
		if ht.value.static && !validFieldValue([]byte(ht.value.lit)) {
			return fixedHeaders{}, fmt.Errorf("header %s: the value holds a control character", ht.name)
		}
		own[ht.name] = true
	}
	fx := fixedHeaders{header: http.Header{}}
	identity := map[string]bool{}
	if users.Header != "" {
		name := http.CanonicalHeaderKey(users.Header)
		if !validFieldName(name) {
			return fixedHeaders{}, fmt.Errorf("user header %q: not a valid field name", users.Header)
		}
		fx.user, identity[name] = !own[name], true
	}
	if users.Cookie != "" {
		fx.cookie, identity["Cookie"] = !own["Cookie"], true
	}
	fx.xff, identity["X-Forwarded-For"] = !own["X-Forwarded-For"], true
	names := make([]string, 0, len(configured))
	for k := range configured {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		name := http.CanonicalHeaderKey(k)
		if !validFieldName(name) {
			return fixedHeaders{}, fmt.Errorf("header %q: not a valid field name", k)
		}
		if own[name] || identity[name] || decidedFields[name] {
			continue
		}
		for _, v := range configured[k] {
			v = strings.Trim(v, " \t")
			if !validFieldValue([]byte(v)) {
				return fixedHeaders{}, fmt.Errorf("header %s: the value holds a control character", name)
			}
			fx.header[name] = append(fx.header[name], v)
			fx.wire = appendField(fx.wire, name, []byte(v))
		}
	}
	if !own["User-Agent"] && fx.header["User-Agent"] == nil {
		fx.header["User-Agent"] = []string{UserAgent}
		fx.wire = appendField(fx.wire, "User-Agent", []byte(UserAgent))
	}
	return fx, nil
}

// validFieldName reports whether name is an HTTP token.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v holds no control character but tab.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// pathSafe marks the bytes url.URL.EscapedPath leaves as they are.
var pathSafe = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+,/:;=@") {
		t[c] = true
	}
	return t
}()

// appendEscapedPath writes path as net/http writes a request's URL.Path.
func appendEscapedPath(b, path []byte) []byte {
	if len(path) == 0 {
		return append(b, '/')
	}
	for _, c := range path {
		if !pathSafe[c] {
			return append(b, (&url.URL{Path: string(path)}).EscapedPath()...)
		}
	}
	return append(b, path...)
}

// Started returns when the run's plan started, and false before Run.
func (g *Generator) Started() (time.Time, bool) {
	ns := g.started.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}
