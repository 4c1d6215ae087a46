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
	"slolab.dev/slolab/notify"
	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
	"slolab.dev/slolab/store/sqlite"
)

// DefaultStore is the embedded store's file when --store is not given and
// $SLOLAB_STORE (which 'slolab lab' prints) is not set.
const DefaultStore = "slolab.db"

func sloCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "Error budgets, burn rates and alerts per CUJ: status, review reports, backtests",
		Long: `Judge every CUJ's SLOs from what the proxy stored (--store, the default) or
from Prometheus (--prometheus) when many proxies serve the fleet.

For each availability and latency SLO: the SLI over the SLO window, the error
budget (allowed bad requests = (1 − objective) × requests) and how much is
left, burn rates over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the window, the time
until the budget is gone at the last hour's burn, and the SRE Workbook's
multiwindow alerts (page: 1h & 5m ≥ 14.4, 6h & 30m ≥ 6; ticket: 1d & 2h ≥ 3,
3d & 6h ≥ 1), unless the spec's alerting overrides them. Counts are whole
events and comparisons exact; an alert needs at least minBadEvents bad
requests (default 5) in each of its two windows, counted, never
extrapolated, and a window with fewer, and too few requests to expect that
many at the objective, is marked '?': too few to judge.

The store remembers the spec it was written under, so --spec is only needed
with --prometheus (or to judge under another spec). Every command says which
part of the history is synthetic (the lab's) and when the source holds less
than the SLO windows.`,
	}
	cmd.AddCommand(sloStatusCmd(e), sloReportCmd(e), sloBacktestCmd(e))
	return cmd
}

// sourceFlags choose where SLO events come from.
type sourceFlags struct {
	specPath   string
	store      string
	prometheus string
	matchers   string
	recorded   bool
}

func (f *sourceFlags) add(cmd *cobra.Command, e *env) {
	cmd.Flags().StringVar(&f.specPath, "spec", "", "the service spec with the CUJs and their SLOs (default: the spec the store was written under; required with --prometheus)")
	f.addSources(cmd, e, "the embedded store 'slolab proxy --store' writes")
}

// addSources adds the flags choosing the source, without --spec.
func (f *sourceFlags) addSources(cmd *cobra.Command, e *env, storeUsage string) {
	fs := cmd.Flags()
	envFlag(fs, &f.store, "store", "SLOLAB_STORE", DefaultStore, e.getenv, storeUsage)
	fs.StringVar(&f.prometheus, "prometheus", "", "read slolab's metrics (or the spec's queries) from Prometheus at this URL instead of the store")
	fs.StringVar(&f.matchers, "prometheus-matchers", "", `extra label matchers for slolab's metrics, e.g. 'job="chat-proxy"'`)
	fs.BoolVar(&f.recorded, "prometheus-recorded", false, "read the per-minute increases the rules of 'slolab gen prometheus' record (group slolab-SERVICE-increases) instead of the counters: the same counts, far faster over 30 days; the rules must cover the windows read (backfill them with promtool tsdb create-blocks-from rules)")
}

// source is an opened source of SLO events.
type source struct {
	slo.Source
	history  func(ctx context.Context, from, to time.Time) (*slo.History, error)
	instant  func(ctx context.Context, now time.Time) (time.Time, error)
	describe string
	io.Closer
	store *sqlite.Store // the embedded store; nil when reading Prometheus
}

