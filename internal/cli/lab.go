package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/demoapp"
	"slolab.dev/slolab/examples"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/load"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/web"
)

// labOptions are the flags of `slolab lab`.
type labOptions struct {
	specPath  string
	upstream  string
	listen    string
	adminAddr string
	dashboard string
	app       string
	rate      string
	seed      uint64
	token     string
	allowHost []string
	poll      time.Duration
	auditLog  string
	logLevel  string
	noLatency bool
	store     string
	history   time.Duration
	// explicit records the address flags the user gave: those fail when
	// taken; defaults fall back to a free port.
	explicit map[string]bool
}

// Default lab addresses: fixed, so the URLs in the README work, with a free
// port instead when one is taken and the flag was not given.
const (
	defaultLabProxy     = "127.0.0.1:8080"
	defaultLabAdmin     = "127.0.0.1:9090"
	defaultLabDashboard = "127.0.0.1:8070"
	defaultLabApp       = "127.0.0.1:3000"
	defaultLabRate      = "20/s"
	// labBlobs names the TCP listener in front of the demo app's blob store:
	// fault rules select it with match.tcp: blobs.
	labBlobs = "blobs"
)

func labCmd(e *env) *cobra.Command {
	o := &labOptions{}
	var history string
	cmd := &cobra.Command{
		Use:   "lab [--spec FILE] [--upstream URL]",
		Short: "Run the whole product at once: a demo app, the proxy, steady load and the dashboard",
		Long: `Start a complete SLO lab in one process and print its URLs.

  the demo app    the chat service of examples/chat.yaml (or your app: --upstream),
                  its uploads kept in a blob store reached over TCP through
                  the proxy's TCP listener "blobs"
  the proxy       measures every CUJ and injects faults at exact rates
  steady load     --rate requests per second with the spec's per-CUJ mix
  a history       --history of synthetic minutes written into the store
                  before anything starts (30 days by default): every CUJ at
                  the load's exact rate with the demo app's baseline
                  latencies and no failures, marked synthetic in the store,
                  'slo status', reports and the dashboard; so every window
                  from 5 minutes to 30 days is full, and budgets, burn rates
                  and alert timings are what production would show
  the SLO engine  on the embedded store the proxy writes (as 'slolab proxy
                  --store' does), judging every SLO every 10 seconds
  the dashboard   CUJs with SLIs over their windows, budgets, burn rates and
                  alerts from the SLO engine, live charts, a panel to
                  simulate SLO states, faults, the experiments and GameDays
                  recorded in the store, and the audit log

With no flags it runs examples/chat.yaml (built into slolab) on fixed
loopback ports: the app through the proxy on 8080, the admin API on 9090,
the dashboard on 8070. A default port that is taken falls back to a free
one; a port you give must be free. Nothing needs installing and nothing
leaves this machine.

The store is a new one in a temporary directory, removed on exit, unless
--store names a file to keep (and to read with 'slolab slo status|report|
backtest --store PATH': the store remembers its spec). The SLO engine reads
the store's whole minutes and the proxy's newest 10-second intervals
together, so SLIs, budgets and alerts appear within seconds of the start. A
store that already holds minutes gets no synthetic history.

The dashboard and the admin API need the admin token, to read and to change
(simulations, stopping faults): the lab uses $SLOLAB_ADMIN_TOKEN or makes
one, and prints a dashboard URL that carries it. The same token works for
'slolab fault' against this lab. The proxy's /metrics and /healthz are open.

Ctrl-C stops the load, removes every fault rule, drains the proxy and stops
the app: nothing stays injected.`,
		Example: `  # the demo: open the dashboard URL it prints
  slolab lab

  # your own app and spec, heavier load (no synthetic history: the lab
  # does not know your app's baseline)
  slolab lab --spec service.yaml --upstream http://127.0.0.1:3000 --rate 100/s

  # no history: every window holds only the lab's own minutes
  slolab lab --history 0

  # from another terminal, against the running lab
  SLOLAB_ADMIN_TOKEN=<printed token> slolab fault add slow-read --cuj read --delay 400ms --rate 5%

  # reset every second connection to the blob store: half the uploads answer 502
  printf 'match: {tcp: blobs}\nrate: 50%%\ntcp: {reset: true}\n' > blobs.yaml
  SLOLAB_ADMIN_TOKEN=<printed token> slolab fault add blobs-reset -f blobs.yaml`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.explicit = map[string]bool{}
			for _, f := range []string{"listen", "admin", "dashboard", "app", "history"} {
				o.explicit[f] = cmd.Flags().Changed(f)
			}
			d, err := spec.ParseDuration(history)
			if err != nil || d < 0 {
				return usageErrorf("--history %q: want a duration such as 30d, or 0 for none", history)
			}
			o.history = d
			l, err := newLab(e.ctx, o, e.stderr)
			if err != nil {
				return err
			}
			l.printURLs(e.stdout)
			err = l.run(e.ctx)
			fmt.Fprintln(e.stderr, "slolab lab: stopped; no fault rule remains")
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&history, "history", spec.FormatDuration(defaultLabHistory), `synthetic history written into the store before the lab starts, so every window is full ("0" for none)`)
	fs.StringVar(&o.specPath, "spec", "", "the service spec (default: examples/chat.yaml, built in)")
	fs.StringVar(&o.upstream, "upstream", "", "your app's base URL (default: run the built-in demo app)")
	fs.StringVar(&o.listen, "listen", defaultLabProxy, "address of the proxy, where the app is reached")
	fs.StringVar(&o.adminAddr, "admin", defaultLabAdmin, "address of the proxy's admin API and /metrics")
	fs.StringVar(&o.dashboard, "dashboard", defaultLabDashboard, "address of the dashboard")
	fs.StringVar(&o.app, "app", defaultLabApp, "address of the demo app (without --upstream)")
	fs.StringVar(&o.rate, "rate", defaultLabRate, `steady load through the proxy, e.g. 50/s ("0" for none)`)
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the load, the app's latencies and the faults' patterns")
	secretFlag(fs, &o.token, "admin-token", "SLOLAB_ADMIN_TOKEN", e.getenv, "admin token for changes (default $SLOLAB_ADMIN_TOKEN, else a new random one)")
	fs.StringArrayVar(&o.allowHost, "allow-host", nil, "a DNS name the dashboard and the admin API are reached by (their Host header), besides their addresses and localhost; repeatable")
	fs.DurationVar(&o.poll, "poll", 2*time.Second, "how often the dashboard reads the proxy")
	fs.StringVar(&o.auditLog, "audit-log", "-", `file the admin API appends every change to ("-": the dashboard's memory only)`)
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.BoolVar(&o.noLatency, "no-latency", false, "the demo app answers at once, without its baseline latencies")
	fs.StringVar(&o.store, "store", "", "embedded store the proxy writes and the SLO engine reads (default: a new one in a temporary directory, removed on exit)")
	return cmd
}

