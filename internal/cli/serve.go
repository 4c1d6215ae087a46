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
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/web"
)

func serveCmd(e *env) *cobra.Command {
	var (
		af       adminFlags
		src      sourceFlags
		listen   string
		poll     time.Duration
		logLevel string
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
token is set the browser must present it too (open the URL printed at start,
or type it in). Without a token, the dashboard serves loopback only.

Without --spec, the CUJs and their SLOs come from the proxy itself, with the
SRE Workbook's alert table; give the spec to use its own alerting (and its
own PromQL queries with --prometheus).`,
		Example: `  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000 --store chat.db &
  slolab serve --admin http://127.0.0.1:9090 --store chat.db
  slolab serve --spec chat.yaml --prometheus http://prometheus:9090 --prometheus-matchers 'job="chat-proxy"'
  SLOLAB_ADMIN_TOKEN=s3cret slolab serve --admin http://proxy:9090 --listen 0.0.0.0:8070 --store -`,
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
				if s.store != nil {
					records = &web.Records{Store: s.store, Path: src.store}
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("the dashboard cannot listen on %s: %w (choose another with --listen)", listen, err)
			}
			dash, err := web.New(web.Config{Service: svc, Admin: client, Engine: engine, Records: records, Token: af.token, Poll: poll, Logger: log,
				Links: []web.Link{{Name: "admin API", URL: strings.TrimSuffix(af.url, "/") + "/api/v1/cujs"}}})
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
			err = httpserve.Serve(e.ctx, ln, dash.Handler(), httpserve.Options{Drain: 2 * time.Second})
			wg.Wait()
			return err
		},
	}
	af.add(cmd, e)
	fs := cmd.Flags()
	fs.StringVar(&src.specPath, "spec", "", "the service spec (default: the CUJs the proxy reports)")
	src.addSources(cmd, `the embedded store 'slolab proxy --store' writes, for the SLO engine ("-" for none)`)
	fs.StringVar(&listen, "listen", "127.0.0.1:8070", "address the dashboard listens on")
	fs.DurationVar(&poll, "poll", 2*time.Second, "how often the dashboard reads the proxy")
	fs.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}
