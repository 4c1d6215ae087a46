package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slolab.dev/slolab"
	"slolab.dev/slolab/canary"
	"slolab.dev/slolab/internal/httpserve"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
	"slolab.dev/slolab/store/promql"
	"slolab.dev/slolab/store/sqlite"
)

// judgeFlags are what `canary judge`, `canary serve` and `rollout` share:
// the spec, the data source and the judge's tunables.
type judgeFlags struct {
	specPath   string
	window     time.Duration
	admin      adminFlags
	store      string
	prometheus string
	matchers   string
	at         string
	confidence string
	maxBurn    string
	tolerance  string
	weight     string
	cujs       []string
}

func (j *judgeFlags) add(cmd *cobra.Command, e *env, window time.Duration) {
	fs := cmd.Flags()
	fs.StringVar(&j.specPath, "spec", "", "the service spec listing the CUJs and their SLOs (required)")
	fs.DurationVar(&j.window, "window", window, "judge the requests of the last window (up to 6h from a proxy)")
	j.admin.add(cmd, e)
	fs.StringVar(&j.store, "store", "", "judge from the embedded store 'slolab proxy --store' writes (whole minutes) instead of the proxy's live windows")
	fs.StringVar(&j.prometheus, "prometheus", "", "judge from slolab's metrics in Prometheus at this URL (a fleet of proxies; whole minutes)")
	fs.StringVar(&j.matchers, "prometheus-matchers", "", `extra label matchers for slolab's metrics, e.g. 'job="chat-proxy"'`)
	fs.StringVar(&j.at, "at", "", "with --store or --prometheus: judge the window ending at this time (RFC 3339, a date, or a duration ago such as 1h); default the last whole minute")
	fs.StringVar(&j.confidence, "confidence", "95%", "chance that a canary as good as its SLOs and stable passes one judgment, all checks together")
	fs.StringVar(&j.maxBurn, "max-burn-rate", "1", "how fast the canary may burn its error budget over the window (1: exactly at the SLO)")
	fs.StringVar(&j.tolerance, "tolerance", "10%", "how much worse than stable the canary may be before the comparison can fail it, as a share of the error budget")
	fs.StringVar(&j.weight, "weight", "", "the canary weight to plan traffic for (default: the proxy's)")
	fs.StringSliceVar(&j.cujs, "cuj", nil, "judge only these CUJs (repeatable or comma-separated)")
}

// judged is what a judging command works with.
type judged struct {
	svc    *spec.Service
	cfg    canary.Config
	source canary.Source
	client *admin.Client // the proxy's admin API: the source, or the weights of a rollout
	close  func()
}

// load reads the spec, the judge's config and the source. adminToo says the
// command needs the admin API besides a --store or --prometheus source.
func (j *judgeFlags) load(ctx context.Context, cmd *cobra.Command, adminToo bool) (*judged, error) {
	svc, cfg, err := j.config()
	if err != nil {
		return nil, err
	}
	stored := 0
	for _, v := range []string{j.store, j.prometheus} {
		if v != "" {
			stored++
		}
	}
	switch {
	case stored > 1:
		return nil, usageErrorf("give --store or --prometheus, not both")
	case stored == 1 && !adminToo && cmd.Flags().Changed("admin"):
		return nil, usageErrorf("give one source: --admin (the proxy's live windows), --store or --prometheus")
	case stored == 0 && j.at != "":
		return nil, usageErrorf("--at needs --store or --prometheus: the proxy's live windows always end now")
	}
	var at time.Time
	if j.at != "" {
		if at, err = parseInstant("--at", j.at, time.Now()); err != nil {
			return nil, err
		}
		at = slo.Align(at, time.Minute)
	}
	c, err := j.admin.client()
	if err != nil {
		return nil, err
	}
	out := &judged{svc: svc, cfg: cfg, client: c, source: &canary.Admin{Client: c, URL: j.admin.url}, close: func() {}}
	switch {
	case j.prometheus != "":
		p, err := promql.New(promql.Config{URL: j.prometheus, Service: svc, Matchers: j.matchers})
		if err != nil {
			return nil, usageErrorf("--prometheus: %v", err)
		}
		out.source = &canary.Stored{
			Source: canary.PrometheusRevisions{Source: p}, Name: "prometheus " + j.prometheus,
			End: func(context.Context) (time.Time, error) {
				if !at.IsZero() {
					return at, nil
				}
				return slo.Align(time.Now(), time.Minute), nil
			},
		}
	case j.store != "":
		if _, err := os.Stat(j.store); err != nil {
			return nil, slolab.Errorf(slolab.NotFound, "no store at %s: run 'slolab proxy --store %s ...' to record one", j.store, j.store)
		}
		st, err := sqlite.Open(ctx, sqlite.Config{Path: j.store})
		if err != nil {
			return nil, err
		}
		out.close = func() { _ = st.Close() } // only read: closing loses nothing
		out.source = &canary.Stored{
			Source: st, Name: "store " + j.store,
			End: func(ctx context.Context) (time.Time, error) {
				if !at.IsZero() {
					return at, nil
				}
				ext, err := st.Extent(ctx)
				if err != nil {
					return time.Time{}, err
				}
				return storeInstant(time.Now(), ext.FlushedUntil), nil
			},
		}
	}
	return out, nil
}