// lab is a running lab: every part, listening, not yet serving.
type lab struct {
	svc       *spec.Service
	o         *labOptions
	log       *slog.Logger
	app       *demoapp.App
	appLn     net.Listener
	blobs     *demoapp.BlobServer // the demo app's dependency, behind the proxy's TCP listener labBlobs
	blobsLn   net.Listener
	upstream  *url.URL
	stack     *proxyStack
	dash      *web.Dashboard
	dashLn    net.Listener
	gen       *load.Generator
	rate      spec.Rate
	fallbacks []string
	stderr    io.Writer
	tempDir   string // the temporary store's directory, removed on exit
	history   labHistory
}

func labService(path string) (*spec.Service, error) {
	if path != "" {
		return loadService(path)
	}
	f, err := spec.Parse(examples.ChatPath, examples.Chat)
	if err != nil {
		return nil, err
	}
	return f.Service()
}

// listenLab listens on addr; a default address that is taken falls back to
// a free port on the same host.
func (l *lab) listen(flag, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil || l.o.explicit[flag] {
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w (choose another address, or 127.0.0.1:0 for any free port)", flag, addr, err)
		}
		return ln, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, fmt.Errorf("--%s %s: %w", flag, addr, err)
	}
	l.fallbacks = append(l.fallbacks, fmt.Sprintf("%s is taken: --%s uses %s instead", addr, flag, ln.Addr()))
	return ln, nil
}

