package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
	"slolab.dev/slolab/store/sqlite"
	"slolab.dev/slolab/tcpproxy"
)

// proxyOptions are the flags of `slolab proxy`, also used by `slolab lab`.
type proxyOptions struct {
	specPath          string
	listen            string
	upstream          string // the app, or its stable release
	upstreams         []string
	canary            *url.URL // the canary release, when the proxy splits traffic
	canaryWeight      string
	weight            spec.Ratio
	canarySeed        uint64
	revisionHeader    string
	adminAddr         string
	adminToken        string
	adminAllowHosts   []string
	adminOpenMetrics  bool
	trustForwardedFor bool
	maxTTL            time.Duration
	drain             time.Duration
	upstreamTimeout   time.Duration
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	maxConns          int
	auditLog          string
	faultHeader       string
	h2c               bool
	logLevel          string
	tcp               []string // NAME=LISTEN,UPSTREAM
	store             string
	errorClasses      int
	cluster           clusterOptions
}

func (o *proxyOptions) flags(cmd *cobra.Command, e *env) {
	fs := cmd.Flags()
	fs.StringVar(&o.specPath, "spec", "", "the service spec (YAML, JSON or CUE) listing CUJs and routes (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address the proxy listens on")
	fs.StringArrayVar(&o.upstreams, "upstream", nil, "the app's base URL, e.g. http://127.0.0.1:3000 (required); twice, as stable=URL and canary=URL, to split traffic between two releases")
	fs.StringVar(&o.canaryWeight, "canary-weight", "0", "the canary's share of every CUJ's requests, a percentage (25 or 25%); change it at runtime with PUT /api/v1/canary or 'slolab rollout'")
	fs.Uint64Var(&o.canarySeed, "canary-seed", 1, "shifts which requests go to the canary (not how many), so the split does not alias with periodic traffic")
	fs.StringVar(&o.revisionHeader, "revision-header", "", "read each request's revision from this header, set by a mesh on the request or the response (canary, true, 1, yes, on mean canary; anything else stable)")
	fs.StringVar(&o.adminAddr, "admin", "127.0.0.1:9090", "address of the admin API, /metrics and /healthz")
	secretFlag(fs, &o.adminToken, "admin-token", "SLOLAB_ADMIN_TOKEN", e.getenv, "bearer token the admin API requires, for reads and changes (default $SLOLAB_ADMIN_TOKEN); at least 16 characters; required beyond loopback")
	fs.StringArrayVar(&o.adminAllowHosts, "admin-allow-host", nil, "a DNS name the admin API is reached by (its Host header), besides the address it listens on and localhost; repeatable; * allows any (behind a proxy that checks Host)")
	fs.BoolVar(&o.adminOpenMetrics, "admin-open-metrics", false, "serve /metrics and /healthz without the admin token, for scrapers and probes that cannot send one")
	fs.BoolVar(&o.trustForwardedFor, "trust-forwarded-for", false, "attribute requests to the left-most X-Forwarded-For address (behind a load balancer or a load generator)")
	fs.DurationVar(&o.maxTTL, "max-ttl", 24*time.Hour, "the longest lease a fault rule may hold")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "how long in-flight requests may finish on shutdown")
	fs.DurationVar(&o.upstreamTimeout, "upstream-timeout", proxy.DefaultUpstreamTimeout, "how long the upstream may take to start its response once the request is sent; then the proxy answers 504, which counts against availability (a CUJ's upstreamTimeout in the spec overrides it)")
	fs.DurationVar(&o.readHeaderTimeout, "read-header-timeout", 30*time.Second, "how long a client may take to send a request head (slowloris guard)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 2*time.Minute, "how long a client's keep-alive connection may stay idle")
	fs.IntVar(&o.maxConns, "max-conns", 0, "the most client connections open at once; more wait in the listen backlog (0: no cap but the open-files limit)")
	fs.StringVar(&o.auditLog, "audit-log", "slolab-audit.jsonl", `file the admin API appends every change to as JSON lines ("-" for none)`)
	fs.StringVar(&o.faultHeader, "fault-header", proxy.DefaultFaultHeader, `response header naming the faults that changed a response ("-" for none)`)
	fs.BoolVar(&o.h2c, "h2c", true, "also accept HTTP/2 without TLS (prior knowledge) from clients")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringArrayVar(&o.tcp, "tcp", nil, "also proxy a TCP dependency as NAME=LISTEN,UPSTREAM, for TCP fault rules (match.tcp: NAME); repeatable")
	fs.IntVar(&o.errorClasses, "error-classes", errclass.DefaultPerCUJ, "classify failed requests into error classes for 'slolab errors', keeping at most this many per CUJ (the least recently seen dropped first), injected ones apart; 0 turns classification off")
	fs.StringVar(&o.store, "store", DefaultStore, `embedded store the proxy writes minute buckets to every 10s and on shutdown, for 'slolab slo' ("-" for none)`)
	o.cluster.flags(fs, e)
}

