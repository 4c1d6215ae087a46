package cli

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

func loadCmd(e *env) *cobra.Command {
	var (
		specPath, target, output, userHeader, userCookie, startAt string
		rate                                                      rateFlag
		stages                                                    stagesFlag
		thresholds                                                thresholdsFlag
		headers                                                   headersFlag
		shard                                                     shardFlag
		cujs                                                      []string
		duration                                                  durationFlag
		timeout                                                   = durationFlag(load.DefaultTimeout)
		lateAfter                                                 = durationFlag(load.DefaultLateAfter)
		every                                                     = durationFlag(5 * time.Second)
		users                                                     int
		maxInFlight                                               int
		seed                                                      uint64
	)
	cmd := &cobra.Command{
		Use:   "load --spec FILE --target URL (--rate RATE [--duration DUR] | --stage STAGE...)",
		Short: "Send open-model traffic with the spec's per-CUJ mix and report latencies per CUJ",
		Long: `Send traffic to a target at a constant arrival rate (or in stages), split over
the spec's CUJs, and report per CUJ what was sent and how it went.

Open model: requests go out at the times the plan sets, however slowly the
target answers, and latency is measured from each request's intended send
time. A server that stalls for a second shows a second in the percentiles; a
generator that cannot keep up counts late sends (sent more than --late-after
after their time) and dropped ones (not sent because --max-in-flight requests
were already waiting).

The mix: each CUJ's load block in the spec gives a share of the rate (share:
30%) or a rate of its own (rate: 20/s, taken out of the total); CUJs with
neither split what is left evenly. A CUJ's requests come from its templates
(method, path with {var} placeholders, headers, body) or, without any, from its
route patterns ("GET /messages/{id}" becomes GET /messages/<1..1000>). Every
CUJ's count is exact: after t seconds at rate r, floor(t·r) requests are due.

Client identities: each request comes from one of --users users: a user-ID
header, a cookie and an X-Forwarded-For address in 10.0.0.0/8 (a header value
only; traffic goes to --target alone). Variables and users are drawn from
--seed, printed in the report, so a run can be replayed.

Several machines share one plan with --shard i/N: request k of the plan goes
to shard k mod N (start them with the same --start-at to keep them in step).

Thresholds (--threshold, repeatable) make the command exit 1 when broken:
  update:p99<1s        a latency percentile (pNN) or max of a CUJ
  update:errors<0.1%   5xx, no response and dropped over requests due
  '*:p99.9<2s'         every CUJ; _total:... the whole run
  late, dropped        shares of late and dropped sends

Progress goes to stderr: a live line on a terminal, a plain line every
--progress otherwise. Ctrl-C stops sending at once and prints the report of
what was sent.`,
		Example: `  # 200 requests per second for 5 minutes, split as the spec says
  slolab load --spec examples/chat.yaml --target http://127.0.0.1:8080 --rate 200/s --duration 5m

  # warm up, ramp, hold; fail if the update CUJ is slow or failing
  slolab load --spec chat.yaml --target http://127.0.0.1:8080 \
    --stage 50/s:30s --stage 50/s..500/s:2m --stage 500/s:5m \
    --threshold 'update:p99<1s' --threshold 'update:errors<0.1%'

  # the same plan from three machines
  slolab load --spec chat.yaml --target http://app:8080 --rate 3000/s --duration 10m \
    --seed 42 --shard 0/3 --start-at 2025-06-01T10:00:00Z`,
		Args: exactArgs(0, "no arguments (the spec is given with --spec)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if specPath == "" || target == "" {
				return usageErrorf("load needs --spec FILE and --target URL\nRun 'slolab load --help' for usage.")
			}
			var plan []load.Stage
			switch {
			case rate.set && len(stages) > 0:
				return usageErrorf("give --rate (with --duration) or --stage, not both")
			case rate.set:
				plan = []load.Stage{{From: rate.r, Duration: time.Duration(duration)}}
			case len(stages) > 0:
				if cmd.Flags().Changed("duration") {
					return usageErrorf("--duration goes with --rate; each --stage has its own duration")
				}
				plan = stages
			default:
				return usageErrorf("load needs --rate RATE (and --duration) or --stage STAGE\nRun 'slolab load --help' for usage.")
			}
			if !cmd.Flags().Changed("seed") {
				seed = randomSeed()
			}
			svc, err := loadService(specPath)
			if err != nil {
				return err
			}
			p, err := load.NewPlan(svc, load.PlanConfig{Stages: plan, Seed: seed, Shard: shard.s, CUJs: cujs})
			if err != nil {
				return err
			}
			if err := checkSendsSomething(p); err != nil {
				return err
			}
			cfg := load.Config{
				Plan: p, Target: target,
				Users:       load.Users{N: users, Header: userHeader, Cookie: userCookie},
				Headers:     headers.h,
				MaxInFlight: maxInFlight,
				Timeout:     time.Duration(timeout),
				LateAfter:   time.Duration(lateAfter),
			}
			if startAt != "" {
				if cfg.Start, err = time.Parse(time.RFC3339Nano, startAt); err != nil {
					return usageErrorf("--start-at: want an RFC 3339 time such as 2025-06-01T10:00:00Z, got %q", startAt)
				}
			}
			gen, err := load.New(cfg)
			if err != nil {
				return usageErrorf("%v", err)
			}
			// Check thresholds name real CUJs before sending anything.
			if _, err := (&load.Report{CUJs: cujReports(p)}).Check(thresholds.t); err != nil {
				return usageErrorf("%v", err)
			}
			stop := startProgress(e.ctx, gen, e.stderr, time.Duration(every))
			rep, err := gen.Run(e.ctx)
			stop()
			if err != nil {
				return err
			}
			ok, err := rep.Check(thresholds.t)
			if err != nil {
				return err
			}
			// A target nothing reached is no load test: say so first, and fail.
			unreachable := rep.Total.Sent > 0 && rep.Total.Errors == rep.Total.Sent
			if unreachable {
				fmt.Fprintf(e.stderr, "slolab load: none of the %d requests sent reached %s: %s\n", rep.Total.Sent, target, lastError(rep))
			}
			if output == "json" {
				if err := writeJSON(e.stdout, rep); err != nil {
					return err
				}
			} else if err := printLoadReport(e.stdout, rep); err != nil {
				return err
			}
			if !ok || unreachable {
				return errSilentFailure
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&specPath, "spec", "", "spec file with the service's CUJs (YAML or JSON)")
	f.StringVar(&target, "target", "", "base URL of the app or proxy to load, e.g. http://127.0.0.1:8080")
	f.Var(&rate, "rate", "constant arrival rate: 200/s, 30/m, 5/2s")
	f.Var(&duration, "duration", "how long to send at --rate; 0 runs until Ctrl-C")
	f.Var(&stages, "stage", "a stage RATE:DUR (200/s:30s) or a ramp RATE..RATE:DUR (100/s..500/s:1m); repeatable, in order")
	f.IntVar(&users, "users", load.DefaultUsers, "number of distinct client identities")
	f.StringVar(&userHeader, "user-header", load.DefaultUserHeader, "header carrying the user ID (empty: none)")
	f.StringVar(&userCookie, "user-cookie", load.DefaultUserCookie, "cookie carrying the user ID (empty: none)")
	f.Var(&headers, "header", "extra header 'Name: value' on every request; repeatable")
	f.IntVar(&maxInFlight, "max-in-flight", load.DefaultMaxInFlight, "most requests in flight at once; a request due beyond it is dropped and counted")
	f.Var(&timeout, "timeout", "per-request timeout from its send")
	f.Var(&lateAfter, "late-after", "count a send as late when it leaves more than this after its intended time")
	f.Uint64Var(&seed, "seed", 0, "seed for variables and users (default: random, printed in the report)")
	f.Var(&shard, "shard", "send only shard i of N of the plan: i/N")
	f.StringVar(&startAt, "start-at", "", "start the plan at this RFC 3339 time (for shards on several machines)")
	f.Var(&thresholds, "threshold", "fail (exit 1) unless CUJ:METRIC<LIMIT holds, e.g. update:p99<1s; repeatable")
	f.StringSliceVar(&cujs, "cuj", nil, "load only these CUJs (repeatable or comma-separated)")
	f.Var(&every, "progress", "interval of plain progress lines when stderr is not a terminal")
	outputFlag(f, &output)
	return cmd
}

// checkSendsSomething refuses a plan (or this shard of it) that holds no
// request at all: "1/m for 30s" rounds down to nothing.
func checkSendsSomething(p *load.Plan) error {
	n, ok := p.Total()
	if !ok {
		return nil
	}
	if n == 0 {
		return usageErrorf("the plan sends no request: %s holds less than one; give a higher rate or a longer duration", strings.Join(planStages(p), " then "))
	}
	if of := max(p.Shard.Of, 1); p.Shard.Index >= n {
		return usageErrorf("shard %s sends no request: the plan holds %d, and request k goes to shard k mod %d", p.Shard, n, of)
	}
	return nil
}

func planStages(p *load.Plan) []string {
	out := make([]string, len(p.Stages))
	for i, st := range p.Stages {
		out[i] = st.String()
	}
	return out
}

// lastError is the last transport error the run saw, for a headline.
func lastError(r *load.Report) string {
	for _, c := range r.CUJs {
		if c.LastError != "" {
			return c.LastError
		}
	}
	return "no answer"
}

func cujReports(p *load.Plan) []load.CUJReport {
	out := make([]load.CUJReport, len(p.CUJs))
	for i, c := range p.CUJs {
		out[i].Name = c.Name
	}
	return out
}

func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) >> 1 // fits a signed JSON reader too
}