// freeAddr returns addr when it can be listened on, else (for a default) a
// free port: for the proxy stack, which opens its own listeners.
func (l *lab) freeAddr(flag, addr string) (string, error) {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return addr, nil // the stack picks a free port itself: none to lose to another process meanwhile
	}
	ln, err := l.listen(flag, addr)
	if err != nil {
		return "", err
	}
	got := ln.Addr().String()
	ln.Close()
	return got, nil
}

func newLab(ctx context.Context, o *labOptions, stderr io.Writer) (_ *lab, err error) {
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return nil, err
	}
	if o.rate == "" {
		o.rate = "0"
	}
	var rate spec.Rate
	if o.rate != "0" {
		if rate, err = spec.ParseRate(o.rate); err != nil {
			return nil, usageErrorf("--rate %q: %v", o.rate, err)
		}
	}
	if o.poll <= 0 {
		return nil, usageErrorf("--poll must be positive")
	}
	if o.explicit == nil {
		o.explicit = map[string]bool{}
	}
	if o.store == "-" {
		return nil, usageErrorf("--store -: the lab's SLO engine needs a store; leave --store out for a temporary one")
	}
	svc, err := labService(o.specPath)
	if err != nil {
		return nil, err
	}
	if o.token == "" {
		o.token = rand.Text()
	}
	l := &lab{svc: svc, o: o, log: log, rate: rate, stderr: stderr}
	defer func() {
		if err != nil {
			l.closeAll()
		}
	}()

	if o.upstream != "" {
		u, err := url.Parse(o.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageErrorf("--upstream %q: want an http:// or https:// URL with a host", o.upstream)
		}
		l.upstream = u
	} else {
		if l.appLn, err = l.listen("app", o.app); err != nil {
			return nil, err
		}
		l.upstream = &url.URL{Scheme: "http", Host: l.appLn.Addr().String()}
		// The app's blob store, reached through the proxy's TCP listener
		// (started with the proxy stack below), so TCP faults degrade uploads.
		if l.blobsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("the demo app's blob store: %w", err)
		}
		l.blobs = demoapp.NewBlobServer(0)
	}

	po := &proxyOptions{
		specPath: o.specPath, upstream: l.upstream.String(), adminToken: o.token,
		adminAllowHosts: o.allowHost, adminOpenMetrics: true, // the dashboard links to /metrics
		trustForwardedFor: true, maxTTL: 24 * time.Hour, drain: 5 * time.Second,
		auditLog: o.auditLog, faultHeader: proxy.DefaultFaultHeader, h2c: true, logLevel: o.logLevel,
		store: o.store,
	}
	if l.blobsLn != nil {
		po.tcp = []string{labBlobs + "=127.0.0.1:0," + l.blobsLn.Addr().String()}
	}
	if po.store == "" {
		if l.tempDir, err = os.MkdirTemp("", "slolab-lab-"); err != nil {
			return nil, fmt.Errorf("a directory for the lab's store: %w", err)
		}
		po.store = filepath.Join(l.tempDir, "slolab.db")
	}
	if po.listen, err = l.freeAddr("listen", o.listen); err != nil {
		return nil, err
	}
	if po.adminAddr, err = l.freeAddr("admin", o.adminAddr); err != nil {
		return nil, err
	}
	if err := admin.CheckListen(po.adminAddr, po.adminToken); err != nil {
		return nil, usageErrorf("%v", err)
	}
	if l.stack, err = newProxyStack(svc, l.upstream, po, log); err != nil {
		return nil, err
	}
	if l.blobs != nil {
		// The app's own warnings (a 502 for every upload a TCP fault
		// breaks) are what the lab's user asked for: shown at info and
		// debug, not at the default warn.
		appLog := log
		if lvl := new(slog.Level); lvl.UnmarshalText([]byte(o.logLevel)) == nil && *lvl > slog.LevelInfo {
			appLog, _ = newLogger(stderr, "error")
		}
		cfg := demoapp.Config{Seed: o.seed, NoLatency: o.noLatency, Logger: appLog, Blobs: l.stack.tcp[0].ln.Addr().String()}
		if l.app, err = demoapp.New(cfg); err != nil {
			return nil, err
		}
	}
	var plan *load.Plan
	if !rate.IsZero() {
		if plan, err = load.NewPlan(svc, load.PlanConfig{Stages: []load.Stage{{From: rate}}, Seed: o.seed}); err != nil {
			return nil, fmt.Errorf("the lab's load: %w", err)
		}
	}
	switch {
	case o.history == 0:
		l.history.skipped = "--history 0"
	case l.app == nil:
		if o.explicit["history"] {
			return nil, usageErrorf("--history needs the demo app: with --upstream the lab does not know your app's baseline")
		}
		l.history.skipped = "--upstream: the lab does not know your app's baseline"
	case plan == nil:
		l.history.skipped = "no load (--rate 0) to make one from"
	default:
		if l.history, err = l.writeHistory(ctx, plan, o.history, time.Now()); err != nil {
			return nil, err
		}
	}

	client, err := admin.NewClient(l.stack.adminURL(), o.token)
	if err != nil {
		return nil, err
	}
	client.SetActor("dashboard")
	if l.dashLn, err = l.listen("dashboard", o.dashboard); err != nil {
		return nil, err
	}
	flusher := l.stack.flusher
	l.dash, err = web.New(web.Config{
		Service: svc, Admin: client, Token: o.token, Poll: o.poll, Seed: o.seed, Logger: log,
		Listen: l.dashLn.Addr().String(), AllowHosts: o.allowHost,
		Links:   l.links(),
		Records: &web.Records{Store: l.stack.store, Path: l.stack.opts.store},
		Engine: &web.Engine{
			Source:  flusher,
			Instant: func(context.Context, time.Time) (time.Time, error) { return flusher.Instant(), nil },
			Name:    "the embedded store with the proxy's newest intervals",
		},
	})
	if err != nil {
		return nil, err
	}

	if plan != nil {
		// The load picks up where the synthetic history ends: the requests
		// due while the lab was starting go out at once, so no minute
		// after the history holds fewer than the steady rate's share, and
		// windows, budgets and explanations see steady traffic throughout.
		// (Without a history the plan starts when the load does.)
		cfg := load.Config{Plan: plan, Target: l.stack.proxyURL(), Timeout: 10 * time.Second, Drain: time.Second, Start: l.history.synthetic.Until}
		if l.gen, err = load.New(cfg); err != nil {
			return nil, fmt.Errorf("the lab's load: %w", err)
		}
	}
	return l, nil
}

