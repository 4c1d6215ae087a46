package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab"
	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
	"slolab.dev/slolab/web"
)

func serveCmd(e *env) *cobra.Command {
	var (
		af         adminFlags
		src        sourceFlags
		listen     string
		allowHosts []string
		poll       time.Duration
		logLevel   string
		exps       []string
		rf         reportFlags
	)
	cmd := &cobra.Command{
		Use:   "serve [--admin URL] [--store PATH | --prometheus URL] [--spec FILE] [--listen ADDR]",
		Short: "Serve the dashboard for a running proxy, with the SLO engine on its store or Prometheus",
		Long: `Serve the web dashboard for a proxy started with 'slolab proxy'.

The CUJ table is the SLO engine's view, as 'slolab slo status' judges it:
every SLO's SLI over its window, the error budget left and how long it
lasts, burn rates over 5m … 3d, and the multiwindow alerts with the window
pair that fired (or that the low-traffic guard holds back). The engine reads
the embedded store the proxy writes (--store, the default, judged at the end
of the last whole minute flushed) or Prometheus (--prometheus, for fleets of
proxies, judged at the last whole minute); --store - shows the SLOs and live
traffic without judging them.

The proxy's admin API (--admin) gives the rest, read every --poll (one
request per poll, however many browsers watch): live traffic and charts, a
panel that simulates SLO states (planned as 'slolab simulate' plans them),
the active faults with their leases, and the audit log.

With the store (--store), the dashboard also lists the experiments and
GameDays recorded there ('slolab experiment run', 'experiment schedule',
'gameday run' with the same --store), newest first, each with its report: a
GameDay's timeline and detection, acknowledgement and recovery times; an
experiment's hypotheses with the values measured and the experiment group
against the control group.

Changes made from the dashboard reach the proxy with --admin-token; when a
token is set the browser must present it too, to read as well as to change
(open the URL printed at start, or type it in). Without a token, the
dashboard serves loopback only. It answers only requests whose Host is the
address it listens on (and localhost), or a name given with --allow-host;
the proxy, reached by name, needs that name in its --admin-allow-host.

Without --spec, the CUJs and their SLOs come from the proxy itself, with the
SRE Workbook's alert table; give the spec to use its own alerting (and its
own PromQL queries with --prometheus).

--experiments FILE runs the experiments of FILE that have a spec.schedule on
it, as 'slolab experiment schedule' does: one at a time, only inside their
allowed windows, reports to --report-dir, and every run or skipped due time
kept in the store (with --store; 'slolab experiment history' and the
dashboard's Experiments and GameDays section list them). Ctrl-C interrupts a run under way and removes its faults.`,
		Example: `  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000 --store chat.db &
  slolab serve --admin http://127.0.0.1:9090 --store chat.db
  slolab serve --spec chat.yaml --prometheus http://prometheus:9090 --prometheus-matchers 'job="chat-proxy"'
  slolab serve --admin http://127.0.0.1:9090 --store chat.db --experiments examples/chat-experiments.yaml
  SLOLAB_ADMIN_TOKEN=... slolab serve --admin http://proxy:9090 --listen 0.0.0.0:8070 --allow-host slolab.example --store -`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(e.stderr, logLevel)
			if err != nil {
				return err
			}
			if poll <= 0 {
				return usageErrorf("--poll must be positive")
			}
			if err := admin.CheckListen(listen, af.token); err != nil {
				return usageErrorf("%v", strings.Replace(err.Error(), "admin API", "dashboard", 1))
			}
			if err := src.check(cmd); err != nil {
				return err
			}
			client, err := af.client()
			if err != nil {
				return err
			}
			client.SetActor("dashboard")
			var svc *spec.Service
			if src.specPath != "" {
				if svc, err = loadService(src.specPath); err != nil {
					return err
				}
			} else {
				ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
				live, err := client.CUJs(ctx)
				cancel()
				if err != nil {
					return fmt.Errorf("reading the CUJs from the proxy (or give --spec): %w", err)
				}
				if svc, err = serviceFromCUJs(live); err != nil {
					return err
				}
			}
			var (
				engine  *web.Engine
				store   *sqlite.Store // the embedded store judged, if any
				records *web.Records
			)
			if src.store != "-" || src.prometheus != "" {
				s, err := src.openFor(e.ctx, svc)
				if err != nil {
					if slolab.KindOf(err) == slolab.NotFound {
						return fmt.Errorf("%w; or --store - to serve without judging the SLOs", err)
					}
					return err
				}
				defer s.Close()
				engine = &web.Engine{Source: s, Instant: s.instant, Name: s.describe}
				store = s.store
				if store != nil {
					records = &web.Records{Store: store, Path: src.store}
				}
			}
			sched, err := serveSchedule(e, &af, exps, &rf, store)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("the dashboard cannot listen on %s: %w (choose another with --listen)", listen, err)
			}
			var links []web.Link
			if af.token == "" { // a link cannot carry the token
				links = []web.Link{{Name: "admin API", URL: strings.TrimSuffix(af.url, "/") + "/api/v1/cujs"}}
			}
			dash, err := web.New(web.Config{Service: svc, Admin: client, Engine: engine, Records: records, Token: af.token, Poll: poll, Logger: log,
				Listen: ln.Addr().String(), AllowHosts: allowHosts, Links: links})
			if err != nil {
				ln.Close()
				return err
			}
			u := "http://" + ln.Addr().String() + "/"
			if af.token != "" {
				u = tokenURL(u, af.token)
			}
			judged := "the SLOs not judged (--store -)"
			if engine != nil {
				judged = "SLOs judged from " + engine.Name
			}
			fmt.Fprintf(e.stderr, "slolab serve: dashboard %s for %s (service %s, %s)\n", u, af.url, svc.Name, judged)
			var wg sync.WaitGroup
			wg.Go(func() { dash.Run(e.ctx) })
			if sched != nil {
				wg.Go(func() {
					if err := sched.Run(e.ctx); err != nil && e.ctx.Err() == nil {
						log.Error("the experiment schedule stopped", "err", err)
					}
				})
			}
			err = httpserve.Serve(e.ctx, ln, dash.Handler(), httpserve.Options{Drain: 2 * time.Second})
			wg.Wait()
			return err
		},
	}
	af.add(cmd, e)
	fs := cmd.Flags()
	fs.StringVar(&src.specPath, "spec", "", "the service spec (default: the CUJs the proxy reports)")
	src.addSources(cmd, e, `the embedded store 'slolab proxy --store' writes, for the SLO engine ("-" for none)`)
	fs.StringVar(&listen, "listen", "127.0.0.1:8070", "address the dashboard listens on")
	fs.StringArrayVar(&allowHosts, "allow-host", nil, "a DNS name the dashboard is reached by (its Host header), besides its address and localhost; repeatable; * allows any (behind a proxy that checks Host)")
	fs.DurationVar(&poll, "poll", 2*time.Second, "how often the dashboard reads the proxy")
	fs.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.StringArrayVar(&exps, "experiments", nil, "run the scheduled experiments of this spec file (repeatable)")
	rf.add(cmd)
	return cmd
}

