// Command bench measures slolab side by side with the tools people would use
// instead, in one session on one machine, and regenerates docs/benchmarks.md
// from bench/benchmarks.tmpl.md with the figures:
//
//   - profile: allocations per request and the CPU profile's top entries of
//     the proxy's request path (go test -bench ProxyLoopback in ./proxy);
//   - proxy: throughput, CPU per request and p50/p99 of the upstream
//     directly, nginx, a plain httputil.ReverseProxy (tuned, and with the
//     default transport), Toxiproxy and slolab (no rules; 20 idle rules; one
//     active rule on another route), under wrk and hey (closed loop) and
//     slolab's open-model generator at half of nginx's saturation rate
//     (found first with the same generator), interleaved rounds, with
//     issue 18's goals (a rule's cost judged from CPU time per request);
//   - exact: injected counts of slolab's counter rule vs a Bernoulli draw per
//     request (Envoy, Istio) vs a draw per connection (Toxiproxy), simulated;
//   - delay: intended vs observed for 1 s delays on 1% of requests at
//     1,000 req/s through a real slolab proxy;
//   - load: the highest rate sent in full with p99 schedule lag under
//     10 ms, slolab's generator vs vegeta, both sending every planned
//     request however late; their CPU per request and peak memory;
//   - realtime: load's real-time accuracy tests (SLOLAB_REALTIME=1);
//   - slo: status of 10,000 SLOs over 30 days of minute buckets (the
//     benchmark in bench/slo);
//   - slo-prometheus: `slo status` of 200 SLOs from a real Prometheus holding
//     30 days of three members' metrics, from the recorded per-minute
//     increases and from the counters;
//   - errclass: the proxy's throughput with error classification on and off,
//     on successes and on errors;
//   - memory: peak RSS of the proxies holding 10,000 connections.
//
// `make bench` runs bench/run.sh, which installs the peers and runs this.
// The defaults finish in about 15 minutes on two cores, plus 10 to 15 the
// first time slo-prometheus builds its 30 days of data (cached after); flags make runs
// longer or select sections:
//
//	go run ./bench                         # everything
//	go run ./bench -only proxy -rounds 5 -wrk-duration 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"slolab.dev/slolab/spec"
)