func (l *lab) links() []web.Link {
	var out []web.Link
	if l.app != nil {
		out = append(out, web.Link{Name: "the app (through the proxy)", URL: l.stack.proxyURL() + "/"})
	}
	// The admin API needs the token, which a link cannot carry; its
	// metrics are open.
	return append(out, web.Link{Name: "metrics", URL: l.stack.adminURL() + "/metrics"})
}

func (l *lab) dashboardURL() string { return "http://" + l.dashLn.Addr().String() + "/" }

func (l *lab) printURLs(w io.Writer) {
	for _, f := range l.fallbacks {
		fmt.Fprintf(w, "slolab lab: %s\n", f)
	}
	sum := l.svc.Summary()
	load := "no load"
	if !l.rate.IsZero() {
		load = fmt.Sprintf("load %s, seed %d", l.rate, l.o.seed)
	}
	fmt.Fprintf(w, "slolab lab: service %s, %d CUJs, %s\n\n", l.svc.Name, sum.CUJs, load)
	fmt.Fprintf(w, "  dashboard  %s\n", tokenURL(l.dashboardURL(), l.o.token))
	if l.app != nil {
		fmt.Fprintf(w, "  app        %s/  (the demo app, through the proxy)\n", l.stack.proxyURL())
		t := l.stack.tcp[0]
		fmt.Fprintf(w, "  blobs      %s → %s  (the app's blob store, through the proxy: fault rules with match: {tcp: %s})\n", t.ln.Addr(), t.upstream, labBlobs)
	} else {
		fmt.Fprintf(w, "  proxy      %s → %s\n", l.stack.proxyURL(), l.upstream)
	}
	fmt.Fprintf(w, "  admin API  %s/api/v1/  metrics %s/metrics\n", l.stack.adminURL(), l.stack.adminURL())
	if l.tempDir != "" {
		fmt.Fprintf(w, "  store      %s  (removed on exit; --store PATH keeps one)\n", l.stack.opts.store)
	} else {
		fmt.Fprintf(w, "  store      %s  (slolab slo status --store %s reads it too)\n", l.stack.opts.store, l.stack.opts.store)
	}
	fmt.Fprintf(w, "  history    %s\n", l.history)
	fmt.Fprintf(w, "  token      export SLOLAB_ADMIN_URL=%s SLOLAB_ADMIN_TOKEN=%s SLOLAB_STORE=%s\n\n", l.stack.adminURL(), l.o.token, l.stack.opts.store)
	fmt.Fprintln(w, "Ctrl-C stops everything and removes every fault.")
}

