package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab"
	"slolab.dev/slolab/proxy/admin"
	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
)

func simulateCmd(e *env) *cobra.Command {
	var (
		a                                     adminFlags
		src                                   sourceFlags
		specPath                              string
		availability, burnRate, latency, alrt string
		baseline, forDur, output              string
		lease, every                          time.Duration
		seed                                  uint64
	)
	cmd := &cobra.Command{
		Use:   "simulate CUJ --admin URL (--availability A | --burn-rate B | --latency T@P | --alert page|ticket)",
		Short: "Put a CUJ in an exact SLO state on a running proxy, so people can feel it",
		Long: `Put one CUJ of a running 'slolab proxy' in an exact SLO state, print intended
against realised every few seconds, and remove everything on exit (Ctrl-C or
--for). Give exactly one state:

  --availability 99.9%   exactly 1 in 1,000 of the CUJ's requests fail (503)
  --burn-rate 14.4       the CUJ's availability budget burns 14.4 times as
                         fast as its SLO allows: 1.44% fail at 99.9%
  --latency 1s@99%       exactly 1% of the CUJ's requests end above 1s: they
                         are delayed by the threshold plus a tenth (the margin
                         keeps them clearly past it; any positive margin
                         would already make the count exact)
  --alert page|ticket    the state that just trips that alert of the CUJ's
                         availability SLO (the severity's quickest rule, or a
                         window pair such as 6h/30m); with traffic measured,
                         one extra failure per short window keeps every window
                         over the threshold instead of about half of them

Rates are exact: of the requests a rule matches, request n fails iff
floor(n·p) > floor((n−1)·p). --baseline-latency adds a delay to every other
CUJ, to mimic production; for each CUJ it is capped at 80% of that CUJ's
latency threshold, so the baseline alone never makes a request slow. It must
have a maximum: a fixed delay, uniform(a, b) or a percentile table.

Rules hold a short lease (--lease) that simulate renews; if simulate dies,
they lapse by themselves. The CUJ's SLOs come from --spec, or else from the
proxy (which then also decides the alert windows: the SRE Workbook's).

How long the budget lasts and when each alert fires are computed from what
the store (--store, default $SLOLAB_STORE, which 'slolab lab' prints) or
Prometheus (--prometheus) holds just before the rules go in: how much history
each window covers, what it holds, the CUJ's traffic over the last hour. A
young store's windows hold only its few minutes, so alerts fire sooner than
on a month of history, and the explanation says so. Without a source the
figures assume a clean, full history.

On a fleet of proxies (slolab proxy --cluster-listen), the rules go to every
member and the injected counts are the fleet's; --prometheus also reads the
realised windows from Prometheus, every member's requests over whole minutes.`,
		Example: `  slolab simulate update --availability 99.9%
  slolab simulate update --burn-rate 14.4 --for 1h
  slolab simulate read --latency 300ms@99% --baseline-latency "p50=80ms p99=250ms"
  slolab simulate update --alert page --admin http://127.0.0.1:9090 -o json`,
		Args: exactArgs(1, "the CUJ to degrade"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var w slo.Want
			fs := cmd.Flags()
			set := 0
			if fs.Changed("availability") {
				set++
				r, err := spec.ParsePercent(availability)
				if err != nil {
					return usageErrorf("--availability: %v", err)
				}
				w.Availability = &r
			}
			if fs.Changed("burn-rate") {
				set++
				r, err := spec.ParseRatio(burnRate)
				if err != nil || strings.HasSuffix(burnRate, "%") || r.IsZero() {
					return usageErrorf("--burn-rate %q: want a positive factor such as 14.4", burnRate)
				}
				w.BurnRate = &r
			}
			if fs.Changed("latency") {
				set++
				l, err := slo.ParseLatencyTarget(latency)
				if err != nil {
					return usageErrorf("--latency: %v", err)
				}
				w.Latency = &l
			}
			if fs.Changed("alert") {
				set++
				w.Alert = alrt
			}
			if set != 1 {
				return usageErrorf("give exactly one of --availability, --burn-rate, --latency and --alert\nRun 'slolab simulate --help' for usage.")
			}
			if baseline != "" {
				d, err := spec.ParseDelay(baseline)
				if err != nil {
					return usageErrorf("--baseline-latency: %v", err)
				}
				w.Baseline = d
			}
			var duration time.Duration
			if forDur != "" {
				d, err := spec.ParseDuration(forDur)
				if err != nil || d <= 0 {
					return usageErrorf("--for %q: want a duration such as 30m", forDur)
				}
				duration = d
			}
			if lease < 3*time.Second || every <= 0 {
				return usageErrorf("--lease must be at least 3s and --every positive")
			}
			w.Seed, w.TTL = seed, lease
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := src.check(cmd); err != nil {
				return err
			}
			c.SetActor("slolab simulate")
			sim := &simulation{api: c, out: e.stdout, log: e.stderr, json: output == "json", lease: lease, every: every, duration: duration,
				src: &src, explicitStore: cmd.Flags().Changed("store"), promURL: src.prometheus}
			if src.prometheus != "" {
				if specPath == "" {
					return usageErrorf("--prometheus needs --spec: the CUJs' queries and latency thresholds")
				}
				svc, err := loadService(specPath)
				if err != nil {
					return err
				}
				if sim.prom, err = promql.New(promql.Config{URL: src.prometheus, Service: svc, Matchers: src.matchers}); err != nil {
					return usageErrorf("--prometheus: %v", err)
				}
			}
			return sim.run(e.ctx, args[0], specPath, w)
		},
	}
	a.add(cmd, e)
	src.addSources(cmd, e, "the store the proxy writes, to compute the figures from what it holds")
	fs := cmd.Flags()
	fs.StringVar(&specPath, "spec", "", "the service spec (default: the CUJs' SLOs as the proxy reports them)")
	fs.StringVar(&availability, "availability", "", "the share of the CUJ's requests that succeed, e.g. 99.9%")
	fs.StringVar(&burnRate, "burn-rate", "", "how many times as fast as allowed the availability budget burns, e.g. 14.4")
	fs.StringVar(&latency, "latency", "", "THRESHOLD@OBJECTIVE: exactly 1 − OBJECTIVE of requests end above THRESHOLD, e.g. 1s@99%")
	fs.StringVar(&alrt, "alert", "", "page, ticket, or a window pair such as 6h/30m: the state that just trips that alert")
	fs.StringVar(&baseline, "baseline-latency", "", `delay every other CUJ, e.g. 200ms or "p50=120ms p99=400ms"`)
	fs.StringVar(&forDur, "for", "", "stop after this long (default: until Ctrl-C)")
	fs.DurationVar(&lease, "lease", 30*time.Second, "each rule's lease; simulate renews it at a third of that")
	fs.DurationVar(&every, "every", 5*time.Second, "how often to print intended against realised")
	fs.Uint64Var(&seed, "seed", 1, "offsets the exact-rate pattern so it does not align with periodic traffic (0: none)")
	outputFlag(fs, &output)
	return cmd
}

