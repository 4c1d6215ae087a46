package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/web"
)

func serveCmd(e *env) *cobra.Command {
	var (
		af               adminFlags
		listen, specPath string
		poll             time.Duration
		logLevel         string
	)
	cmd := &cobra.Command{
		Use:   "serve [--admin URL] [--listen ADDR] [--spec FILE]",
		Short: "Serve the dashboard for a running proxy",
		Long: `Serve the web dashboard for a proxy started with 'slolab proxy'.

The dashboard reads the proxy's admin API every --poll (one request per poll,
however many browsers watch) and shows every CUJ with its SLIs, error budget,
burn rates and alerts, charts over time, a panel that simulates SLO states,
the active faults with their leases, and the audit log.

Changes made from the dashboard reach the proxy with --admin-token; when a
token is set the browser must present it too (open the URL printed at start,
or type it in). Without a token, the dashboard serves loopback only.

Without --spec, the CUJs and their SLOs come from the proxy itself, with the
SRE Workbook's alert table; give the spec to use its own alerting.`,
		Example: `  slolab proxy --spec examples/chat.yaml --upstream http://127.0.0.1:3000 &
  slolab serve --admin http://127.0.0.1:9090
  SLOLAB_ADMIN_TOKEN=s3cret slolab serve --admin http://proxy:9090 --listen 0.0.0.0:8070`,
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
			client, err := af.client()
			if err != nil {
				return err
			}
			client.SetActor("dashboard")
			var svc *spec.Service
			if specPath != "" {
				if svc, err = loadService(specPath); err != nil {
					return err
				}
			} else {
				ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
				live, err := client.CUJs(ctx)
				cancel()
				if err != nil {
					return fmt.Errorf("reading the CUJs from the proxy (or give --spec): %w", err)
				}
				if svc, err = serviceFromLive(live); err != nil {
					return err
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("the dashboard cannot listen on %s: %w (choose another with --listen)", listen, err)
			}
			dash, err := web.New(web.Config{Service: svc, Admin: client, Token: af.token, Poll: poll, Logger: log,
				Links: []web.Link{{Name: "admin API", URL: strings.TrimSuffix(af.url, "/") + "/api/v1/cujs"}}})
			if err != nil {
				ln.Close()
				return err
			}
			u := "http://" + ln.Addr().String() + "/"
			if af.token != "" {
				u = tokenURL(u, af.token)
			}
			fmt.Fprintf(e.stderr, "slolab serve: dashboard %s for %s (service %s)\n", u, af.url, svc.Name)
			var wg sync.WaitGroup
			wg.Go(func() { dash.Run(e.ctx) })
			err = httpserve.Serve(e.ctx, ln, dash.Handler(), httpserve.Options{Drain: 2 * time.Second})
			wg.Wait()
			return err
		},
	}
	af.add(cmd, e)
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", "127.0.0.1:8070", "address the dashboard listens on")
	fs.StringVar(&specPath, "spec", "", "the service spec (default: the CUJs the proxy reports)")
	fs.DurationVar(&poll, "poll", 2*time.Second, "how often the dashboard reads the proxy")
	fs.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}

// serviceFromLive rebuilds a spec from what a proxy reports of its CUJs:
// names, owners, routes and SLOs (alerting and policy stay the defaults).
func serviceFromLive(live *admin.CUJsResponse) (*spec.Service, error) {
	svc := &spec.Service{Name: live.Service}
	window := func(s string) (spec.Window, error) {
		if s == "month" {
			return spec.Window{Calendar: s}, nil
		}
		d, err := spec.ParseDuration(s)
		return spec.Window{Rolling: d}, err
	}
	for _, c := range live.CUJs {
		if c.Name == spec.OtherCUJ {
			continue
		}
		sc := &spec.CUJ{Name: c.Name, Owner: c.Owner, Description: c.Description}
		for _, r := range c.Routes {
			sc.Routes = append(sc.Routes, spec.Route{Pattern: r})
		}
		if a := c.Availability; a != nil {
			w, err := window(a.Window)
			if err != nil {
				return nil, fmt.Errorf("the proxy reports CUJ %s's window as %q: %w", c.Name, a.Window, err)
			}
			sc.Availability = &spec.AvailabilitySLO{Objective: a.Objective, Window: w}
		}
		if l := c.Latency; l != nil {
			w, err := window(l.Window)
			if err != nil {
				return nil, fmt.Errorf("the proxy reports CUJ %s's window as %q: %w", c.Name, l.Window, err)
			}
			sc.Latency = &spec.LatencySLO{Threshold: time.Duration(l.Threshold), Objective: l.Objective, Window: w}
		}
		svc.CUJs = append(svc.CUJs, sc)
	}
	return svc, nil
}