// run serves every part until ctx ends, then stops them in order: the load
// first, then the dashboard and the proxy (which removes every fault rule
// and drains), and the app last, once nothing can reach it.
func (l *lab) run(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(what string, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			mu.Unlock()
		}
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApp()
	// The blob store stops after the app, once no upload can reach it.
	blobsCtx, stopBlobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBlobs()
	appDone := make(chan struct{})
	blobsDone := make(chan struct{})
	if l.app != nil {
		go func() {
			defer close(appDone)
			fail("demo app", runDemoApp(appCtx, l.app, l.appLn))
		}()
		go func() {
			defer close(blobsDone)
			fail("blob store", l.blobs.Serve(blobsCtx, l.blobsLn))
		}()
	} else {
		close(appDone)
		close(blobsDone)
	}
	wg.Go(func() {
		defer stop() // a proxy that fails stops the lab
		fail("proxy", l.stack.run(ctx))
	})
	wg.Go(func() { l.dash.Run(ctx) })
	wg.Go(func() {
		fail("dashboard", httpserve.Serve(ctx, l.dashLn, l.dash.Handler(), httpserve.Options{Drain: 2 * time.Second}))
	})
	if l.gen != nil {
		wg.Go(func() {
			rep, err := l.gen.Run(ctx)
			fail("load", err)
			if rep != nil {
				fmt.Fprintf(l.stderr, "slolab lab: the load sent %d requests in %s: %d answered 2xx, %d 4xx, %d failed (5xx, no answer or not sent)\n",
					rep.Total.Sent, time.Duration(rep.Elapsed).Round(time.Second), rep.Total.Status.C2xx, rep.Total.Status.C4xx, rep.Total.Failed())
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	stopApp()
	<-appDone
	stopBlobs()
	<-blobsDone
	l.removeTemp()
	return errors.Join(errs...)
}

// removeTemp removes the temporary store once the proxy has closed it.
func (l *lab) removeTemp() {
	if l.tempDir == "" {
		return
	}
	if err := os.RemoveAll(l.tempDir); err != nil {
		l.log.Warn("removing the lab's temporary store", "err", err)
	}
}

// closeAll releases what newLab opened when it fails half-way.
func (l *lab) closeAll() {
	if l.appLn != nil {
		l.appLn.Close()
	}
	if l.app != nil {
		l.app.Close() //nolint:errcheck // already failing; the first error is reported
	}
	if l.blobsLn != nil {
		l.blobsLn.Close()
	}
	if l.stack != nil {
		l.stack.proxyLn.Close()
		l.stack.adminLn.Close()
		l.stack.close()
	}
	if l.dashLn != nil {
		l.dashLn.Close()
	}
	l.removeTemp()
}

// tokenURL is a dashboard URL that hands the browser the token.
func tokenURL(base, token string) string {
	return strings.TrimSuffix(base, "/") + "/#token=" + url.QueryEscape(token)
}