func (o *proxyOptions) check() (*url.URL, error) {
	if o.specPath == "" {
		return nil, usageErrorf("--spec is required: the service spec listing CUJs and routes")
	}
	if err := o.checkUpstreams(); err != nil {
		return nil, err
	}
	if o.upstream == "" {
		return nil, usageErrorf("--upstream is required: the app's base URL, e.g. http://127.0.0.1:3000")
	}
	u, err := parseUpstream("--upstream", o.upstream)
	if err != nil {
		return nil, err
	}
	if err := admin.CheckListen(o.adminAddr, o.adminToken); err != nil {
		return nil, usageErrorf("%v", err)
	}
	if o.maxTTL <= 0 {
		return nil, usageErrorf("--max-ttl must be positive")
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--upstream-timeout", o.upstreamTimeout}, {"--read-header-timeout", o.readHeaderTimeout}, {"--idle-timeout", o.idleTimeout}, {"--drain", o.drain}} {
		if d.v < 0 {
			return nil, usageErrorf("%s must be positive (or 0 for the default), got %s", d.flag, d.v)
		}
	}
	if o.maxConns < 0 {
		return nil, usageErrorf("--max-conns must be 0 (no cap) or positive, got %d", o.maxConns)
	}
	if o.errorClasses < 0 {
		return nil, usageErrorf("--error-classes must be 0 (off) or the most classes kept per CUJ, got %d", o.errorClasses)
	}
	if _, err := o.tcpListeners(); err != nil {
		return nil, err
	}
	if err := o.cluster.check(); err != nil {
		return nil, err
	}
	return u, nil
}

type tcpFlag struct{ name, listen, upstream string }

// tcpListeners parses the --tcp flags.
func (o *proxyOptions) tcpListeners() ([]tcpFlag, error) {
	var out []tcpFlag
	seen := map[string]bool{}
	for _, t := range o.tcp {
		name, listen, up, err := tcpproxy.ParseListener(t)
		if err != nil {
			return nil, usageErrorf("--tcp %v", err)
		}
		if seen[name] {
			return nil, usageErrorf("--tcp: two listeners are named %q", name)
		}
		seen[name] = true
		out = append(out, tcpFlag{name, listen, up})
	}
	return out, nil
}

func parseUpstream(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("%s %q: want an http:// or https:// URL with a host", flag, s)
	}
	return u, nil
}

// checkUpstreams reads --upstream URL, or --upstream stable=URL and
// --upstream canary=URL, with --canary-weight or --revision-header.
func (o *proxyOptions) checkUpstreams() error {
	named := map[string]string{}
	for _, v := range o.upstreams {
		name, u, ok := strings.Cut(v, "=")
		if !ok || strings.Contains(name, "/") {
			if len(o.upstreams) > 1 {
				return usageErrorf("--upstream %q: with two upstreams, name them: --upstream stable=URL --upstream canary=URL", v)
			}
			o.upstream = v
			continue
		}
		if name != "stable" && name != "canary" {
			return usageErrorf("--upstream %q: the upstreams are named stable and canary, got %q", v, name)
		}
		if _, dup := named[name]; dup {
			return usageErrorf("--upstream %s= is given twice", name)
		}
		named[name] = u
	}
	if len(named) > 0 {
		if named["stable"] == "" || named["canary"] == "" {
			return usageErrorf("--upstream: a split needs both stable=URL and canary=URL")
		}
		o.upstream = named["stable"]
		c, err := parseUpstream("--upstream canary=", named["canary"])
		if err != nil {
			return err
		}
		o.canary = c
	}
	w, err := admin.ParseWeight(o.canaryWeight)
	if err != nil {
		return usageErrorf("--canary-weight %q: %v", o.canaryWeight, err)
	}
	o.weight = w
	switch {
	case o.canary == nil && !w.IsZero():
		return usageErrorf("--canary-weight needs a canary: --upstream stable=URL --upstream canary=URL")
	case o.canary != nil && o.revisionHeader != "":
		return usageErrorf("--revision-header and a canary upstream exclude each other: either the proxy splits traffic (stable=, canary=) or a mesh does and marks the canary with the header")
	}
	return nil
}

