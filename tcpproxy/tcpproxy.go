// Package tcpproxy forwards TCP connections to a dependency that does not
// speak HTTP (a database, a cache, a broker) and degrades them with the fault
// rules that select its listener: latency and jitter, a bandwidth limit,
// connection resets, blackholes and slow closes, at exact rates per
// connection or per chunk, with the same leases, admin API and counters as
// HTTP faults.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

// DefaultChunkSize is the most a pipe reads at once: one chunk.
const DefaultChunkSize = 32 << 10

// Config configures a Proxy.
type Config struct {
	// Name is the listener's name, which rules select with match.tcp.
	Name string
	// Upstream is the dependency's host:port.
	Upstream string
	Faults   *fault.Registry
	// Dial connects to the upstream (default: TCP to Upstream with a 5s timeout).
	Dial func(ctx context.Context) (net.Conn, error)
	// ChunkSize bounds one read (default 32KiB).
	ChunkSize int
	// Classes, when set, counts the connections a fault reset or
	// blackholed, and dials that failed, as error classes of CUJ
	// "tcp:NAME", kind tcp.
	Classes *errclass.Classifier
	Now     func() time.Time
	Logger  *slog.Logger
}

// Proxy forwards the connections of one listener.
type Proxy struct {
	cfg Config

	conns      atomic.Uint64
	bytes      [2]atomic.Uint64 // by direction: upstream, downstream
	resets     atomic.Uint64
	blackholed atomic.Uint64

	mu   sync.Mutex
	open map[*conn]struct{}
	wg   sync.WaitGroup
}

// New returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Name == "" || cfg.Faults == nil || (cfg.Upstream == "" && cfg.Dial == nil) {
		return nil, errors.New("tcpproxy.New: a name, an upstream and the fault registry are required")
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		cfg.Dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", cfg.Upstream) }
	}
	return &Proxy{cfg: cfg, open: map[*conn]struct{}{}}, nil
}

// Name returns the listener's name.
func (p *Proxy) Name() string { return p.cfg.Name }

// Serve accepts connections on ln until ctx ends, then closes the listener
// and every open connection and waits for their handlers.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.open {
			c.close()
		}
		p.mu.Unlock()
	})
	defer stop()
	var err error
	for {
		var client net.Conn
		client, err = ln.Accept()
		if err != nil {
			break
		}
		p.wg.Go(func() { p.Handle(ctx, client) })
	}
	p.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// direction indexes.
const (
	up   = 0 // client → upstream
	down = 1 // upstream → client
)

var dirNames = [2]string{spec.Upstream, spec.Downstream}

func covers(d string, dir int) bool { return d == spec.Both || d == dirNames[dir] }

type conn struct {
	p       *Proxy
	index   uint64
	client  net.Conn
	server  net.Conn
	rules   []*fault.Rule // connection-level rules that injected this connection
	chunks  [2]atomic.Uint64
	mu      sync.Mutex
	holes   [2]atomic.Pointer[fault.Rule] // chunk-level blackholes, sticky per direction
	timeout atomic.Pointer[time.Timer]
	closed  atomic.Bool
	done    chan struct{} // closed when the connection closes
}

// Handle forwards one client connection.
func (p *Proxy) Handle(ctx context.Context, client net.Conn) {
	c := &conn{p: p, client: client, index: p.conns.Add(1), done: make(chan struct{})}
	p.mu.Lock()
	p.open[c] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.open, c)
		p.mu.Unlock()
		c.close()
	}()

	now := p.cfg.Now()
	var holes [2]bool
	for _, r := range p.cfg.Faults.Table().TCP(p.cfg.Name) {
		a := r.Spec.TCP
		if a.Per != spec.PerConnection || !r.Active(now) {
			continue
		}
		if inject, _ := r.Counter().Next(); !inject {
			continue
		}
		c.rules = append(c.rules, r)
		if a.Reset {
			p.classify("connection reset", r.Spec.Name)
			p.resets.Add(1)
			p.cfg.Logger.Debug("tcp fault: connection reset", "listener", p.cfg.Name, "fault", r.Spec.Name, "conn", c.index)
			c.reset()
			return
		}
		if a.Blackhole {
			holes[up] = holes[up] || covers(a.Direction, up)
			holes[down] = holes[down] || covers(a.Direction, down)
			if a.Timeout > 0 {
				c.closeAfter(a.Timeout)
			}
		}
	}
	if holes[up] || holes[down] {
		p.blackholed.Add(1)
		p.classify("blackhole", c.rules[len(c.rules)-1].Spec.Name)
	}
	if holes[up] {
		// Nothing the client sends arrives: the upstream is never reached.
		c.drain(c.client, up)
		return
	}
	server, err := p.cfg.Dial(ctx)
	if err != nil {
		p.cfg.Logger.Warn("tcp upstream unreachable", "listener", p.cfg.Name, "upstream", p.cfg.Upstream, "err", err)
		p.classify("upstream unreachable", "")
		return
	}
	c.mu.Lock()
	c.server = server
	c.mu.Unlock()
	if c.closed.Load() {
		server.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.pipe(up, c.client, c.server) })
	wg.Go(func() { c.pipe(down, c.server, c.client) })
	wg.Wait()
}