// startProgress prints progress to w until the returned stop is called: a
// line rewritten in place on a terminal, plain lines otherwise.
func startProgress(ctx context.Context, gen *load.Generator, w io.Writer, every time.Duration) func() {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if !tty && every <= 0 {
		return func() {}
	}
	interval := every
	if tty {
		interval = time.Second / 2
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if _, ok := gen.Started(); !ok {
					continue
				}
				if tty {
					fmt.Fprintf(w, "\r\x1b[K%s", gen.Progress())
				} else {
					fmt.Fprintln(w, gen.Progress())
				}
			case <-done:
				if tty {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-ctx.Done():
				// Keep printing while the run drains; stop() ends the loop.
				ctx = context.Background()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func printLoadReport(w io.Writer, r *load.Report) error {
	t := newTable(w, "CUJ", "SHARE", "SENT", "RATE/S", "2XX", "3XX", "4XX", "5XX", "ERRORS",
		"P50", "P90", "P99", "P99.9", "MAX", "LATE", "DROPPED")
	row := func(c load.CUJReport) {
		t.row(c.Name, dash(c.Share), c.Sent, fmt.Sprintf("%.1f", c.Rate), c.Status.C2xx, c.Status.C3xx, c.Status.C4xx,
			c.Status.C5xx, c.Errors, ms(c.Latency.P50), ms(c.Latency.P90), ms(c.Latency.P99), ms(c.Latency.P999),
			ms(c.Latency.Max), c.Late, c.Dropped)
	}
	for _, c := range r.CUJs {
		row(c)
	}
	total := r.Total
	total.Name = "(total)"
	row(total)
	if err := t.flush(); err != nil {
		return err
	}
	state := "completed"
	if r.Interrupted {
		state = "interrupted"
	}
	fmt.Fprintf(w, "\n%s after %s: %s, seed %d, shard %s, %d users, target %s\n",
		state, r.Elapsed, strings.Join(r.Plan, " then "), r.Seed, r.Shard, r.Users, r.Target)
	fmt.Fprintf(w, "schedule lag (actual − intended send): p50 %s, p99 %s, max %s\n",
		ms(r.ScheduleLag.P50), ms(r.ScheduleLag.P99), ms(r.ScheduleLag.Max))
	for _, c := range r.CUJs {
		if c.LastError != "" {
			fmt.Fprintf(w, "%s: last error: %s\n", c.Name, c.LastError)
		}
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintln(w)
		for _, th := range r.Thresholds {
			verdict := "ok  "
			if !th.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(w, "%s %s on %s: %s\n", verdict, th.Threshold, th.CUJ, th.Value)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ms formats a latency for the table: milliseconds with enough digits.
func ms(d spec.Duration) string {
	v := time.Duration(d)
	switch {
	case v == 0:
		return "-"
	case v < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(v)/1e6)
	case v < 10*time.Second:
		return fmt.Sprintf("%.0fms", float64(v)/1e6)
	}
	return fmt.Sprintf("%.1fs", v.Seconds())
}

// Flag types for load's domain syntax.

type rateFlag struct {
	r   spec.Rate
	set bool
}

func (f *rateFlag) String() string {
	if !f.set {
		return ""
	}
	return f.r.String()
}
func (f *rateFlag) Set(s string) error {
	r, err := spec.ParseRate(s)
	if err != nil {
		return err
	}
	f.r, f.set = r, true
	return nil
}
func (f *rateFlag) Type() string { return "rate" }

type stagesFlag []load.Stage

func (f *stagesFlag) String() string {
	parts := make([]string, len(*f))
	for i, s := range *f {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}
func (f *stagesFlag) Set(s string) error {
	st, err := load.ParseStage(s)
	if err != nil {
		return err
	}
	*f = append(*f, st)
	return nil
}
func (f *stagesFlag) Type() string { return "stage" }

type durationFlag time.Duration

func (f *durationFlag) String() string { return spec.FormatDuration(time.Duration(*f)) }
func (f *durationFlag) Set(s string) error {
	d, err := spec.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("must not be negative, got %s", s)
	}
	*f = durationFlag(d)
	return nil
}
func (f *durationFlag) Type() string { return "duration" }

type shardFlag struct{ s load.Shard }

func (f *shardFlag) String() string { return f.s.String() }
func (f *shardFlag) Set(s string) error {
	sh, err := load.ParseShard(s)
	if err != nil {
		return err
	}
	f.s = sh
	return nil
}
func (f *shardFlag) Type() string { return "i/N" }

type thresholdsFlag struct{ t []load.Threshold }

func (f *thresholdsFlag) String() string {
	parts := make([]string, len(f.t))
	for i, t := range f.t {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}
func (f *thresholdsFlag) Set(s string) error {
	t, err := load.ParseThreshold(s)
	if err != nil {
		return err
	}
	f.t = append(f.t, t)
	return nil
}
func (f *thresholdsFlag) Type() string { return "threshold" }

type headersFlag struct{ h http.Header }

func (f *headersFlag) String() string {
	var parts []string
	for k, vs := range f.h {
		for _, v := range vs {
			parts = append(parts, k+": "+v)
		}
	}
	return strings.Join(parts, ", ")
}
func (f *headersFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want 'Name: value', got %q", s)
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	return nil
}
func (f *headersFlag) Type() string { return "header" }