// sourceName names where the counts come from, for banners.
func (j *judgeFlags) sourceName() string {
	switch {
	case j.prometheus != "":
		return "prometheus " + j.prometheus
	case j.store != "":
		return "store " + j.store
	}
	return "proxy " + j.admin.url
}

// config reads the spec and the judge's tunables.
func (j *judgeFlags) config() (*spec.Service, canary.Config, error) {
	var cfg canary.Config
	if j.specPath == "" {
		return nil, cfg, usageErrorf("--spec is required: the service spec listing the CUJs and their SLOs")
	}
	if j.window <= 0 || j.window > admin.MaxCountsWindow {
		return nil, cfg, usageErrorf("--window %s: must be in (0, %s], the history a proxy keeps", j.window, spec.FormatDuration(admin.MaxCountsWindow))
	}
	var err error
	if cfg.Confidence, err = spec.ParsePercent(j.confidence); err != nil {
		return nil, cfg, usageErrorf("--confidence: %v", err)
	}
	if cfg.MaxBurnRate, err = spec.ParseRatio(j.maxBurn); err != nil || cfg.MaxBurnRate.IsZero() {
		return nil, cfg, usageErrorf("--max-burn-rate %q: want a positive number such as 1 or 2", j.maxBurn)
	}
	tol, err := spec.ParsePercent(j.tolerance)
	if err != nil {
		return nil, cfg, usageErrorf("--tolerance: %v", err)
	}
	cfg.Tolerance = &tol
	if j.weight != "" {
		w, err := admin.ParseWeight(j.weight)
		if err != nil {
			return nil, cfg, usageErrorf("--weight %q: %v", j.weight, err)
		}
		cfg.Weight = &w
	}
	cfg.CUJs = j.cujs
	svc, err := loadService(j.specPath)
	if err != nil {
		return nil, cfg, err
	}
	if err := cfg.Check(svc); err != nil {
		return nil, cfg, usageErrorf("--%v", err)
	}
	return svc, cfg, nil
}

func canaryCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Judge a canary per CUJ, and serve the verdict to Argo Rollouts and Flagger",
		Long: `Judge a canary release per Critical User Journey.

Every CUJ's canary is held to its SLOs and compared with its stable release,
on availability and on the latency-good ratio, with exact tests that hold for
the handful of requests a low-traffic CUJ sends a canary. The release passes
only when every CUJ passes: a broken low-traffic journey is not drowned in the
total error rate. See docs/canary.md for the statistics.`,
	}
	cmd.AddCommand(canaryJudgeCmd(e), canaryServeCmd(e))
	return cmd
}