// classify counts a failed connection in its error class; fault names the
// rule that injected it, "" for a failure of the dependency's own.
func (p *Proxy) classify(what, fault string) {
	if p.cfg.Classes == nil {
		return
	}
	p.cfg.Classes.Observe(errclass.Event{
		CUJ: "tcp:" + p.cfg.Name, Route: p.cfg.Upstream, Kind: errclass.KindTCP, Body: []byte(what),
		Injected: fault != "", Fault: fault, Time: p.cfg.Now(),
	})
}

// effect is what the rules do to one chunk.
type effect struct {
	delay     time.Duration
	bandwidth int64
	reset     bool
	resetBy   string // the rule that reset
	drop      bool
	close     bool // a blackhole ended: the stream has lost data, so it ends too
}

func (c *conn) effects(dir int) effect {
	now := c.p.cfg.Now()
	n := c.chunks[dir].Add(1)
	var e effect
	apply := func(r *fault.Rule, k uint64) {
		a := r.Spec.TCP
		if a.Latency > 0 {
			d := a.Latency
			if a.Jitter > 0 {
				d += time.Duration((2*fault.Uniform(r.Spec.Seed, k) - 1) * float64(a.Jitter))
			}
			e.delay += d
		}
		if a.Bandwidth > 0 && (e.bandwidth == 0 || a.Bandwidth < e.bandwidth) {
			e.bandwidth = a.Bandwidth
		}
		if a.Reset && !e.reset {
			e.reset, e.resetBy = true, r.Spec.Name
		}
		e.drop = e.drop || a.Blackhole
	}
	for _, r := range c.rules {
		if !covers(r.Spec.TCP.Direction, dir) {
			continue
		}
		if !r.Active(now) {
			e.close = e.close || r.Spec.TCP.Blackhole
			continue
		}
		apply(r, c.index<<20^n) // a reproducible draw per connection and chunk
	}
	if hole := c.holes[dir].Load(); hole != nil {
		if !hole.Active(now) {
			e.close = true
		}
		e.drop = true
	}
	for _, r := range c.p.cfg.Faults.Table().TCP(c.p.cfg.Name) {
		a := r.Spec.TCP
		if a.Per != spec.PerChunk || !covers(a.Direction, dir) || !r.Active(now) {
			continue
		}
		inject, k := r.Counter().Next()
		if !inject {
			continue
		}
		apply(r, k)
		if a.Blackhole && c.holes[dir].CompareAndSwap(nil, r) {
			c.p.blackholed.Add(1)
			if a.Timeout > 0 {
				c.closeAfter(a.Timeout)
			}
		}
	}
	return e
}

// pipe copies src to dst chunk by chunk, applying the faults of its direction.
func (c *conn) pipe(dir int, src, dst net.Conn) {
	buf := make([]byte, c.p.cfg.ChunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			e := c.effects(dir)
			switch {
			case e.close:
				c.close()
				return
			case e.reset:
				c.p.classify("connection reset", e.resetBy)
				c.p.resets.Add(1)
				c.reset()
				return
			case e.drop:
			default:
				if e.delay > 0 && !c.sleep(e.delay) {
					return
				}
				if werr := c.write(dir, dst, buf[:n], e.bandwidth); werr != nil {
					c.close()
					return
				}
			}
		}
		if err != nil {
			if c.closed.Load() || !errors.Is(err, io.EOF) {
				c.close()
				return
			}
			if d := c.slowClose(dir); d > 0 && !c.sleep(d) {
				return
			}
			closeWrite(dst)
			return
		}
	}
}

// write sends b, paced to bandwidth bytes per second when it is set: the
// chunk goes out in tenth-of-a-second pieces, each delivered once its share
// of time has passed, so the rate is a function of bytes sent alone.
func (c *conn) write(dir int, dst net.Conn, b []byte, bandwidth int64) error {
	if bandwidth <= 0 {
		_, err := dst.Write(b)
		c.p.bytes[dir].Add(uint64(len(b)))
		return err
	}
	piece := max(int(bandwidth/10), 1)
	for len(b) > 0 {
		n := min(piece, len(b))
		if !c.sleep(time.Duration(int64(n) * int64(time.Second) / bandwidth)) {
			return net.ErrClosed
		}
		if _, err := dst.Write(b[:n]); err != nil {
			return err
		}
		c.p.bytes[dir].Add(uint64(n))
		b = b[n:]
	}
	return nil
}