// serveSchedule starts nothing yet: it loads the experiments of --experiments,
// prints their next due times and returns their scheduler (nil without
// --experiments). Runs are kept in the embedded store the dashboard judges,
// if it judges one.
func serveSchedule(e *env, af *adminFlags, files []string, rf *reportFlags, st *sqlite.Store) (*experiment.Scheduler, error) {
	if len(files) == 0 {
		return nil, nil
	}
	if err := rf.check(); err != nil {
		return nil, err
	}
	set, err := experiment.Load(files, loadSpecFile)
	if err != nil {
		return nil, err
	}
	client, err := af.client() // its own: the scheduler names each run as the actor in the audit log
	if err != nil {
		return nil, err
	}
	s, err := newExperimentScheduler(e, client, set, rf, &st, func(en experiment.Entry) {
		fmt.Fprintf(e.stderr, "slolab serve: experiment %s due %s: %s: %s\n", en.Experiment, en.Due.Local().Format("2006-01-02 15:04"), en.Verdict, en.Reason)
	})
	if err != nil {
		return nil, usageErrorf("--experiments: %v", err)
	}
	kept := "kept in the store"
	if st == nil {
		kept = "not kept: serve from --store to keep a record"
	}
	fmt.Fprintf(e.stderr, "slolab serve: scheduled experiments (runs %s):\n", kept)
	return s, printUpcoming(e.stderr, set, s)
}