// newSplit returns the stable/canary split the options ask for, or nil.
func (o *proxyOptions) newSplit(stable *url.URL, routes *match.Table) (*split.Split, error) {
	if o.canary == nil && o.revisionHeader == "" {
		return nil, nil
	}
	return split.New(split.Config{Stable: stable, Canary: o.canary, Weight: o.weight, Header: o.revisionHeader, CUJs: len(routes.CUJs()), Seed: o.canarySeed})
}

// upstreamNote describes where the proxy forwards, for its banner.
func (o *proxyOptions) upstreamNote(upstream *url.URL) string {
	switch {
	case o.canary != nil:
		return fmt.Sprintf("stable %s, canary %s at %s", upstream, o.canary, o.weight)
	case o.revisionHeader != "":
		return fmt.Sprintf("%s (the revision from the %s header)", upstream, o.revisionHeader)
	}
	return upstream.String()
}

func newLogger(w interface{ Write([]byte) (int, error) }, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// proxyStack is a running proxy with its admin API: what `slolab proxy`
// serves and what `slolab lab` embeds.
type proxyStack struct {
	svc      *spec.Service
	routes   *match.Table
	faults   *fault.Registry
	recorder *sli.Recorder
	audit    *admin.Audit
	proxyLn  net.Listener
	adminLn  net.Listener
	tcp      []*tcpListener
	proxy    *proxy.Proxy
	admin    http.Handler
	opts     *proxyOptions
	log      *slog.Logger
	closers  []func() error
	flusher  *sqlite.Flusher // nil without a store
	store    *sqlite.Store   // nil without a store
	node     *cluster.Node   // nil unless the proxy is a member of a fleet
}

// tcpListener is one --tcp dependency.
type tcpListener struct {
	proxy    *tcpproxy.Proxy
	ln       net.Listener
	upstream string
}

func newProxyStack(svc *spec.Service, upstream *url.URL, o *proxyOptions, log *slog.Logger) (*proxyStack, error) {
	routes, err := match.Compile(svc)
	if err != nil {
		return nil, err
	}
	tcps, err := o.tcpListeners()
	if err != nil {
		return nil, err
	}
	var tcpNames []string
	for _, t := range tcps {
		tcpNames = append(tcpNames, t.name)
	}
	var audit *admin.Audit // opened below; the registry reports lapses once it runs
	lapsed := func(l fault.Lapse) {
		if err := audit.Lapsed(l); err != nil {
			log.Error("recording a lapsed lease in the audit log", "err", err)
		}
	}
	faults, err := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: o.maxTTL, Logger: log, TCP: tcpNames, Lapsed: lapsed})
	if err != nil {
		return nil, err
	}
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	var classes *errclass.Classifier
	if o.errorClasses > 0 {
		classes = errclass.New(errclass.Config{PerCUJ: o.errorClasses})
	}
	sp, err := o.newSplit(upstream, routes)
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(proxy.Config{
		Upstream: upstream, Split: sp, Routes: routes, Faults: faults, Recorder: rec,
		TrustForwardedFor: o.trustForwardedFor, FaultHeader: o.faultHeader, Logger: log,
		UpstreamTimeout: o.upstreamTimeout, CUJTimeouts: svc.UpstreamTimeouts(), Classes: classes,
	})
	if err != nil {
		return nil, err
	}
	s := &proxyStack{svc: svc, routes: routes, faults: faults, recorder: rec, proxy: p, opts: o, log: log}
	audit = admin.NewAudit(nil, 1000)
	if o.auditLog != "" && o.auditLog != "-" {
		if audit, err = admin.OpenAudit(o.auditLog, 1000); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, audit.Close)
	}
	s.audit = audit
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec, fault.Collector{Registry: faults}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if classes != nil {
		reg.MustRegister(classes)
	}
	for _, t := range tcps {
		tp, err := tcpproxy.New(tcpproxy.Config{Name: t.name, Upstream: t.upstream, Faults: faults, Logger: log, Classes: classes})
		if err != nil {
			s.close()
			return nil, err
		}
		ln, err := net.Listen("tcp", t.listen)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("tcp listener %s: %w", t.name, err)
		}
		s.closers = append(s.closers, func() error { ln.Close(); return nil })
		s.tcp = append(s.tcp, &tcpListener{proxy: tp, ln: ln, upstream: t.upstream})
		reg.MustRegister(tp)
	}
	acfg := admin.Config{
		Service: svc, Routes: routes, Faults: faults, Recorder: rec, Split: sp, Audit: s.audit, Logger: log,
		Token: o.adminToken, OpenMetrics: o.adminOpenMetrics, Listen: o.adminAddr, AllowHosts: o.adminAllowHosts,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}),
	}
	if o.cluster.listen != "" {
		if err := s.newNode(sp); err != nil {
			s.close()
			return nil, err
		}
		s.closers = append(s.closers, s.node.Close)
		acfg.Faults, acfg.Weights, acfg.Cluster = s.node, s.node, s.node
	}
	s.admin, err = admin.NewHandler(acfg)
	if err != nil {
		s.close()
		return nil, err
	}
	if o.store != "" && o.store != "-" {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: o.store})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("opening the store: %w", err)
		}
		s.closers = append(s.closers, st.Close)
		s.store = st
		fcfg := sqlite.FlusherConfig{Logger: log}
		if classes != nil {
			fcfg.Classes = classes
		}
		s.flusher = sqlite.NewFlusher(st, rec, fcfg)
		// The store remembers the spec, so 'slolab slo' reads it with
		// --store alone, and that a proxy is writing it.
		if err := errors.Join(st.SetSpec(context.Background(), svc), st.Started(context.Background(), time.Now())); err != nil {
			s.close()
			return nil, fmt.Errorf("opening the store: %w", err)
		}
	}
	if s.proxyLn, err = net.Listen("tcp", o.listen); err != nil {
		s.close()
		return nil, fmt.Errorf("proxy listener: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", o.adminAddr); err != nil {
		s.proxyLn.Close()
		s.close()
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return s, nil
}

func (s *proxyStack) close() {
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.log.Warn("closing", "err", err)
		}
	}
}

