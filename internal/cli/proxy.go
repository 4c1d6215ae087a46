package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// proxyOptions are the flags of `slolab proxy`, also used by `slolab lab`.
type proxyOptions struct {
	specPath          string
	listen            string
	upstream          string
	adminAddr         string
	adminToken        string
	trustForwardedFor bool
	maxTTL            time.Duration
	drain             time.Duration
	auditLog          string
	faultHeader       string
	h2c               bool
	logLevel          string
	store             string
}

func (o *proxyOptions) flags(cmd *cobra.Command, e *env) {
	fs := cmd.Flags()
	fs.StringVar(&o.specPath, "spec", "", "the service spec (YAML, JSON or CUE) listing CUJs and routes (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address the proxy listens on")
	fs.StringVar(&o.upstream, "upstream", "", "the app's base URL, e.g. http://127.0.0.1:3000 (required)")
	fs.StringVar(&o.adminAddr, "admin", "127.0.0.1:9090", "address of the admin API, /metrics and /healthz")
	fs.StringVar(&o.adminToken, "admin-token", e.getenv("SLOLAB_ADMIN_TOKEN"), "bearer token required for admin mutations (default $SLOLAB_ADMIN_TOKEN); required beyond loopback")
	fs.BoolVar(&o.trustForwardedFor, "trust-forwarded-for", false, "attribute requests to the left-most X-Forwarded-For address (behind a load balancer or a load generator)")
	fs.DurationVar(&o.maxTTL, "max-ttl", 24*time.Hour, "the longest lease a fault rule may hold")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "how long in-flight requests may finish on shutdown")
	fs.StringVar(&o.auditLog, "audit-log", "slolab-audit.jsonl", `file the admin API appends every change to as JSON lines ("-" for none)`)
	fs.StringVar(&o.faultHeader, "fault-header", proxy.DefaultFaultHeader, `response header naming the faults that changed a response ("-" for none)`)
	fs.BoolVar(&o.h2c, "h2c", true, "also accept HTTP/2 without TLS (prior knowledge) from clients")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.store, "store", DefaultStore, `embedded store the proxy writes minute buckets to every 10s and on shutdown, for 'slolab slo' ("-" for none)`)
}

func (o *proxyOptions) check() (*url.URL, error) {
	if o.specPath == "" {
		return nil, usageErrorf("--spec is required: the service spec listing CUJs and routes")
	}
	if o.upstream == "" {
		return nil, usageErrorf("--upstream is required: the app's base URL, e.g. http://127.0.0.1:3000")
	}
	u, err := url.Parse(o.upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--upstream %q: want an http:// or https:// URL with a host", o.upstream)
	}
	if err := admin.CheckListen(o.adminAddr, o.adminToken); err != nil {
		return nil, usageErrorf("%v", err)
	}
	if o.maxTTL <= 0 {
		return nil, usageErrorf("--max-ttl must be positive")
	}
	return u, nil
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
	proxy    http.Handler
	admin    http.Handler
	opts     *proxyOptions
	log      *slog.Logger
	closers  []func() error
	flusher  *sqlite.Flusher // nil without a store
}