// Span implements slo.Spanner when the source it wraps does.
func (s *source) Span(ctx context.Context, r slo.Range) (slo.Span, error) {
	if sp, ok := s.Source.(slo.Spanner); ok {
		return sp.Span(ctx, r)
	}
	return slo.Span{}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func (f *sourceFlags) open(ctx context.Context, cmd *cobra.Command) (*spec.Service, *source, error) {
	if err := f.check(cmd); err != nil {
		return nil, nil, err
	}
	if f.specPath == "" {
		if f.prometheus != "" {
			return nil, nil, usageErrorf("--spec is required with --prometheus: the service spec with the CUJs and their SLOs")
		}
		s, err := f.openStore(ctx)
		if err != nil {
			return nil, nil, err
		}
		svc, _, err := s.store.Spec(ctx)
		if err != nil {
			s.Close()
			if slolab.KindOf(err) == slolab.NotFound {
				return nil, nil, usageErrorf("--spec is required: %v", err)
			}
			return nil, nil, err
		}
		return svc, s, nil
	}
	svc, err := loadService(f.specPath)
	if err != nil {
		return nil, nil, err
	}
	s, err := f.openFor(ctx, svc)
	if err != nil {
		return nil, nil, err
	}
	return svc, s, nil
}

// check refuses two sources at once.
func (f *sourceFlags) check(cmd *cobra.Command) error {
	if f.prometheus != "" && cmd.Flags().Changed("store") {
		return usageErrorf("give --store or --prometheus, not both")
	}
	if f.recorded && f.prometheus == "" {
		return usageErrorf("--prometheus-recorded reads Prometheus: give --prometheus URL too")
	}
	return nil
}

// openFor opens the source of svc's events: Prometheus when --prometheus is
// given, else the store.
func (f *sourceFlags) openFor(ctx context.Context, svc *spec.Service) (*source, error) {
	if f.prometheus != "" {
		p, err := promql.New(promql.Config{URL: f.prometheus, Service: svc, Matchers: f.matchers, Recorded: f.recorded})
		if err != nil {
			return nil, usageErrorf("--prometheus: %v", err)
		}
		instant := func(_ context.Context, now time.Time) (time.Time, error) { return slo.Align(now, time.Minute), nil }
		describe := "prometheus " + f.prometheus
		if f.recorded {
			// Each minute is recorded after it ends: the last recorded one.
			instant, describe = p.Latest, describe+" (recorded increases)"
		}
		return &source{Source: p, history: p.History, instant: instant, describe: describe, Closer: nopCloser{}}, nil
	}
	return f.openStore(ctx)
}

// openStore opens the embedded store named by --store.
func (f *sourceFlags) openStore(ctx context.Context) (*source, error) {
	if _, err := os.Stat(f.store); err != nil {
		return nil, slolab.Errorf(slolab.NotFound, "no store at %s: run 'slolab proxy --store %s ...' to record one, or read Prometheus with --prometheus URL", f.store, f.store)
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: f.store})
	if err != nil {
		return nil, err
	}
	return &source{
		Source: st, history: st.History, Closer: st, store: st,
		describe: "store " + f.store,
		instant: func(ctx context.Context, now time.Time) (time.Time, error) {
			ext, err := st.Extent(ctx)
			if err != nil {
				return time.Time{}, err
			}
			return storeInstant(now, ext), nil
		},
	}, nil
}