// run serves until ctx ends (or a listener fails), then drains the proxy,
// removes every fault rule so nothing stays injected, and stops the admin API
// last, so clients can still see and remove rules while requests drain.
func (s *proxyStack) run(ctx context.Context) error {
	defer s.close()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	go s.faults.Run(bg)
	go s.recorder.Run(bg)
	s.join(ctx)
	if s.node != nil {
		go s.node.Run(bg)
	}
	flushCtx, stopFlushing := context.WithCancel(bg)
	flushing := make(chan struct{})
	if s.flusher != nil {
		go func() { s.flusher.Run(flushCtx); close(flushing) }()
	} else {
		close(flushing)
	}

	proxyCtx, stopProxy := context.WithCancel(ctx)
	defer stopProxy()
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	proxyDone := make(chan error, 1)
	adminDone := make(chan error, 1)
	go func() {
		proxyDone <- s.proxy.Serve(proxyCtx, s.proxyLn, proxy.ServeOptions{
			Drain: s.opts.drain, H2C: s.opts.h2c, ReadHeaderTimeout: s.opts.readHeaderTimeout,
			IdleTimeout: s.opts.idleTimeout, MaxConns: s.opts.maxConns,
		})
	}()
	go func() {
		adminDone <- httpserve.Serve(adminCtx, s.adminLn, s.admin, httpserve.Options{Drain: 5 * time.Second})
	}()
	// TCP listeners stop once the HTTP proxy has drained: requests still in
	// flight may need the app's dependencies (the lab's uploads do).
	tcpCtx, stopTCP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTCP()
	var tcpWG sync.WaitGroup
	for _, t := range s.tcp {
		tcpWG.Go(func() {
			if err := t.proxy.Serve(tcpCtx, t.ln); err != nil {
				s.log.Warn("tcp listener stopped", "listener", t.proxy.Name(), "err", err)
			}
		})
	}

	var proxyErr, adminErr error
	adminStopped := false
	select {
	case <-ctx.Done():
		stopProxy()
		proxyErr = <-proxyDone
	case proxyErr = <-proxyDone:
	case adminErr = <-adminDone:
		adminStopped = true
		stopProxy()
		proxyErr = <-proxyDone
	}
	stopTCP()
	tcpWG.Wait()
	stopFlushing()
	<-flushing
	if s.flusher != nil { // requests have drained: store the last, still open interval too
		if err := s.flusher.Final(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("storing the last buckets on shutdown", "err", err)
		} else if err := s.store.Stopped(context.WithoutCancel(ctx), time.Now()); err != nil {
			// Status judges a cleanly stopped store's last minute at once.
			s.log.Warn("recording a clean stop in the store", "err", err)
		}
	}
	if s.node != nil {
		// Leave the fleet first: the rules are the fleet's, and the others
		// keep them; only this member's copies go.
		if err := s.node.Close(); err != nil {
			s.log.Warn("leaving the cluster", "err", err)
		}
	}
	removed, err := admin.RemoveAll(s.faults, s.audit, time.Now())
	for _, st := range removed {
		s.log.Info("fault rule removed on shutdown", "fault", st.Rule.Name, "matched", st.Matched, "injected", st.Injected)
	}
	if err != nil {
		s.log.Error("recording the removals in the audit log", "err", err)
	}
	if !adminStopped {
		stopAdmin()
		adminErr = <-adminDone
	}
	return errors.Join(proxyErr, adminErr)
}