// simulation installs a plan, keeps its leases, reports, and cleans up.
type simulation struct {
	api      *admin.Client
	out, log io.Writer
	json     bool
	lease    time.Duration
	every    time.Duration
	duration time.Duration
	// src is where the figures are measured from; explicitStore: --store
	// was given, so a missing store is an error rather than a note.
	src           *sourceFlags
	explicitStore bool
	prom          *promql.Source // the fleet's realised windows, when set
	promURL       string
}

// serviceFromCUJs rebuilds a service from what a proxy reports of its CUJs:
// names, owners, routes and SLOs (alerting and policy stay the defaults).
func serviceFromCUJs(resp *admin.CUJsResponse) (*spec.Service, error) {
	svc := &spec.Service{Name: resp.Service}
	window := func(s string) (spec.Window, error) {
		if s == "month" {
			return spec.Window{Calendar: "month"}, nil
		}
		d, err := spec.ParseDuration(s)
		return spec.Window{Rolling: d}, err
	}
	for _, c := range resp.CUJs {
		if c.Name == spec.OtherCUJ {
			continue
		}
		cuj := &spec.CUJ{Name: c.Name, Owner: c.Owner, Description: c.Description}
		for _, r := range c.Routes {
			cuj.Routes = append(cuj.Routes, spec.Route{Pattern: r})
		}
		if a := c.Availability; a != nil {
			w, err := window(a.Window)
			if err != nil {
				return nil, fmt.Errorf("CUJ %s: availability window %q: %w", c.Name, a.Window, err)
			}
			cuj.Availability = &spec.AvailabilitySLO{Objective: a.Objective, Window: w}
		}
		if l := c.Latency; l != nil {
			w, err := window(l.Window)
			if err != nil {
				return nil, fmt.Errorf("CUJ %s: latency window %q: %w", c.Name, l.Window, err)
			}
			cuj.Latency = &spec.LatencySLO{Threshold: time.Duration(l.Threshold), Objective: l.Objective, Window: w}
		}
		svc.CUJs = append(svc.CUJs, cuj)
	}
	return svc, nil
}