var allSections = []string{"exact", "slo", "slo-prometheus", "profile", "proxy", "errclass", "delay", "load", "realtime", "memory"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

type config struct {
	only          []string
	docs, tmpl    string
	proxy         proxyConfig
	exact         exactConfig
	delay         delayConfig
	loadgen       loadgenConfig
	memory        memoryConfig
	slo           sloConfig
	promSLO       promSLOConfig
	profile       profileConfig
	exactRate     string
	delayShare    string
	loadRates     string
	onlyFlag      string
	printSections bool
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.onlyFlag, "only", strings.Join(allSections, ","), "sections to run, comma-separated, of "+strings.Join(allSections, ","))
	fs.StringVar(&c.docs, "docs", "docs/benchmarks.md", "the document to regenerate (empty: print the sections only)")
	fs.StringVar(&c.tmpl, "template", "bench/benchmarks.tmpl.md", "the document's template")
	fs.BoolVar(&c.printSections, "print", false, "also print each section on stdout")

	fs.IntVar(&c.proxy.Rounds, "rounds", 3, "proxy: interleaved rounds")
	fs.DurationVar(&c.proxy.WrkDuration, "wrk-duration", 5*time.Second, "proxy: wrk run per target per round")
	fs.DurationVar(&c.proxy.HeyDuration, "hey-duration", 3*time.Second, "proxy: hey run per target per round (0: no hey)")
	fs.IntVar(&c.proxy.Conns, "conns", 32, "proxy: wrk and hey connections")
	fs.IntVar(&c.proxy.Threads, "threads", 2, "proxy: wrk threads")
	fs.IntVar(&c.proxy.RulePairs, "rule-pairs", 6, "proxy: wrk runs of slolab without rules and with them back to back, for what rules cost on other routes")
	fs.DurationVar(&c.proxy.RuleFor, "rule-duration", 3*time.Second, "proxy: each wrk run of the rule-cost phase")
	fs.IntVar(&c.proxy.OpenRate, "open-rate", 0, "proxy: open-model rate, requests per second (0: half of nginx's saturation rate, found in the run by open-model rungs)")
	fs.DurationVar(&c.proxy.OpenFor, "open-duration", 4*time.Second, "proxy: open-model run per target per round")

	fs.StringVar(&c.exactRate, "exact-rate", "0.1%", "exact: the fault rate")
	fs.IntVar(&c.exact.Requests, "exact-requests", 10000, "exact: requests per run")
	fs.IntVar(&c.exact.Conns, "exact-conns", 32, "exact: connections carrying them")
	fs.IntVar(&c.exact.Runs, "exact-runs", 20, "exact: runs, one seed each")
	fs.Uint64Var(&c.exact.Seed, "exact-seed", 1, "exact: seed of the first run (run i uses seed+i)")

	fs.IntVar(&c.delay.Rate, "delay-rate", 1000, "delay: requests per second")
	fs.StringVar(&c.delayShare, "delay-share", "1%", "delay: share of requests delayed")
	fs.DurationVar(&c.delay.Delay, "delay", time.Second, "delay: the injected delay")
	fs.DurationVar(&c.delay.Duration, "delay-duration", 10*time.Second, "delay: each run's length")
	fs.IntVar(&c.delay.Rounds, "delay-rounds", 2, "delay: rounds of one run without and one with the rule")

	fs.IntVar(&c.loadgen.Rounds, "load-rounds", 3, "load: rounds of the ladder per generator")
	fs.DurationVar(&c.loadgen.Step, "load-step", 3*time.Second, "load: each rung's length (whole seconds)")
	fs.StringVar(&c.loadRates, "load-rates", "500,1000,2000,3000,4000,6000,8000,12000,16000,24000", "load: the ladder of rates, ascending")
	fs.DurationVar(&c.loadgen.Bar, "load-bar", 10*time.Millisecond, "load: the p99 schedule lag a sustained rate stays under")
	fs.IntVar(&c.loadgen.Through, "load-through", 16000, "load: every generator runs every rung up to this rate")
	fs.IntVar(&c.loadgen.RSSRate, "load-rss-rate", 12000, "load: the rate at which the generators' peak memory is compared")

	fs.IntVar(&c.slo.Iterations, "slo-iterations", 20, "slo: statuses timed")

	cache, _ := os.UserCacheDir()
	if cache != "" {
		cache = filepath.Join(cache, "slolab-bench")
	}
	fs.IntVar(&c.promSLO.CUJs, "slo-prom-cujs", 100, "slo-prometheus: CUJs, an availability and a latency SLO each")
	fs.IntVar(&c.promSLO.Members, "slo-prom-members", 3, "slo-prometheus: proxies whose metrics Prometheus holds")
	fs.IntVar(&c.promSLO.Days, "slo-prom-days", 30, "slo-prometheus: days of minute-by-minute scrapes")
	fs.IntVar(&c.promSLO.Iterations, "slo-prom-iterations", 5, "slo-prometheus: statuses timed from the recorded increases")
	fs.BoolVar(&c.promSLO.Counters, "slo-prom-counters", false, "slo-prometheus: also time one status from the counters and compare the two (tens of minutes over 30 days)")
	fs.StringVar(&c.promSLO.Cache, "slo-prom-cache", cache, "slo-prometheus: keep the backfilled TSDB here between runs (empty: rebuild every run)")
	fs.DurationVar(&c.promSLO.Timeout, "slo-prom-timeout", 15*time.Minute, "slo-prometheus: Prometheus' query timeout (the status from the counters is slow)")

	fs.IntVar(&c.profile.Requests, "profile-requests", 20000, "profile: requests per sub-benchmark of the request path's profile")

	fs.IntVar(&c.memory.Conns, "mem-conns", 10000, "memory: connections held at once")
	fs.IntVar(&c.memory.Parallel, "mem-parallel", 200, "memory: connections opened at a time")
	fs.IntVar(&c.memory.Wave, "mem-wave", 2000, "memory: requests in flight at once in the burst over the held connections")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(c.onlyFlag, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allSections, s) {
			return nil, fmt.Errorf("-only: unknown section %q, want some of %s", s, strings.Join(allSections, ","))
		}
		c.only = append(c.only, s)
	}
	var err error
	if c.exact.Rate, err = spec.ParsePercent(c.exactRate); err != nil {
		return nil, fmt.Errorf("-exact-rate: %w", err)
	}
	if c.delay.Share, err = spec.ParsePercent(c.delayShare); err != nil {
		return nil, fmt.Errorf("-delay-share: %w", err)
	}
	one := spec.NewRatio(1, 1)
	if c.exact.Rate.Cmp(one) > 0 || c.delay.Share.Cmp(one) > 0 {
		return nil, fmt.Errorf("-exact-rate and -delay-share: want at most 100%%, got %s and %s", c.exact.Rate, c.delay.Share)
	}
	for _, r := range strings.Split(c.loadRates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-load-rates: want positive integers, got %q", r)
		}
		if k := len(c.loadgen.Rates); k > 0 && n <= c.loadgen.Rates[k-1] {
			return nil, fmt.Errorf("-load-rates: want ascending rates, got %d after %d", n, c.loadgen.Rates[k-1])
		}
		c.loadgen.Rates = append(c.loadgen.Rates, n)
	}
	switch {
	case c.proxy.Rounds < 1 || c.exact.Runs < 1 || c.delay.Rounds < 1 || c.loadgen.Rounds < 1 || c.slo.Iterations < 1 || c.promSLO.Iterations < 1 || c.profile.Requests < 1:
		return nil, fmt.Errorf("rounds and runs must be at least 1")
	case c.loadgen.Step < time.Second || c.loadgen.Step%time.Second != 0:
		return nil, fmt.Errorf("-load-step: want whole seconds, got %s", c.loadgen.Step)
	case c.exact.Conns < 1 || c.exact.Requests < c.exact.Conns:
		return nil, fmt.Errorf("-exact-requests must be at least -exact-conns (%d)", c.exact.Conns)
	case c.memory.Conns < 1 || c.memory.Parallel < 1 || c.memory.Wave < 1:
		return nil, fmt.Errorf("-mem-conns, -mem-parallel and -mem-wave must be positive")
	case c.promSLO.CUJs < 1 || c.promSLO.Members < 1 || c.promSLO.Days < 1:
		return nil, fmt.Errorf("-slo-prom-cujs, -slo-prom-members and -slo-prom-days must be positive")
	}
	return c, nil
}