func newProxyStack(svc *spec.Service, upstream *url.URL, o *proxyOptions, log *slog.Logger) (*proxyStack, error) {
	routes, err := match.Compile(svc)
	if err != nil {
		return nil, err
	}
	faults, err := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: o.maxTTL, Logger: log})
	if err != nil {
		return nil, err
	}
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	p, err := proxy.New(proxy.Config{
		Upstream: upstream, Routes: routes, Faults: faults, Recorder: rec,
		TrustForwardedFor: o.trustForwardedFor, FaultHeader: o.faultHeader, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	s := &proxyStack{svc: svc, routes: routes, faults: faults, recorder: rec, proxy: p, opts: o, log: log}
	var auditW *os.File
	if o.auditLog != "" && o.auditLog != "-" {
		auditW, err = os.OpenFile(o.auditLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("opening the audit log: %w", err)
		}
		s.closers = append(s.closers, auditW.Close)
	}
	if auditW != nil {
		s.audit = admin.NewAudit(auditW, 1000)
	} else {
		s.audit = admin.NewAudit(nil, 1000)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec, fault.Collector{Registry: faults}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.admin = admin.NewHandler(admin.Config{
		Service: svc, Routes: routes, Faults: faults, Recorder: rec, Audit: s.audit, Token: o.adminToken, Logger: log,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}),
	})
	if o.store != "" && o.store != "-" {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Path: o.store})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("opening the store: %w", err)
		}
		s.closers = append(s.closers, st.Close)
		s.flusher = sqlite.NewFlusher(st, rec, sqlite.FlusherConfig{Logger: log})
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
		proxyDone <- httpserve.Serve(proxyCtx, s.proxyLn, s.proxy, httpserve.Options{Drain: s.opts.drain, H2C: s.opts.h2c})
	}()
	go func() {
		adminDone <- httpserve.Serve(adminCtx, s.adminLn, s.admin, httpserve.Options{Drain: 5 * time.Second})
	}()

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
	stopFlushing()
	<-flushing
	if s.flusher != nil { // requests have drained: store the last, still open interval too
		if err := s.flusher.Final(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("storing the last buckets on shutdown", "err", err)
		}
	}
	for _, st := range s.faults.DeleteAll() {
		s.log.Info("fault rule removed on shutdown", "fault", st.Rule.Name, "matched", st.Matched, "injected", st.Injected)
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
		Use:   "proxy --spec FILE --upstream URL [--listen ADDR] [--admin ADDR]",
		Short: "Proxy an app, measure every CUJ and inject faults at exact rates",
		Long: `Run the slolab proxy in front of an app.

Every request is matched to its CUJ by the spec's routes (net/http pattern
syntax; unmatched requests count as CUJ _other), forwarded faithfully
(streaming bodies, WebSocket upgrades, trailers, keep-alive, h2c), and
measured: status, and latency from reading the request head to the last byte.

Fault rules are added through the admin API (or 'slolab fault add') and apply
at exact rates: of the requests a rule matches, request n is injected iff
floor(n·p) > floor((n-1)·p), so every prefix is within one request of the rate.
Every rule holds a lease and stops by itself when nobody renews it. On
shutdown (Ctrl-C, SIGTERM) in-flight requests drain and every rule is removed.

The admin API listens on --admin: /api/v1/faults, /api/v1/cujs, /metrics,
/healthz. Minute buckets per CUJ go to the embedded store (--store) every 10
seconds and on shutdown, for 'slolab slo status|report|backtest'. Mutations need the bearer token when one is set; a non-loopback
admin address requires one.`,
		Example: `  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000
  SLOLAB_ADMIN_TOKEN=s3cret slolab proxy --spec chat.yaml --upstream http://app:3000 \
      --listen :8080 --admin 0.0.0.0:9090`,
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
			fmt.Fprintf(e.stderr, "slolab proxy: %s → %s (service %s: %d CUJs, %d routes)\n", stack.proxyURL(), upstream, svc.Name, sum.CUJs, sum.Routes)
			fmt.Fprintf(e.stderr, "slolab proxy: admin API %s/api/v1/ · metrics %s/metrics%s%s\n", stack.adminURL(), stack.adminURL(), tokenNote(o.adminToken), storeNote(o.store))
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
	return " · admin token required for changes"
}

// adminFlags are the flags of commands that talk to a proxy's admin API.
type adminFlags struct {
	url   string
	token string
}

func (a *adminFlags) add(cmd *cobra.Command, e *env) {
	def := e.getenv("SLOLAB_ADMIN_URL")
	if def == "" {
		def = "http://127.0.0.1:9090"
	}
	cmd.Flags().StringVar(&a.url, "admin", def, "the proxy's admin API (default $SLOLAB_ADMIN_URL or http://127.0.0.1:9090)")
	cmd.Flags().StringVar(&a.token, "admin-token", e.getenv("SLOLAB_ADMIN_TOKEN"), "bearer token for changes (default $SLOLAB_ADMIN_TOKEN)")
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