func (s *proxyStack) proxyURL() string { return "http://" + s.proxyLn.Addr().String() }
func (s *proxyStack) adminURL() string { return "http://" + s.adminLn.Addr().String() }

func proxyCmd(e *env) *cobra.Command {
	o := &proxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy --spec FILE --upstream URL | --upstream stable=URL --upstream canary=URL [--listen ADDR] [--admin ADDR]",
		Short: "Proxy an app, measure every CUJ and inject faults at exact rates",
		Long: `Run the slolab proxy in front of an app.

Every request is matched to its CUJ by the spec's routes (net/http pattern
syntax; unmatched requests count as CUJ _other), forwarded faithfully
(streaming bodies, WebSocket upgrades, trailers, keep-alive, h2c), and
measured: status, and latency from reading the request head to the last byte.
An upstream that sends no response head within --upstream-timeout (a CUJ's
upstreamTimeout in the spec overrides it) gets a 504, which counts against
availability, even when the client has given up waiting before.

Fault rules are added through the admin API (or 'slolab fault add') and apply
at exact rates: of the requests a rule matches, request n is injected iff
floor(n·p) > floor((n-1)·p), so every prefix is within one request of the rate.
Every rule holds a lease and stops by itself when nobody renews it. On
shutdown (Ctrl-C, SIGTERM) in-flight requests drain and every rule is removed.

To judge a canary per CUJ, give two upstreams: --upstream stable=URL
--upstream canary=URL. Every CUJ sends exactly --canary-weight of its requests
to the canary (request n iff floor(n·w) > floor((n-1)·w)); the weight changes
at runtime without dropping a connection (PUT /api/v1/canary, or 'slolab
rollout'). When a mesh splits the traffic instead, --revision-header names the
header it sets on the canary's requests or responses. SLIs are then recorded
per revision: the metrics' revision label, /api/v1/counts?window=5m, the
store, and 'slolab canary judge'.

--tcp NAME=LISTEN,UPSTREAM also forwards a TCP dependency (a database, a
cache); point the app at LISTEN. Fault rules with match.tcp: NAME and a tcp
action (latency, jitter, bandwidth, reset, blackhole, slowClose, per
connection or per chunk) degrade it, with the same leases and admin API.

The admin API listens on --admin: /api/v1/faults, /api/v1/cujs, /api/v1/canary,
/api/v1/counts, /api/v1/sli, /metrics, /healthz. Minute buckets per CUJ go to the embedded
store (--store) every 10 seconds and on shutdown, for 'slolab slo
status|report|backtest'.

The admin API answers only requests whose Host is the address it listens
on (localhost too on loopback; any IP on 0.0.0.0), or a name given with
--admin-allow-host, so that no web page can reach it by rebinding its own
DNS name; it refuses changes from other web origins and form or text
bodies. With a token (--admin-token, at least 16 characters) every request
needs it, reads too (--admin-open-metrics leaves /metrics and /healthz
open); a non-loopback admin address requires one. Wrong tokens are logged
with the client's address, and an address that keeps sending them is
refused for a while. Every change goes to the audit log (--audit-log), and
a change it cannot record is refused.

--cluster-listen ADDR makes the proxy one member of a fleet (--cluster-peer
HOST:PORT to join; a name that resolves to several addresses joins them all):
rules, groupings and the canary weight changed through any member apply on
every member, leases lapse everywhere at once, and 'fault ls' shows the
fleet's totals. Gossip is encrypted with --cluster-key-file or
SLOLAB_CLUSTER_KEY ('slolab cluster keygen'); a non-loopback cluster address
requires it. See 'slolab cluster --help'.`,
		Example: `  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000
  slolab proxy --spec chat.yaml --upstream http://127.0.0.1:3000 \
      --tcp postgres=127.0.0.1:15432,127.0.0.1:5432 --tcp redis=127.0.0.1:16379,127.0.0.1:6379
  slolab proxy --spec chat.yaml --upstream stable=http://127.0.0.1:3000 \
      --upstream canary=http://127.0.0.1:3001 --canary-weight 10
  slolab proxy --spec chat.yaml --upstream http://istio-ingress:80 --revision-header X-Canary
  SLOLAB_ADMIN_TOKEN=$(openssl rand -hex 16) slolab proxy --spec chat.yaml --upstream http://app:3000 \
      --listen :8080 --admin 0.0.0.0:9090 --admin-allow-host slolab-admin.chat.svc --admin-open-metrics
  SLOLAB_ADMIN_TOKEN=$(cat admin.token) SLOLAB_CLUSTER_KEY=$(cat cluster.key) slolab proxy \
      --spec chat.yaml --upstream http://app:3000 --listen :8080 --admin 0.0.0.0:9090 \
      --admin-allow-host slolab-admin.shop.svc --admin-open-metrics \
      --cluster-listen 0.0.0.0:7946 --cluster-peer slolab-peers.shop.svc:7946`,
		Args: exactArgs(0, "no arguments (use --spec and --upstream)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			upstream, err := o.check()
			if err != nil {
				return err
			}
			log, err := newLogger(e.stderr, o.logLevel)
			if err != nil {
				return err
			}
			svc, err := loadService(o.specPath)
			if err != nil {
				return err
			}
			stack, err := newProxyStack(svc, upstream, o, log)
			if err != nil {
				return err
			}
			sum := svc.Summary()
			fmt.Fprintf(e.stderr, "slolab proxy: %s → %s (service %s: %d CUJs, %d routes)\n", stack.proxyURL(), o.upstreamNote(upstream), svc.Name, sum.CUJs, sum.Routes)
			fmt.Fprintf(e.stderr, "slolab proxy: admin API %s/api/v1/ · metrics %s/metrics%s%s\n", stack.adminURL(), stack.adminURL(), tokenNote(o.adminToken), storeNote(o.store))
			for _, t := range stack.tcp {
				fmt.Fprintf(e.stderr, "slolab proxy: tcp %s: %s → %s (fault rules select it with match.tcp: %s)\n", t.proxy.Name(), t.ln.Addr(), t.upstream, t.proxy.Name())
			}
			if note := stack.clusterNote(); note != "" {
				fmt.Fprintln(e.stderr, note)
			}
			err = stack.run(e.ctx)
			fmt.Fprintln(e.stderr, "slolab proxy: stopped; no fault rule remains")
			return err
		},
	}
	o.flags(cmd, e)
	return cmd
}

func storeNote(store string) string {
	if store == "" || store == "-" {
		return " · no store"
	}
	return " · store " + store
}

func tokenNote(token string) string {
	if token == "" {
		return " · no admin token (loopback only)"
	}
	return " · admin token required"
}

// adminFlags are the flags of commands that talk to a proxy's admin API.
type adminFlags struct {
	url   string
	token string
}

func (a *adminFlags) add(cmd *cobra.Command, e *env) {
	envFlag(cmd.Flags(), &a.url, "admin", "SLOLAB_ADMIN_URL", "http://127.0.0.1:9090", e.getenv, "the proxy's admin API")
	secretFlag(cmd.Flags(), &a.token, "admin-token", "SLOLAB_ADMIN_TOKEN", e.getenv, "bearer token for changes (default $SLOLAB_ADMIN_TOKEN)")
}

func (a *adminFlags) client() (*admin.Client, error) {
	if !strings.Contains(a.url, "://") {
		a.url = "http://" + a.url
	}
	c, err := admin.NewClient(a.url, a.token)
	if err != nil {
		return nil, usageErrorf("--admin: %v", err)
	}
	return c, nil
}