func run(ctx context.Context, args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	tmpl, err := os.ReadFile(cfg.tmpl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: reading the template (run from the repository root):", err)
		return 2
	}
	started, mach := time.Now(), describeMachine()
	progress("bench: %s; load average %s; sections %s", mach.CPU, mach.LoadAvg, strings.Join(cfg.only, ","))
	s, err := newSession(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	var failed []string
	defer func() { s.close(len(failed) > 0) }()
	needPeers := slices.ContainsFunc(cfg.only, func(x string) bool { return x == "proxy" || x == "errclass" || x == "load" || x == "memory" })
	if s.peers, err = findPeers(ctx); err != nil && needPeers {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}

	fresh := map[string]string{}
	for _, name := range cfg.only {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		progress("bench: section %s", name)
		var body string
		var err error
		switch name {
		case "proxy":
			body, err = runProxy(s, cfg.proxy)
		case "errclass":
			body, err = runErrclass(s, cfg.proxy)
		case "exact":
			body = runExact(cfg.exact)
		case "delay":
			body, err = runDelay(s, cfg.delay)
		case "load":
			body, err = runLoadgen(s, cfg.loadgen)
		case "realtime":
			body, err = runRealtime(s)
		case "slo":
			body, err = runSLO(s, cfg.slo)
		case "slo-prometheus":
			body, err = runPromSLO(s, cfg.promSLO)
		case "profile":
			body, err = runProfile(s, cfg.profile)
		case "memory":
			body, err = runMemory(s, cfg.memory)
		}
		if err != nil {
			// Keep the document's previous figures for this section.
			fmt.Fprintf(os.Stderr, "bench: section %s failed: %v\n", name, err)
			failed = append(failed, name)
			continue
		}
		progress("bench: section %s done in %s", name, time.Since(t0).Round(time.Second))
		if cfg.printSections {
			fmt.Printf("## %s\n\n%s\n", name, body)
		}
		fresh[name] = body
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted; docs not rewritten")
		return 1
	}
	var old []byte
	if cfg.docs != "" {
		if old, err = os.ReadFile(cfg.docs); err != nil && !os.IsNotExist(err) {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	fresh["session"] = renderSession(cfg, mach, s.peers, started, fresh, failed, string(old))
	if cfg.docs != "" {
		doc, err := fill(string(tmpl), string(old), fresh)
		if err == nil {
			err = os.WriteFile(cfg.docs, []byte(doc), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		progress("bench: wrote %s (%s in all)", cfg.docs, time.Since(started).Round(time.Second))
	}
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "bench: sections failed: %s (their previous figures were kept)\n", strings.Join(failed, ", "))
		return 1
	}
	return 0
}

func renderSession(cfg *config, m machine, p peers, started time.Time, fresh map[string]string, failed []string, old string) string {
	var b strings.Builder
	ran := make([]string, 0, len(fresh))
	for _, name := range cfg.only {
		if _, ok := fresh[name]; ok {
			ran = append(ran, name)
		}
	}
	cmd := "make bench"
	if len(os.Args) > 1 {
		cmd = "go run ./bench " + strings.Join(os.Args[1:], " ")
	}
	fmt.Fprintf(&b, "- Date: %s UTC; the run took %s.\n", started.UTC().Format("2006-01-02 15:04"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "- Command: `%s` (sections run: %s", cmd, strings.Join(ran, ", "))
	if len(failed) > 0 {
		fmt.Fprintf(&b, "; failed, previous figures kept: %s", strings.Join(failed, ", "))
	}
	b.WriteString(").\n")
	if kept := keptSections(old, fresh); len(kept) > 0 {
		fmt.Fprintf(&b, "- Kept from earlier runs, not measured in this session: %s.\n", strings.Join(kept, ", "))
	}
	fmt.Fprintf(&b, "- Machine: %d cores (%s), %.0f GiB, Linux %s, %s.\n", m.Cores, m.CPU, m.MemGiB, m.Kernel, m.Go)
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min): %s before the run, %s after it. Other jobs shared the machine whenever the first figure is well above 0.\n", m.LoadAvg, loadAvg())
	var vs []string
	for _, k := range []string{"wrk", "hey", "nginx", "vegeta", "toxiproxy"} {
		if v := p.versions[k]; v != "" {
			vs = append(vs, k+" "+v)
		}
	}
	if len(vs) > 0 {
		fmt.Fprintf(&b, "- Peers: %s.\n", strings.Join(vs, ", "))
	}
	return b.String()
}

var runDate = regexp.MustCompile(`^Run (\d{4}-\d\d-\d\d \d\d:\d\d UTC)`)

// keptSections names the sections of the old document this run did not
// measure, each with the date its first line gives.
func keptSections(old string, fresh map[string]string) []string {
	var kept []string
	for _, name := range allSections {
		if _, ok := fresh[name]; ok {
			continue
		}
		body, ok := section(old, name)
		if !ok || strings.HasPrefix(body, "*Not run yet") {
			continue
		}
		when := "date unknown"
		if m := runDate.FindStringSubmatch(body); m != nil {
			when = "run " + m[1]
		}
		kept = append(kept, fmt.Sprintf("%s (%s)", name, when))
	}
	return kept
}