// storeInstant is when status judges a store that a proxy may be writing:
// the end of the last whole minute it holds. A proxy flushes every 10
// seconds, so for up to 20 seconds after a minute ends its last interval may
// still be missing; a store nobody wrote to for two minutes is judged now.
// A proxy that stopped cleanly wrote everything it counted, its last,
// partial minute included: that minute is judged at once.
func storeInstant(now time.Time, ext sqlite.Extent) time.Time {
	switch {
	case !ext.Stopped.IsZero():
		last := slo.Align(ext.Stopped, time.Minute)
		if last.Before(ext.Stopped) {
			last = last.Add(time.Minute)
		}
		return maxTime(slo.Align(now, time.Minute), last)
	case ext.FlushedUntil.After(now.Add(-2*time.Minute)) && ext.FlushedUntil.Before(now):
		return slo.Align(ext.FlushedUntil, time.Minute)
	}
	return slo.Align(now, time.Minute)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// notFuture refuses an instant past the minute now is in: nothing is known
// of it yet. (The end of the current minute is allowed: a window ending
// there holds every request so far.)
func notFuture(flag string, t, now time.Time) error {
	if t.After(slo.Align(now, time.Minute).Add(time.Minute)) {
		return usageErrorf("%s %s is in the future (now is %s): there are no events to judge yet", flag, rpt.Time(t), rpt.Time(now))
	}
	return nil
}

// parseInstant reads --at, --from and --to: RFC 3339, a date, or a duration ago ("7d").
func parseInstant(flag, s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if d, err := spec.ParseDuration(strings.TrimSuffix(strings.TrimSpace(s), " ago")); err == nil {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, usageErrorf("%s %q: want a time such as 2026-03-01T12:00:00Z or 2026-03-01, or a duration ago such as 7d", flag, s)
}

// isTerminal reports whether w is a terminal, for colour.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func colourFor(e *env, w io.Writer, mode string) (bool, error) {
	switch mode {
	case "auto":
		return isTerminal(w) && e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb", nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, usageErrorf("--color %q: want auto, always or never", mode)
}

func sloStatusCmd(e *env) *cobra.Command {
	var (
		src           sourceFlags
		output, color string
		at            string
		watch         bool
		interval      time.Duration
		count         int
		webhooks, ams []string
	)
	cmd := &cobra.Command{
		Use:   "status [--spec FILE] [--store PATH | --prometheus URL]",
		Short: "Show every CUJ's SLIs, error budgets, burn rates and firing alerts",
		Long: `Show one row per SLO: the SLI over its window, the budget left, how long it
lasts if the last hour's traffic and burn go on, burn rates over every
window, and the alerts firing (with the window pair that fired). A burn rate
marked '?' rests on too little to judge: fewer bad requests than an alert
needs among too few requests to expect that many; no alert fires on it.

From the store, status is judged at the end of the last whole minute the
proxy has flushed; from Prometheus, at the last whole minute (with
--prometheus-recorded, at the end of the last minute the rules have recorded).

--watch re-evaluates every --interval and can notify: --webhook posts each
alert's firing and resolution as JSON (Slack-compatible "text"), and
--alertmanager sends alerts to Alertmanager's v2 API, repeating firing ones.`,
		Example: `  slolab slo status --spec examples/chat.yaml
  slolab slo status --spec chat.yaml --prometheus http://prometheus:9090 -o json
  slolab slo status --spec chat.yaml --watch --alertmanager http://127.0.0.1:9093
  slolab slo status --spec chat.yaml --at 2026-03-06T09:30:00Z`,
		Args: exactArgs(0, "no arguments (use --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			colour, err := colourFor(e, e.stdout, color)
			if err != nil {
				return err
			}
			if (len(webhooks) > 0 || len(ams) > 0) && !watch {
				return usageErrorf("--webhook and --alertmanager notify on changes, so they need --watch")
			}
			if interval < time.Second {
				return usageErrorf("--interval %v: want at least 1s", interval)
			}
			var fixed time.Time
			if at != "" {
				if watch {
					return usageErrorf("--at judges one past instant; it cannot be combined with --watch")
				}
				now := time.Now()
				if fixed, err = parseInstant("--at", at, now); err != nil {
					return err
				}
				if err := notFuture("--at", fixed, now); err != nil {
					return err
				}
			}
			var notifiers []notify.Notifier
			for _, u := range webhooks {
				notifiers = append(notifiers, &notify.Webhook{URL: u})
			}
			for _, u := range ams {
				notifiers = append(notifiers, &notify.Alertmanager{URL: u, Hold: max(5*time.Minute, 4*interval)})
			}
			svc, s, err := src.open(e.ctx, cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			tracker := slo.NewTracker()
			for n := 1; ; n++ {
				when := slo.Align(fixed, time.Minute)
				if fixed.IsZero() {
					if when, err = s.instant(e.ctx, time.Now()); err != nil {
						return err
					}
				}
				st, err := slo.Evaluate(e.ctx, svc, s, when)
				if err != nil {
					if watch && e.ctx.Err() != nil {
						return nil
					}
					return err
				}
				if watch && output == "table" && isTerminal(e.stdout) {
					fmt.Fprint(e.stdout, "\x1b[H\x1b[2J")
				}
				if output == "json" {
					err = writeJSON(e.stdout, struct {
						Source string `json:"source"`
						*slo.Status
					}{s.describe, st})
				} else {
					err = rpt.StatusTable(e.stdout, st, rpt.StatusOptions{Colour: colour, Source: s.describe})
				}
				if err != nil {
					return err
				}
				if !watch {
					return nil
				}
				changes := tracker.Observe(st)
				for _, t := range changes {
					verb := "resolved"
					if t.Firing {
						verb = "fired"
					}
					fmt.Fprintf(e.stderr, "slolab slo: %s %s %s %s\n", rpt.Time(st.At), t.Key, t.Alert.String(), verb)
				}
				notice := notify.Notice{Service: svc.Name, Spec: svc, At: st.At, Changes: changes, Firing: tracker.Firing()}
				for _, nt := range notifiers {
					if err := nt.Notify(e.ctx, notice); err != nil {
						fmt.Fprintf(e.stderr, "slolab slo: %v\n", err)
					}
				}
				if count > 0 && n >= count {
					return nil
				}
				select {
				case <-e.ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	src.add(cmd, e)
	outputFlag(cmd.Flags(), &output)
	fs := cmd.Flags()
	fs.StringVar(&color, "color", "auto", "colour the table: auto (on a terminal, unless NO_COLOR is set), always or never")
	fs.StringVar(&at, "at", "", "judge a past instant instead of now (RFC 3339, a date, or a duration ago such as 2h)")
	fs.BoolVarP(&watch, "watch", "w", false, "re-evaluate every --interval until Ctrl-C")
	fs.DurationVar(&interval, "interval", 10*time.Second, "how often --watch re-evaluates")
	fs.IntVar(&count, "count", 0, "with --watch, stop after this many evaluations (0: until Ctrl-C)")
	fs.StringArrayVar(&webhooks, "webhook", nil, "with --watch, post alert changes as JSON to this URL (repeatable)")
	fs.StringArrayVar(&ams, "alertmanager", nil, "with --watch, send alerts to Alertmanager at this URL (repeatable)")
	return cmd
}

// longestAlertWindow is how much history before a replay's start its first
// evaluations need.
func longestAlertWindow(svc *spec.Service) time.Duration {
	var longest time.Duration
	for _, s := range slo.SLOs(svc) {
		for _, a := range s.Alerts {
			longest = max(longest, a.Long)
		}
	}
	return longest
}

func sloBacktestCmd(e *env) *cobra.Command {
	var (
		src                 sourceFlags
		from, to            string
		output, color, step string
	)
	cmd := &cobra.Command{
		Use:   "backtest [--spec FILE] [--from TIME] [--to TIME]",
		Short: "Replay stored history through the alert rules: when each would have fired and resolved",
		Long: `Replay history through every SLO's alert rules, evaluating them at each
minute as 'slo status --watch' would have, and list when each alert would
have fired and resolved, how long it lasted and its peak burn rate, with a
summary of pages and tickets per SLO.

Tune thresholds before they page anyone: edit the spec's alerting (burnRates,
minBadEvents) and replay the same history. The replay reads history from the
longest alert window before --from, so the first evaluations see full windows.
From the store, minute history covers the last 35 days.`,
		Example: `  slolab slo backtest --spec examples/chat.yaml --from 7d
  slolab slo backtest --spec chat.yaml --from 2026-03-01 --to 2026-03-08 -o json
  slolab slo backtest --spec chat.yaml --prometheus http://prometheus:9090 --from 30d`,
		Args: exactArgs(0, "no arguments (use --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			colour, err := colourFor(e, e.stdout, color)
			if err != nil {
				return err
			}
			every, err := spec.ParseDuration(step)
			if err != nil || every < time.Minute || every%time.Minute != 0 {
				return usageErrorf("--step %q: want whole minutes such as 1m or 5m", step)
			}
			now := time.Now()
			start, err := parseInstant("--from", from, now)
			if err != nil {
				return err
			}
			end := now
			if to != "" {
				if end, err = parseInstant("--to", to, now); err != nil {
					return err
				}
				if err := notFuture("--to", end, now); err != nil {
					return err
				}
			}
			start, end = slo.Align(start, time.Minute), slo.Align(end, time.Minute)
			if !start.Before(end) {
				return usageErrorf("--from (%s) must be before --to (%s)", rpt.Time(start), rpt.Time(end))
			}
			svc, s, err := src.open(e.ctx, cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(e.stderr, "slolab slo: loading %s of history from %s…\n", rpt.Span(end.Sub(start)+longestAlertWindow(svc)), s.describe)
			h, err := s.history(e.ctx, start.Add(-longestAlertWindow(svc)), end)
			if err != nil {
				return err
			}
			bt := slo.Replay(svc, h, start, end, every)
			if output == "json" {
				return writeJSON(e.stdout, struct {
					Source string `json:"source"`
					*slo.Backtest
				}{s.describe, bt})
			}
			return rpt.BacktestTable(e.stdout, bt, rpt.StatusOptions{Colour: colour, Source: s.describe})
		},
	}
	src.add(cmd, e)
	outputFlag(cmd.Flags(), &output)
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "7d", "start of the replay (RFC 3339, a date, or a duration ago)")
	fs.StringVar(&to, "to", "", "end of the replay (default now)")
	fs.StringVar(&step, "step", "1m", "how often the replay evaluates the alerts")
	fs.StringVar(&color, "color", "auto", "colour the table: auto, always or never")
	return cmd
}

func sloReportCmd(e *env) *cobra.Command {
	var (
		src                sourceFlags
		window, format, at string
		out                string
	)
	cmd := &cobra.Command{
		Use:   "report [--spec FILE] [--window 30d] [--format md|html|json]",
		Short: "Write the SLO review: budgets, burn-down, alerts fired and what the policy calls for",
		Long: `Write the report for the regular SLO review. Per CUJ and SLO over --window:
the SLI, the budget allowed, spent and left, its burn-down day by day (hour by
hour under a week), the alerts that fired (a replay of the alert rules), and
the actions the spec's error-budget policy calls for, such as
"remaining < 25%: freeze feature releases for this CUJ's owner".

Formats: md (Markdown, for the meeting notes), html (one self-contained page)
and json. From the store, each ends with the week's new errors: the
error classes first seen in the last 7 days (or the window, when shorter) and
absent from the rest of the window, as 'slolab errors' lists them.`,
		Example: `  slolab slo report --spec examples/chat.yaml --window 30d > review.md
  slolab slo report --spec chat.yaml --format html --out review.html
  slolab slo report --spec chat.yaml --prometheus http://prometheus:9090 --window 28d --format json`,
		Args: exactArgs(0, "no arguments (use --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			render, ok := rpt.Formats[format]
			if !ok {
				return usageErrorf("--format %q: want one of %s", format, strings.Join(rpt.FormatNames(), ", "))
			}
			w, err := spec.ParseDuration(window)
			if err != nil || w < time.Hour || w%time.Hour != 0 {
				return usageErrorf("--window %q: want whole hours or days such as 7d or 30d", window)
			}
			now := time.Now()
			svc, s, err := src.open(e.ctx, cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			end, err := s.instant(e.ctx, now)
			if err != nil {
				return err
			}
			if at != "" {
				if end, err = parseInstant("--at", at, now); err != nil {
					return err
				}
				if err := notFuture("--at", end, now); err != nil {
					return err
				}
				end = slo.Align(end, time.Minute)
			}
			fmt.Fprintf(e.stderr, "slolab slo: loading %s of history from %s…\n", rpt.Span(w+longestAlertWindow(svc)), s.describe)
			h, err := s.history(e.ctx, end.Add(-w-longestAlertWindow(svc)), end)
			if err != nil {
				return err
			}
			rv := slo.ReviewOf(svc, h, end, w)
			if s.store != nil {
				// The week's new error classes, against the rest of the window.
				since := min(w, 7*spec.Day)
				ne, err := newErrors(e.ctx, svc, s, end, since, max(w-since, 7*spec.Day))
				if err != nil {
					return err
				}
				render, _ = rpt.WithNewErrors(format, ne)
			}
			if out == "" || out == "-" {
				return render(e.stdout, rv)
			}
			f, err := os.Create(out)
			if err != nil {
				return usageErrorf("--out: %v", err)
			}
			if err := render(f, rv); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "slolab slo: wrote %s\n", out)
			return nil
		},
	}
	src.add(cmd, e)
	fs := cmd.Flags()
	fs.StringVar(&window, "window", "30d", "the review window")
	fs.StringVar(&format, "format", "md", "md, html or json")
	fs.StringVar(&at, "at", "", "end the window at this instant instead of now")
	fs.StringVarP(&out, "out", "O", "", "write to this file instead of stdout")
	return cmd
}