// slowClose is how long to hold a close flowing in dir.
func (c *conn) slowClose(dir int) time.Duration {
	now := c.p.cfg.Now()
	var d time.Duration
	for _, r := range c.rules {
		if a := r.Spec.TCP; a.SlowClose > 0 && covers(a.Direction, dir) && r.Active(now) {
			d = max(d, a.SlowClose)
		}
	}
	return d
}

// sleep waits d unless the connection closes first; it reports whether it waited.
func (c *conn) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !c.closed.Load()
	case <-c.done:
		return false
	}
}

// drain reads and drops what src sends until it closes (a blackhole).
func (c *conn) drain(src net.Conn, dir int) {
	buf := make([]byte, c.p.cfg.ChunkSize)
	for {
		if _, err := src.Read(buf); err != nil {
			return
		}
		if e := c.effects(dir); e.close {
			return
		}
	}
}

func (c *conn) closeAfter(d time.Duration) {
	t := time.AfterFunc(d, c.close)
	if !c.timeout.CompareAndSwap(nil, t) {
		t.Stop() // an earlier timeout already runs
	}
}

func (c *conn) close() {
	if c.closed.Swap(true) {
		return
	}
	if t := c.timeout.Load(); t != nil {
		t.Stop()
	}
	close(c.done)
	c.client.Close()
	if s := c.serverConn(); s != nil {
		s.Close()
	}
}

func (c *conn) serverConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.server
}

// reset closes both sides with a TCP RST where the connection is TCP.
func (c *conn) reset() {
	for _, x := range []net.Conn{c.client, c.serverConn()} {
		if t, ok := x.(*net.TCPConn); ok {
			_ = t.SetLinger(0) // best effort: a plain close is the fallback
		}
	}
	c.close()
}

func closeWrite(dst net.Conn) {
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() != nil {
			dst.Close()
		}
		return
	}
	dst.Close()
}

var (
	connsDesc  = prometheus.NewDesc("slolab_tcp_connections_total", "Connections accepted by a TCP listener.", []string{"listener"}, nil)
	activeDesc = prometheus.NewDesc("slolab_tcp_connections_active", "Connections a TCP listener holds open.", []string{"listener"}, nil)
	bytesDesc  = prometheus.NewDesc("slolab_tcp_bytes_total", "Bytes forwarded by a TCP listener.", []string{"listener", "direction"}, nil)
	resetDesc  = prometheus.NewDesc("slolab_tcp_resets_total", "Connections a TCP fault reset.", []string{"listener"}, nil)
	holeDesc   = prometheus.NewDesc("slolab_tcp_blackholes_total", "Connection directions a TCP fault blackholed.", []string{"listener"}, nil)
)

// Describe implements prometheus.Collector.
func (p *Proxy) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connsDesc, activeDesc, bytesDesc, resetDesc, holeDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Proxy) Collect(ch chan<- prometheus.Metric) {
	n := p.cfg.Name
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.CounterValue, float64(p.conns.Load()), n)
	p.mu.Lock()
	active := len(p.open)
	p.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(active), n)
	for i, d := range dirNames {
		ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.CounterValue, float64(p.bytes[i].Load()), n, d)
	}
	ch <- prometheus.MustNewConstMetric(resetDesc, prometheus.CounterValue, float64(p.resets.Load()), n)
	ch <- prometheus.MustNewConstMetric(holeDesc, prometheus.CounterValue, float64(p.blackholed.Load()), n)
}

// ParseListener reads the --tcp flag: NAME=LISTEN,UPSTREAM.
func ParseListener(s string) (name, listen, upstream string, err error) {
	name, rest, ok := strings.Cut(s, "=")
	listen, upstream, ok2 := strings.Cut(rest, ",")
	if !ok || !ok2 || name == "" || listen == "" || upstream == "" {
		return "", "", "", fmt.Errorf("want NAME=LISTEN,UPSTREAM such as postgres=127.0.0.1:15432,127.0.0.1:5432, got %q", s)
	}
	if !spec.ValidName(name) {
		return "", "", "", fmt.Errorf("%q: the name %q must be lower-case letters, digits, '-' and '_', as fault rules name it in match.tcp", s, name)
	}
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return "", "", "", fmt.Errorf("%q: listen address: %w", s, err)
	}
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return "", "", "", fmt.Errorf("%q: upstream address: %w", s, err)
	}
	return name, listen, upstream, nil
}