func canaryJudgeCmd(e *env) *cobra.Command {
	var j judgeFlags
	var output string
	cmd := &cobra.Command{
		Use:   "judge --spec FILE [--window 5m] [--admin URL | --store PATH | --prometheus URL]",
		Short: "Judge the canary per CUJ: pass (exit 0), fail (1) or inconclusive (2)",
		Long: `Judge the canary per CUJ over the last --window, from a proxy that splits
traffic between stable and canary (slolab proxy --upstream stable=URL
--upstream canary=URL): its live windows (--admin, the default), its
embedded store (--store, whole minutes) or Prometheus (--prometheus, a fleet
of proxies, whole minutes).

For each CUJ and each of its SLOs (availability; latency under its threshold):
  against the SLO:   could a canary within the objective (times --max-burn-rate)
                     show this many bad requests? An exact binomial test.
  against stable:    is the canary's bad ratio higher than stable's? Fisher's
                     exact test, failing only beyond --tolerance of the budget.
Each check runs at (1 - confidence) / checks, so one judgment of a canary that
is as good as it must be fails with at most that chance, all CUJs together.

A pass also needs enough canary requests: ln(α)/ln(1 - allowed bad ratio),
2,995 for a 99.9% SLO at 95% confidence. Below it a CUJ is inconclusive, never
a pass, and the judge says what rate, window or weight would decide.

The overall verdict is the worst CUJ's. Exit 0 pass, 1 fail, 2 inconclusive.`,
		Example: `  slolab canary judge --spec chat.yaml --window 5m
  slolab canary judge --spec chat.yaml --admin http://127.0.0.1:9090 --cuj task -o json
  slolab canary judge --spec chat.yaml --confidence 99% --max-burn-rate 2
  slolab canary judge --spec chat.yaml --prometheus http://prometheus:9090 --window 10m
  slolab canary judge --spec chat.yaml --store slolab.db --at 2026-03-01T12:05:00Z`,
		Args: exactArgs(0, "no arguments (use --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			jd, err := j.load(e.ctx, cmd, false)
			if err != nil {
				return err
			}
			defer jd.close()
			obs, err := jd.source.Observe(e.ctx, jd.svc, j.window)
			if err != nil {
				return err
			}
			res, err := canary.Judge(jd.svc, obs, jd.cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(e.stdout, res); err != nil {
					return err
				}
			} else if err := printJudgment(e.stdout, res); err != nil {
				return err
			}
			return verdictError(res.Verdict)
		},
	}
	j.add(cmd, e, 5*time.Minute)
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// verdictError turns a verdict into the command's exit: nil, exit 1 or exit 2.
func verdictError(v canary.Verdict) error {
	switch v {
	case canary.Fail:
		return errSilentFailure
	case canary.Inconclusive:
		return errSilentInconclusive
	}
	return nil
}

func ratePerSec(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 1:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.3f", r)
}

func printJudgment(w io.Writer, res canary.Result) error {
	fmt.Fprintf(w, "canary %s: service %s, %s, the last %s (data over %s), canary weight %s\n",
		strings.ToUpper(string(res.Verdict)), res.Service, res.Source, res.Window, res.Span, pctText(res.WeightPercent))
	fmt.Fprintf(w, "%d checks, each at α = %s (%s confidence over all)\n\n", res.Checks, pctText(100*res.AlphaPerCheck), pctText(res.ConfidencePercent))
	t := newTable(w, "CUJ", "VERDICT", "CANARY", "ERRORS", "SLOW", "STABLE", "ERRORS", "SLOW", "NEEDS")
	for _, c := range res.CUJs {
		t.row(c.CUJ, c.Verdict, c.Canary.Total, pctText(c.Canary.ErrorPercent), pctText(c.Canary.SlowPercent),
			c.Stable.Total, pctText(c.Stable.ErrorPercent), pctText(c.Stable.SlowPercent), c.MinRequests)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, c := range res.CUJs {
		if c.Verdict == canary.Pass {
			continue
		}
		fmt.Fprintf(w, "\n%s: %s\n", c.CUJ, c.Verdict)
		for _, r := range c.Reasons {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	fmt.Fprintf(w, "\nTraffic for a decision: each CUJ's canary needs NEEDS requests in one window.\n")
	t = newTable(w, "CUJ", "NOW", "NEEDED AT "+pctText(res.WeightPercent)+" OVER "+res.Window.String(), "OR A WINDOW OF", "OR A WEIGHT OF")
	for _, c := range res.CUJs {
		tr := c.Traffic
		need, win, weight := "-", "-", "-"
		if tr.NeededRatePerSecond != nil {
			need = ratePerSec(*tr.NeededRatePerSecond) + " req/s"
		}
		if tr.NeededWindow != nil {
			win = tr.NeededWindow.String()
		}
		if tr.NeededWeightPercent != nil {
			weight = pctText(*tr.NeededWeightPercent)
		}
		t.row(c.CUJ, ratePerSec(tr.RatePerSecond)+" req/s", need, win, weight)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, r := range res.Reasons {
		if strings.HasPrefix(r, "no request was served") {
			fmt.Fprintf(w, "\nnote: %s\n", r)
		}
	}
	return nil
}

func pctText(p float64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", p), "0"), ".")
	return s + "%"
}

func canaryServeCmd(e *env) *cobra.Command {
	var j judgeFlags
	var listen, logLevel, noData string
	cmd := &cobra.Command{
		Use:   "serve --spec FILE [--listen ADDR] [--admin URL]",
		Short: "Serve the per-CUJ verdict to Argo Rollouts' web provider and Flagger's webhooks",
		Long: `Serve the canary verdict over HTTP; every request judges afresh.

  GET  /api/v1/verdict[?cuj=NAME][&window=5m]
       For Argo Rollouts' web metric provider: always 200 with JSON once a
       verdict was computed — {"verdict": "pass|fail|inconclusive", "cujs":
       [{"cuj": ..., "verdict": ..., "canary": {...}, "stable": {...}}, ...]} —
       and 503 with {"error": ...} when the proxy cannot be read. Measure all
       CUJs in one metric with jsonPath {$.cujs} and
         successCondition: len(result) > 0 && all(result, {.verdict == "pass"})
         failureCondition: any(result, {.verdict == "fail"})
       never a wildcard path: Argo keeps only its first match.
  POST /flagger/rollout   Flagger rollout hook: 412 on fail; while
                          inconclusive 2xx (--no-data inconclusive, the
                          default) or 425 (--no-data fail: Flagger counts a
                          failed check and rolls back at its threshold).
  POST /flagger/confirm   Flagger confirm-traffic-increase / confirm-promotion
                          hook: 2xx only on pass (425 while inconclusive), so
                          a canary without evidence is never promoted: list
                          it as the Canary's confirm-promotion hook.

'slolab gen argo-rollouts' writes one AnalysisTemplate per CUJ that reads this
endpoint. See docs/canary.md.`,
		Example: `  slolab canary serve --spec chat.yaml --listen 127.0.0.1:9091 --admin http://127.0.0.1:9090
  curl -s 'http://127.0.0.1:9091/api/v1/verdict?cuj=task' | jq .verdict`,
		Args: exactArgs(0, "no arguments (use --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(e.stderr, logLevel)
			if err != nil {
				return err
			}
			policy, err := canary.ParseNoData(noData)
			if err != nil {
				return usageErrorf("--no-data: %v", err)
			}
			jd, err := j.load(e.ctx, cmd, false)
			if err != nil {
				return err
			}
			defer jd.close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listening: %w", err)
			}
			h := canary.NewHandler(canary.ServerConfig{Service: jd.svc, Source: jd.source, Window: j.window, Judge: jd.cfg, NoData: policy, Logger: log})
			base := "http://" + ln.Addr().String()
			fmt.Fprintf(e.stderr, "slolab canary serve: %s%s · Flagger %s%s, %s%s (judging %s over %s)\n",
				base, canary.VerdictPath, base, canary.FlaggerRolloutPath, base, canary.FlaggerConfirmPath, j.sourceName(), j.window)
			err = httpserve.Serve(e.ctx, ln, h, httpserve.Options{Drain: 10 * time.Second})
			fmt.Fprintln(e.stderr, "slolab canary serve: stopped")
			return err
		},
	}
	j.add(cmd, e, 5*time.Minute)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9091", "address to serve verdicts on")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&noData, "no-data", string(canary.NoDataHold), "what Flagger's rollout hook answers while the verdict is inconclusive: inconclusive (2xx; the confirm hooks hold) or fail (425: a failed check)")
	return cmd
}

func rolloutCmd(e *env) *cobra.Command {
	var j judgeFlags
	var steps, stepsFile, output string
	var interval, maxHold time.Duration
	cmd := &cobra.Command{
		Use:   "rollout --spec FILE --steps \"25%,pause 5m,50%,pause 5m,100%\" [--admin URL]",
		Short: "Roll a canary out step by step through the proxy, rolling back when a CUJ fails",
		Long: `Progressive delivery without Kubernetes: drive the canary weight of a proxy
started with --upstream stable=URL --upstream canary=URL through its steps.

A weight step ("25%", or "25" as in Argo Rollouts' setWeight) sets the
canary's share of every CUJ at once. A pause step ("pause 5m") judges the
canary every --interval, per CUJ (see 'slolab canary judge'):
  fail          roll back at once: weight 0, exit 1
  inconclusive  hold: at the end of the pause the weight stays until an
                analysis passes; after --max-hold of holding, roll back, exit 2
  pass          the pause ends on time, and the next step follows
After the last step the canary gets 100%. Ctrl-C rolls back to 0.

Each analysis judges the requests since the canary first got traffic, at most
--window, so an earlier attempt's requests are not judged again. Every step and
analysis is logged; -o json writes one JSON object per event.`,
		Example: `  slolab rollout --spec chat.yaml --steps "25%,pause 5m,50%,pause 5m,100%"
  slolab rollout --spec chat.yaml --steps-file steps.txt --interval 30s --window 10m
  slolab rollout --spec chat.yaml --steps "10%,pause 2m" -o json | jq -c 'select(.event != "analysis")'`,
		Args: exactArgs(0, "no arguments (use --spec and --steps)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			text := steps
			switch {
			case steps != "" && stepsFile != "":
				return usageErrorf("--steps and --steps-file exclude each other")
			case stepsFile != "":
				data, err := os.ReadFile(stepsFile)
				if err != nil {
					return usageErrorf("--steps-file: %v", err)
				}
				text = string(data)
			case steps == "":
				return usageErrorf("--steps is required, e.g. --steps \"25%%,pause 5m,50%%,pause 5m,100%%\"")
			}
			parsed, err := canary.ParseSteps(text)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if interval <= 0 {
				return usageErrorf("--interval must be positive")
			}
			jd, err := j.load(e.ctx, cmd, true)
			if err != nil {
				return err
			}
			defer jd.close()
			svc, cfg, src, client := jd.svc, jd.cfg, jd.source, jd.client
			client.SetActor("slolab rollout")
			st, err := client.Canary(e.ctx)
			if err != nil {
				return err
			}
			if st.Mode != split.ModeWeight {
				return slolab.Errorf(slolab.Conflict, "the proxy at %s reads the revision from the %s header: the mesh sets the weight, not slolab rollout", j.admin.url, st.Header)
			}
			fmt.Fprintf(e.stderr, "slolab rollout: %d steps on %s (stable %s, canary %s, now at %s), analysis every %s\n",
				len(parsed), j.admin.url, st.Stable, st.Canary, st.Weight, interval)
			analyze := func(ctx context.Context, window time.Duration) (canary.Result, error) {
				obs, err := src.Observe(ctx, svc, window)
				if err != nil {
					return canary.Result{}, err
				}
				return canary.Judge(svc, obs, cfg)
			}
			var writeErr error
			event := func(ev canary.Event) {
				if output == "json" {
					if err := writeJSONLine(e.stdout, ev); err != nil && writeErr == nil {
						writeErr = err
					}
					return
				}
				printEvent(e.stdout, parsed, ev)
			}
			rc := canary.RolloutConfig{
				Steps: parsed, Interval: interval, Window: j.window, MaxHold: maxHold,
				Weights: client, Analyze: analyze, Event: event,
			}
			if st.Weight != nil && !st.Weight.IsZero() && st.Since != nil {
				rc.CanaryStart = *st.Since // the canary already serves: judge what it served
			}
			outcome, verdict, err := canary.Rollout(e.ctx, rc)
			if err != nil {
				return err
			}
			if writeErr != nil {
				return writeErr
			}
			fmt.Fprintf(e.stderr, "slolab rollout: %s\n", outcome)
			switch {
			case outcome == canary.Promoted:
				return nil
			case outcome == canary.RolledBack && verdict == canary.Inconclusive:
				return errSilentInconclusive
			}
			return errSilentFailure
		},
	}
	j.add(cmd, e, 5*time.Minute)
	fs := cmd.Flags()
	fs.StringVar(&steps, "steps", "", `the steps, comma-separated: weights ("25%") and pauses ("pause 5m")`)
	fs.StringVar(&stepsFile, "steps-file", "", "read the steps from a file, one per line (# comments)")
	fs.DurationVar(&interval, "interval", time.Minute, "how often a pause judges the canary")
	fs.DurationVar(&maxHold, "max-hold", 30*time.Minute, "how long an inconclusive analysis may hold the rollout before it rolls back (0: until interrupted)")
	outputFlag(fs, &output)
	return cmd
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// printEvent writes one line of a rollout's log.
func printEvent(w io.Writer, steps []canary.Step, ev canary.Event) {
	where := "done"
	if ev.Step > 0 {
		where = fmt.Sprintf("step %d/%d %s", ev.Step, ev.Steps, steps[ev.Step-1])
	}
	what := ev.Kind
	switch ev.Kind {
	case "weight":
		what = "weight " + ev.Weight.String()
	case "analysis":
		what = "analysis " + string(ev.Verdict)
	case "rollback":
		what = "ROLLBACK to 0%"
	case "promoted":
		what = "PROMOTED"
	}
	fmt.Fprintf(w, "[+%s] %s · %s: %s\n", ev.At, where, what, ev.Message)
}