func cujStatus(resp *admin.CUJsResponse, name string) *admin.CUJStatus {
	for i := range resp.CUJs {
		if resp.CUJs[i].Name == name {
			return &resp.CUJs[i]
		}
	}
	return nil
}

func (s *simulation) run(ctx context.Context, cuj, specPath string, w slo.Want) error {
	live, err := s.api.CUJs(ctx)
	if err != nil {
		return err
	}
	var svc *spec.Service
	if specPath != "" {
		if svc, err = loadService(specPath); err != nil {
			return err
		}
		if svc.Name != live.Service {
			return usageErrorf("--spec describes service %s but the proxy at --admin serves %s", svc.Name, live.Service)
		}
	} else if svc, err = serviceFromCUJs(live); err != nil {
		return err
	}
	state, notes, err := s.judge(ctx, svc)
	if err != nil {
		return err
	}
	if c := cujStatus(live, cuj); c != nil && w.Alert != "" {
		w.RequestsPerMinute = c.RequestsPerMinute() // unless the store's last hour knows better (slo.PlanFrom)
	}
	var judged *slo.Status
	if state != nil {
		judged = state.status
	}
	plan, err := slo.PlanFrom(svc, cuj, w, judged)
	if err != nil {
		return slolab.Errorf(slolab.Invalid, "%v", err)
	}
	plan.Notes = append(plan.Notes, notes...)
	if n := s.endsBeforeItFires(plan); n != "" {
		plan.Notes = append(plan.Notes, n)
	}
	if state != nil && plan.Intended.Measured == nil && plan.Intended.BurnRate != "" && plan.Intended.BurnRate != "0" {
		plan.Notes = append(plan.Notes, fmt.Sprintf("%s holds no %s request in the last hour to measure from: the figures assume a clean, full history", state.describe, plan.CUJ))
	}
	if err := s.announce(plan); err != nil {
		return err
	}
	s.fleetNote(ctx)
	installed, err := s.install(ctx, plan)
	defer s.remove(installed)
	if err != nil {
		return err
	}
	start := time.Now()
	var stop <-chan time.Time
	if s.duration > 0 {
		stop = time.After(s.duration)
	}
	renew := time.NewTicker(s.lease / 3)
	defer renew.Stop()
	report := time.NewTicker(s.every)
	defer report.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stop:
			fmt.Fprintf(s.log, "slolab simulate: %s passed\n", rpt.Span(s.duration))
			return nil
		case <-renew.C:
			s.renew(ctx, plan)
		case <-report.C:
			resp, err := s.api.CUJs(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fmt.Fprintf(s.log, "slolab simulate: %v\n", err)
				continue
			}
			if err := s.realisedWindows(ctx, resp, plan.CUJ); err != nil {
				fmt.Fprintf(s.log, "slolab simulate: %v\n", err)
				continue
			}
			if err := s.print(plan, resp, time.Since(start)); err != nil {
				return err
			}
		}
	}
}

// measuredState is the SLO engine's status of the service, as the store or
// Prometheus holds it just before the simulation starts.
type measuredState struct {
	status   *slo.Status
	describe string // the source, for notes
}

// judge evaluates the service from the store or Prometheus, for the plan's
// figures. The store at the default path is read only if it is there and
// holds this service, and only for a while: a store that cannot be read then
// gives a note that the figures assume a clean, full history (and no
// status), and the simulation goes ahead. A source given explicitly must
// answer.
func (s *simulation) judge(ctx context.Context, svc *spec.Service) (*measuredState, []string, error) {
	if s.src == nil {
		return nil, nil, nil
	}
	explicit := s.src.prometheus != "" || s.explicitStore
	if !explicit {
		if _, err := os.Stat(s.src.store); err != nil {
			return nil, []string{fmt.Sprintf("no store at %s to measure from: the figures assume a clean, full history (give --store or --prometheus)", s.src.store)}, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	j, err := s.judgeFrom(ctx, svc, explicit)
	if err != nil && !explicit {
		return nil, []string{fmt.Sprintf("the store at %s could not be read (%v): the figures assume a clean, full history", s.src.store, err)}, nil
	}
	return j, nil, err
}

func (s *simulation) judgeFrom(ctx context.Context, svc *spec.Service, explicit bool) (*measuredState, error) {
	src, err := s.src.openFor(ctx, svc)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if src.store != nil && !explicit {
		// The default path may hold another service's store.
		if recorded, _, err := src.store.Spec(ctx); err != nil || recorded.Name != svc.Name {
			return nil, fmt.Errorf("it was not written for service %s", svc.Name)
		}
	}
	at, err := src.instant(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	st, err := slo.Evaluate(ctx, svc, src, at)
	if err != nil {
		return nil, err
	}
	return &measuredState{status: st, describe: src.describe}, nil
}

// endsBeforeItFires says so when --for stops the simulation before its
// first alert can fire: the alert's long window must hold the simulation
// whole at the instant it is judged, which comes after the predicted time
// (status judges whole minutes, the dashboard 10-second intervals), so a
// --for of exactly that time never shows it.
func (s *simulation) endsBeforeItFires(p *slo.Plan) string {
	if s.duration <= 0 {
		return ""
	}
	var first *slo.PlannedAlert
	for i := range p.Intended.Alerts {
		if a := &p.Intended.Alerts[i]; a.FiresAfter != nil && (first == nil || *a.FiresAfter < *first.FiresAfter) {
			first = a
		}
	}
	if first == nil || time.Duration(*first.FiresAfter) < s.duration {
		return ""
	}
	return fmt.Sprintf("--for %s ends the simulation before the %s alert (%s ≥ %s) can fire (after %s): give a longer --for, or none, to watch it fire",
		spec.FormatDuration(s.duration), first.Severity, first.Pair, first.Factor, rpt.Span(time.Duration(*first.FiresAfter)))
}

func (s *simulation) announce(p *slo.Plan) error {
	if s.json {
		return writeJSON(s.out, struct {
			Plan *slo.Plan `json:"plan"`
		}{p})
	}
	fmt.Fprintln(s.out, p.Explanation)
	for _, n := range p.Notes {
		fmt.Fprintf(s.out, "  note: %s\n", n)
	}
	for _, r := range p.Rules {
		fmt.Fprintf(s.out, "  rule %s: %s on %s at %s\n", r.Name, r.Actions(), r.Match, r.Rate.Percent())
	}
	return nil
}

// install puts every rule of the plan; on a failure it reports what it had
// installed so the caller removes it.
func (s *simulation) install(ctx context.Context, p *slo.Plan) ([]string, error) {
	var names []string
	for _, r := range p.Rules {
		if _, err := s.api.PutFault(ctx, r); err != nil {
			return names, fmt.Errorf("installing rule %s: %w", r.Name, err)
		}
		names = append(names, r.Name)
	}
	return names, nil
}

// renew extends every lease; a lease that lapsed (the machine slept, the
// proxy restarted) is put back.
func (s *simulation) renew(ctx context.Context, p *slo.Plan) {
	for _, r := range p.Rules {
		_, err := s.api.RenewFault(ctx, r.Name, s.lease)
		if k := slolab.KindOf(err); k == slolab.Conflict || k == slolab.NotFound {
			fmt.Fprintf(s.log, "slolab simulate: rule %s had lapsed; putting it back\n", r.Name)
			_, err = s.api.PutFault(ctx, r)
		}
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(s.log, "slolab simulate: renewing %s: %v\n", r.Name, err)
		}
	}
}

// remove deletes the installed rules, even after Ctrl-C.
func (s *simulation) remove(names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var failed []string
	for _, n := range names {
		st, err := s.api.DeleteFault(ctx, n)
		switch {
		case err == nil:
			fmt.Fprintf(s.log, "slolab simulate: removed %s (%s of %s requests injected)\n", n, rpt.Count(st.Injected), rpt.Count(st.Matched))
		case slolab.KindOf(err) == slolab.NotFound:
		default:
			failed = append(failed, fmt.Sprintf("%s (%v)", n, err))
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(s.log, "slolab simulate: could not remove %s; their leases lapse within %s\n", strings.Join(failed, ", "), rpt.Span(s.lease))
	}
}

// Realised is one report of intended against realised.
type Realised struct {
	Elapsed  spec.Duration   `json:"elapsed"`
	CUJ      string          `json:"cuj"`
	Kind     slo.Kind        `json:"kind"`
	Intended string          `json:"intended"` // share of requests made bad
	Windows  []RealisedShare `json:"windows"`
	Matched  uint64          `json:"matched"`
	Injected uint64          `json:"injected"`
}

// RealisedShare is what one live window saw.
type RealisedShare struct {
	Window   spec.Duration `json:"window"`
	Span     spec.Duration `json:"span"`
	Total    uint64        `json:"total"`
	Bad      uint64        `json:"bad"`
	Percent  *float64      `json:"percent"`
	BurnRate *float64      `json:"burnRate,omitempty"`
}

// short reports whether the proxy has held a live window for less than its
// length (it started recently): by more than its last, open interval (up to
// 10s) and a tenth of the window, so a full window read mid-interval is not.
func short(w RealisedShare) bool {
	gap := time.Duration(w.Window - w.Span)
	return w.Span > 0 && gap > 10*time.Second && gap > time.Duration(w.Window)/10
}

func (s *simulation) print(p *slo.Plan, resp *admin.CUJsResponse, elapsed time.Duration) error {
	c := cujStatus(resp, p.CUJ)
	if c == nil {
		return fmt.Errorf("the proxy no longer reports CUJ %s", p.CUJ)
	}
	r := Realised{Elapsed: spec.Duration(elapsed.Round(time.Second)), CUJ: p.CUJ, Kind: p.Intended.Kind, Intended: p.Intended.Share.String()}
	var objective *spec.Ratio
	if p.Intended.Kind == slo.Availability && c.Availability != nil {
		objective = &c.Availability.Objective
	}
	measuredSlow := p.Intended.Kind == slo.Latency && c.Latency != nil && c.Latency.Threshold == p.Intended.Threshold
	if measuredSlow {
		objective = &c.Latency.Objective
	}
	for _, w := range c.Windows {
		bad := w.Bad
		if p.Intended.Kind == slo.Latency {
			bad = w.Slow
		}
		rs := RealisedShare{Window: w.Window, Span: w.Span, Total: w.Total, Bad: bad}
		if w.Total > 0 && (p.Intended.Kind == slo.Availability || measuredSlow) {
			v := 100 * float64(bad) / float64(w.Total)
			rs.Percent = &v
			if objective != nil {
				b := float64(bad) / float64(w.Total) / objective.OneMinus().Float()
				rs.BurnRate = &b
			}
		}
		r.Windows = append(r.Windows, rs)
	}
	for _, f := range c.Faults {
		if len(p.Rules) > 0 && f.Name == p.Rules[0].Name {
			r.Matched, r.Injected = f.Matched, f.Injected
		}
	}
	if s.json {
		return writeJSON(s.out, r)
	}
	what := "failing"
	if p.Intended.Kind == slo.Latency {
		what = "above " + spec.FormatDuration(time.Duration(p.Intended.Threshold))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s: intended %s %s", spec.FormatDuration(elapsed.Round(time.Second)), p.CUJ, p.Intended.Share.Percent(), what)
	if p.Intended.BurnRate != "" {
		fmt.Fprintf(&b, " (burn %s)", p.Intended.BurnRate)
	}
	b.WriteString(" · realised")
	for _, w := range r.Windows {
		fmt.Fprintf(&b, " %s ", spec.FormatDuration(time.Duration(w.Window)))
		if short(w) {
			fmt.Fprintf(&b, "(only %s) ", spec.FormatDuration(time.Duration(w.Span).Round(time.Second)))
		}
		switch {
		case w.Total == 0:
			b.WriteString("no requests")
		case w.Percent == nil:
			fmt.Fprintf(&b, "%s requests", rpt.Count(w.Total))
		default:
			fmt.Fprintf(&b, "%s", rpt.Percent(*w.Percent, 3))
			if w.BurnRate != nil {
				fmt.Fprintf(&b, " (%.1f)", *w.BurnRate)
			}
		}
	}
	fmt.Fprintf(&b, " · injected %s of %s", rpt.Count(r.Injected), rpt.Count(r.Matched))
	if r.Matched > 0 {
		fmt.Fprintf(&b, " (%s)", rpt.Percent(100*float64(r.Injected)/float64(r.Matched), 3))
	}
	_, err := fmt.Fprintln(s.out, b.String())
	return err
}
