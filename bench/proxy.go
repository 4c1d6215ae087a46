package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/load"
)

// proxyConfig sizes the proxy benchmark.
type proxyConfig struct {
	Rounds      int
	WrkDuration time.Duration
	HeyDuration time.Duration // 0 leaves hey out
	Conns       int
	Threads     int
	OpenRate    int // 0: half of nginx's saturation rate (its wrk req/s) in this run
	OpenFor     time.Duration
	// RulePairs and RuleFor size the rule-cost phase: RulePairs times, wrk
	// for RuleFor against slolab without rules and with them, back to
	// back, the order reversed every other time.
	RulePairs int
	RuleFor   time.Duration
}

type proxyTarget struct {
	name, addr, note string
	pid              int // the process (with its children) whose CPU time is counted
}

// proxySample is one target's figures in one round of the closed loop.
type proxySample struct {
	wrk, hey clientResult
	cpu      time.Duration // the target's CPU time per wrk request
	cpuTotal time.Duration // the target's CPU time over the wrk run
}

// clientResult is what one load tool measured against one target.
type clientResult struct {
	rps      float64
	requests int64
	p50, p99 time.Duration
	errors   int64         // socket errors, timeouts and non-2xx responses
	failed   bool          // an open-model run that did not finish, or did not hold its rate
	lag      time.Duration // an open-model run's p99 schedule lag: how late the generator sent
}

const proxySpec = "bench/proxy/bench.yaml"

// tunedIdle is the idle connections per host of the tuned httputil
// baseline: enough for every connection wrk and hey open.
const tunedIdle = 256

// runProxy measures the upstream directly, nginx, a plain httputil proxy
// (tuned, and with net/http's default transport), Toxiproxy and slolab (no
// rules; 20 idle rules; one active rule on another route) with wrk and hey
// in interleaved rounds with the order rotated, then each of them at half
// of nginx's saturation rate with slolab's open-model generator, and
// renders the medians as ratios, with the goals of issue 18.
func runProxy(s *session, cfg proxyConfig) (string, error) {
	started, load := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	targets := []proxyTarget{{name: "direct", addr: up, note: "the upstream itself", pid: g.cmds[len(g.cmds)-1].Process.Pid}}

	nginxAddr, err := startNginx(s, g, "proxy", up, 4096)
	if err != nil {
		return "", err
	}
	targets = append(targets, proxyTarget{"nginx", nginxAddr, "proxy_pass, upstream keepalive 64, workers auto", g.cmds[len(g.cmds)-1].Process.Pid})

	for _, h := range []struct {
		name, note string
		idle       int
	}{
		{"httputil", fmt.Sprintf("httputil.NewSingleHostReverseProxy, MaxIdleConnsPerHost %d", tunedIdle), tunedIdle},
		{"httputil-default", "the same with net/http's default transport: 2 idle connections per host, so most requests open a new one", 0},
	} {
		cmd, addr, err := g.start(true, s.plain, "-upstream", "http://"+up, "-max-idle-per-host", strconv.Itoa(h.idle))
		if err != nil {
			return "", err
		}
		targets = append(targets, proxyTarget{h.name, addr, h.note, cmd.Process.Pid})
	}

	toxAddr, err := startToxiproxy(s, g, up)
	if err != nil {
		return "", err
	}
	targets = append(targets, proxyTarget{"toxiproxy", toxAddr, "no toxics (copies TCP bytes)", g.cmds[len(g.cmds)-1].Process.Pid})

	for _, v := range []struct {
		name, note string
		rules      func(ctx context.Context, admin string) error
	}{
		{"slolab", "no rules", func(context.Context, string) error { return nil }},
		{"slolab-20-idle", "20 rules on another CUJ", idleRules},
		{"slolab-1-active", "a 1 ms delay on every request of another route", activeRule},
	} {
		listen, admin, cmd, err := s.slolabProxy(g, proxySpec, up)
		if err != nil {
			return "", err
		}
		if err := v.rules(s.ctx, admin); err != nil {
			return "", err
		}
		targets = append(targets, proxyTarget{v.name, listen, v.note, cmd.Process.Pid})
	}
	for _, t := range targets {
		if err := waitHTTP(s.ctx, t.addr); err != nil {
			return "", fmt.Errorf("%s: %w", t.name, err)
		}
	}

	results := map[string][]proxySample{}
	for r := range cfg.Rounds {
		for _, t := range rotate(targets, r) {
			smp, err := measureProxy(s, cfg, t)
			if err != nil {
				return "", fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			results[t.name] = append(results[t.name], smp)
			progress("proxy round %d/%d %-16s wrk %7.0f/s p99 %-9s cpu %5.1fµs/req hey %7.0f/s p99 %s",
				r+1, cfg.Rounds, t.name, smp.wrk.rps, fmtDur(smp.wrk.p99), micros(smp.cpu), smp.hey.rps, fmtDur(smp.hey.p99))
		}
	}
	ruleRuns, err := measureRuleCost(s, cfg, targets)
	if err != nil {
		return "", err
	}
	rate := cfg.OpenRate
	var sat saturation
	if rate == 0 { // half of nginx's saturation under the open model, to the hundred
		closed := int(median(pick(results["nginx"], func(p proxySample) float64 { return p.wrk.rps })))
		if sat, err = findSaturation(s, cfg, targets[1], closed); err != nil {
			return "", err
		}
		rate = 0 // no rung held: the open model's figures would be the machine's, not the proxies'
		if sat.rate > 0 {
			rate = toHundred(sat.rate / 2)
		}
	}
	open := map[string][]clientResult{}
	for r := range cfg.Rounds * min(rate, 1) {
		for _, t := range rotate(targets, r) {
			res, err := measureOpen(s, cfg, t, rate)
			if err != nil {
				if s.ctx.Err() != nil {
					return "", err
				}
				progress("proxy open %d/%d %-16s %d/s did not finish: %v", r+1, cfg.Rounds, t.name, rate, err)
				res = clientResult{failed: true}
			}
			open[t.name] = append(open[t.name], res)
			progress("proxy open %d/%d %-16s %d/s p50 %s p99 %s errors %d of %d", r+1, cfg.Rounds, t.name, rate, fmtDur(res.p50), fmtDur(res.p99), res.errors, res.requests)
		}
	}
	return renderProxy(s, cfg, targets, results, ruleRuns, open, rate, sat, started, load), nil
}

// ruleVariants are the slolab targets whose cost is measured against
// slolab without rules, in the rule-cost phase.
var ruleVariants = []string{"slolab", "slolab-20-idle", "slolab-1-active"}

// measureRuleCost runs wrk against slolab without rules and with them,
// back to back, cfg.RulePairs times, the order reversed every other time
// (A B C, C B A, …): whatever the machine does drifts over both alike.
func measureRuleCost(s *session, cfg proxyConfig, targets []proxyTarget) (map[string][]proxySample, error) {
	var ts []proxyTarget
	for _, name := range ruleVariants {
		for _, t := range targets {
			if t.name == name {
				ts = append(ts, t)
			}
		}
	}
	short := cfg
	short.WrkDuration, short.HeyDuration = cfg.RuleFor, 0
	out := map[string][]proxySample{}
	for i := range cfg.RulePairs {
		order := slices.Clone(ts)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			smp, err := measureProxy(s, short, t)
			if err != nil {
				return nil, fmt.Errorf("rule cost %d %s: %w", i+1, t.name, err)
			}
			out[t.name] = append(out[t.name], smp)
			progress("proxy rule cost %d/%d %-16s wrk %7.0f/s cpu %5.1fµs/req", i+1, cfg.RulePairs, t.name, smp.wrk.rps, micros(smp.cpu))
		}
	}
	return out, nil
}

// saturation is the highest rate at which an open-model run against a
// target held, and the rungs tried to find it.
type saturation struct {
	rate  int // 0: no rung held
	rungs []saturationRung
}

type saturationRung struct {
	rate int
	res  clientResult
	why  string // why the run did not hold the rate; "" when it did
}

// saturationBar is the p99 latency, from intended send times, under which
// an open-model run held its rate. Past saturation a queue builds up for
// the whole run and its p99 grows to seconds; below it, the p99 on two
// shared cores stays within a few milliseconds.
const saturationBar = 50 * time.Millisecond

// generatorBar is the p99 schedule lag above which the generator, not the
// target, fell behind the rate (the load section's bar).
const generatorBar = 10 * time.Millisecond

// notHeld says why an open-model run did not hold its rate, or "".
func notHeld(res clientResult) string {
	switch {
	case res.failed && res.requests == 0:
		return "the run did not finish"
	case res.failed:
		return fmt.Sprintf("%d of %d requests dropped or failed", res.errors, res.requests)
	case res.lag > generatorBar:
		return fmt.Sprintf("the generator sent late (p99 schedule lag %s)", fmtDur(res.lag))
	case res.p99 > saturationBar:
		return fmt.Sprintf("p99 %s, over %s: requests queued", fmtDur(res.p99), fmtDur(saturationBar))
	}
	return ""
}

func toHundred(r int) int { return max(100, r/100*100) }

// rateText is an open-model rate, or "—" for none found.
func rateText(rate int) string {
	if rate == 0 {
		return "—"
	}
	return fmt.Sprintf("%d req/s", rate)
}

// findSaturation finds the highest rate, to the hundred, that an
// open-model run against t holds (notHeld), by rungs 25% apart: up from
// half of guess (its closed-loop throughput) until a rung does not hold, or
// down until one does.
func findSaturation(s *session, cfg proxyConfig, t proxyTarget, guess int) (saturation, error) {
	var sat saturation
	r, up := toHundred(guess/2), true
	for i := range 16 {
		res, err := measureOpen(s, cfg, t, r)
		if err != nil {
			if s.ctx.Err() != nil {
				return sat, err
			}
			res = clientResult{failed: true}
		}
		why := notHeld(res)
		sat.rungs = append(sat.rungs, saturationRung{r, res, why})
		progress("proxy saturation %-8s %6d/s p99 %-9s lag %-9s %s", t.name, r, fmtDur(res.p99), fmtDur(res.lag), why)
		if i == 0 {
			up = why == ""
		}
		switch {
		case up && why != "":
			return sat, nil
		case up:
			sat.rate = r
			r = max(r+100, toHundred(r*5/4))
		case why == "":
			sat.rate = r
			return sat, nil
		case r <= 100:
			return sat, nil
		default:
			r = toHundred(r * 4 / 5)
		}
	}
	return sat, nil
}

// rotate returns the targets in round r's order, so no target always runs
// first or last.
func rotate(targets []proxyTarget, r int) []proxyTarget {
	k := r % len(targets)
	return append(slices.Clone(targets[k:]), targets[:k]...)
}

// startNginx runs nginx as a reverse proxy to up, with upstream keep-alive,
// as one would configure it, and returns its address.
func startNginx(s *session, g *group, name, up string, workerConns int) (string, error) {
	dir := filepath.Join(s.dir, "nginx-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	addr := freeAddr()
	conf := fmt.Sprintf(`worker_processes auto;
worker_rlimit_nofile %[4]d;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections %[4]d; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream app { server %[2]s; keepalive 64; }
  server {
    listen %[3]s backlog=4096;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`, dir, up, addr, workerConns)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return "", err
	}
	if _, _, err := g.start(false, s.peers.nginx, "-p", dir, "-c", path); err != nil {
		return "", err
	}
	return addr, waitHTTP(s.ctx, addr)
}

// startToxiproxy runs Toxiproxy's server with one proxy to up and no toxics.
func startToxiproxy(s *session, g *group, up string) (string, error) {
	api, listen := freeAddr(), freeAddr()
	host, port, _ := net.SplitHostPort(api)
	if _, _, err := g.start(false, s.peers.toxiproxy, "-host", host, "-port", port); err != nil {
		return "", err
	}
	body := fmt.Sprintf(`{"name": "bench", "listen": %q, "upstream": %q, "enabled": true}`, listen, up)
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(s.ctx, "POST", "http://"+api+"/proxies", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				return listen, waitHTTP(s.ctx, listen)
			}
			return "", fmt.Errorf("toxiproxy: %s %s", resp.Status, b)
		}
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			return "", fmt.Errorf("toxiproxy API: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func idleRules(ctx context.Context, admin string) error {
	for i := range 20 {
		body := fmt.Sprintf(`{"match": {"cuj": "other"}, "status": 500, "rate": "%d%%", "ttl": "24h"}`, i+1)
		if err := putRule(ctx, admin, fmt.Sprintf("idle-%02d", i), body); err != nil {
			return err
		}
	}
	return nil
}

func activeRule(ctx context.Context, admin string) error {
	return putRule(ctx, admin, "active-delay", `{"match": {"cuj": "other", "route": "GET /other/{id}"}, "delay": "1ms", "ttl": "24h"}`)
}

func measureProxy(s *session, cfg proxyConfig, t proxyTarget) (proxySample, error) {
	var smp proxySample
	url := "http://" + t.addr + "/"
	cpu0 := cpuTime(t.pid)
	out, err := exec.CommandContext(s.ctx, s.peers.wrk, fmt.Sprintf("-t%d", cfg.Threads), fmt.Sprintf("-c%d", cfg.Conns),
		"-d"+durSeconds(cfg.WrkDuration), "--latency", url).CombinedOutput()
	if err != nil {
		return smp, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	cpu := cpuTime(t.pid) - cpu0
	if smp.wrk, err = parseWrk(string(out)); err != nil {
		return smp, err
	}
	smp.cpuTotal = cpu
	if smp.wrk.requests > 0 {
		smp.cpu = cpu / time.Duration(smp.wrk.requests)
	}
	if cfg.HeyDuration > 0 {
		out, err := exec.CommandContext(s.ctx, s.peers.hey, "-z", durSeconds(cfg.HeyDuration), "-c", strconv.Itoa(cfg.Conns), url).CombinedOutput()
		if err != nil {
			return smp, fmt.Errorf("hey: %w\n%s", err, out)
		}
		if smp.hey, err = parseHey(string(out)); err != nil {
			return smp, err
		}
	}
	return smp, nil
}

// measureOpen runs slolab's open-model generator against a target at a
// fixed rate: latency from intended send times.
func measureOpen(s *session, cfg proxyConfig, t proxyTarget, rate int) (clientResult, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*cfg.OpenFor+30*time.Second)
	defer cancel()
	o, err := exec.CommandContext(ctx, s.slolab, "load", "--spec", proxySpec, "--cuj", "root", "--target", "http://"+t.addr,
		"--rate", fmt.Sprintf("%d/s", rate), "--duration", cfg.OpenFor.String(), "--seed", "1", "--progress", "0", "-o", "json").Output()
	if err != nil {
		return clientResult{}, fmt.Errorf("slolab load: %w", err)
	}
	res, err := parseLoadReport(o)
	// A run that dropped or failed more than 1% of its requests did not
	// hold the rate (the generator, or the target, could not keep up): its
	// percentiles are not the target's latency at that rate.
	res.failed = err == nil && res.errors*100 > max(res.requests, 1)
	return res, err
}

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ).
const clockTick = 10 * time.Millisecond

// cpuTime is the user and system CPU time of pid and its descendants
// (nginx's workers), from /proc/PID/stat.
func cpuTime(pid int) time.Duration {
	var ticks int64
	for _, p := range descendants(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		ticks += statTicks(string(b))
	}
	return time.Duration(ticks) * clockTick
}

// statTicks reads utime + stime (fields 14 and 15) from a /proc/PID/stat
// line, whose command name in parentheses may hold spaces.
func statTicks(stat string) int64 {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0
	}
	f := strings.Fields(stat[end+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// durSeconds formats d for wrk's and hey's duration flags, which take whole seconds.
func durSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int(d.Round(time.Second)/time.Second)))
}

var (
	rpsLine = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`) // wrk and hey print the same line
	wrkN    = regexp.MustCompile(`(\d+) requests in `)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkN2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	heyPct  = regexp.MustCompile(`(?m)^\s+(50|99)%+ in ([0-9.]+) secs`)
	heyCode = regexp.MustCompile(`(?m)^\s+\[(\d+)\]\s+(\d+) responses`)
	heyErrs = regexp.MustCompile(`(?ms)^Error distribution:\n(.*)`)
	heyErr  = regexp.MustCompile(`(?m)^\s+\[(\d+)\]\s`)
)

var wrkUnit = map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}

// parseWrk reads wrk --latency's summary.
func parseWrk(text string) (clientResult, error) {
	var r clientResult
	m := rpsLine.FindStringSubmatch(text)
	if m == nil {
		return r, fmt.Errorf("wrk output without Requests/sec:\n%s", text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if n := wrkN.FindStringSubmatch(text); n != nil {
		r.requests, _ = strconv.ParseInt(n[1], 10, 64)
	}
	for _, p := range wrkPct.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		d := time.Duration(v * float64(wrkUnit[p[3]]))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk output without its 50%% and 99%% latencies (--latency):\n%s", text)
	}
	for _, e := range wrkErr.FindAllStringSubmatch(text, -1) {
		for _, x := range e[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			r.errors += n
		}
	}
	if e := wrkN2xx.FindStringSubmatch(text); e != nil {
		n, _ := strconv.ParseInt(e[1], 10, 64)
		r.errors += n
	}
	return r, nil
}

// parseHey reads hey's default summary.
func parseHey(text string) (clientResult, error) {
	var r clientResult
	m := rpsLine.FindStringSubmatch(text)
	if m == nil {
		return r, fmt.Errorf("hey output without Requests/sec:\n%s", text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range heyPct.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		d := time.Duration(v * float64(time.Second))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	for _, c := range heyCode.FindAllStringSubmatch(text, -1) {
		if c[1] != "200" {
			n, _ := strconv.ParseInt(c[2], 10, 64)
			r.errors += n
		}
	}
	if e := heyErrs.FindStringSubmatch(text); e != nil {
		for _, c := range heyErr.FindAllStringSubmatch(e[1], -1) {
			n, _ := strconv.ParseInt(c[1], 10, 64)
			r.errors += n
		}
	}
	return r, nil
}

// parseLoadReport reads the totals of `slolab load -o json`.
func parseLoadReport(data []byte) (clientResult, error) {
	var rep load.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return clientResult{}, fmt.Errorf("slolab load -o json: %w", err)
	}
	t := rep.Total
	return clientResult{rps: t.Rate, requests: int64(t.Due), p50: time.Duration(t.Latency.P50), p99: time.Duration(t.Latency.P99),
		errors: int64(t.Errors + t.Dropped + t.Status.C4xx + t.Status.C5xx), lag: time.Duration(rep.ScheduleLag.P99)}, nil
}

func pick(ss []proxySample, f func(proxySample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func pickDur(ss []proxySample, f func(proxySample) time.Duration) time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return medianDur(out)
}

// openDur is the median over the open-model runs that finished (0 when none did).
func openDur(rs []clientResult, f func(clientResult) time.Duration) time.Duration {
	var out []time.Duration
	for _, r := range rs {
		if !r.failed {
			out = append(out, f(r))
		}
	}
	if len(out) == 0 {
		return 0
	}
	return medianDur(out)
}

// noAdded marks a p99 added that was not measured.
const noAdded = time.Duration(math.MinInt64)

// addedP99 is the median over rounds of a target's open-model p99 less the
// upstream's own in the same round, over the rounds where both runs held
// the rate; noAdded when none did. Pairing by round keeps a round that
// the machine slowed for everyone from counting as latency a proxy added.
func addedP99(target, direct []clientResult) time.Duration {
	var out []time.Duration
	for i := range min(len(target), len(direct)) {
		if !target[i].failed && !direct[i].failed {
			out = append(out, target[i].p99-direct[i].p99)
		}
	}
	if len(out) == 0 {
		return noAdded
	}
	return medianDur(out)
}

// saturationText says how the open model's rate was found: the rungs run
// against nginx, and which held.
func saturationText(sat saturation, rate int, d time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nginx's saturation rate: the highest rate at which a %s open-model run against nginx held, rungs 25%% apart from half its wrk throughput; a run held when under 1%% of its requests were dropped or failed, the generator's p99 schedule lag stayed under %s, and the p99 latency under %s. Rungs: ",
		d, fmtDur(generatorBar), fmtDur(saturationBar))
	for i, r := range sat.rungs {
		if i > 0 {
			b.WriteString("; ")
		}
		if r.why == "" {
			fmt.Fprintf(&b, "%d/s held (p99 %s)", r.rate, fmtDur(r.res.p99))
		} else {
			fmt.Fprintf(&b, "%d/s not (%s)", r.rate, r.why)
		}
	}
	if sat.rate == 0 {
		b.WriteString(". No rung held, so the open model did not run: on this machine at this time its figures would be the machine's stalls, not the proxies'.\n\n")
		return b.String()
	}
	fmt.Fprintf(&b, ". Saturation %d/s; the open model runs at half of it, %d/s.", sat.rate, rate)
	for _, r := range sat.rungs {
		if r.rate > sat.rate && strings.HasPrefix(r.why, "the generator") {
			b.WriteString(" A rung above it failed on the generator's own lateness, not on nginx: the rate found is what the generator sent on time on this machine, at or under nginx's saturation.")
			break
		}
	}
	b.WriteString("\n\n")
	return b.String()
}

// proxyGoal is one of issue 18's goals for the proxy, as measured.
type proxyGoal struct {
	figure, goal string
	got          float64
	shown        string // the measured column when a ratio would mislead; "" shows got
	met          bool
	text         string // the reading: what was measured, and what stands in the way when missed
}

func renderProxy(s *session, cfg proxyConfig, targets []proxyTarget, results, ruleRuns map[string][]proxySample, open map[string][]clientResult, rate int, sat saturation, started time.Time, load string) string {
	var b bytes.Buffer
	openFlag := strconv.Itoa(cfg.OpenRate) // 0: half of nginx's saturation
	runLine(&b, started, load, fmt.Sprintf("-only proxy -rounds %d -wrk-duration %s -hey-duration %s -rule-pairs %d -rule-duration %s -open-rate %s -open-duration %s",
		cfg.Rounds, cfg.WrkDuration, cfg.HeyDuration, cfg.RulePairs, cfg.RuleFor, openFlag, cfg.OpenFor))
	fmt.Fprintf(&b, "Closed loop: `wrk -t%d -c%d -d%s --latency` (wrk %s)", cfg.Threads, cfg.Conns, durSeconds(cfg.WrkDuration), s.peers.versions["wrk"])
	if cfg.HeyDuration > 0 {
		fmt.Fprintf(&b, " and `hey -z %s -c %d` (hey %s, which reports latencies to 0.1 ms)", durSeconds(cfg.HeyDuration), cfg.Conns, s.peers.versions["hey"])
	}
	fmt.Fprintf(&b, " against `GET /` of a raw HTTP/1.1 upstream (bench/load/server). Open model: `slolab load --rate %d/s` for %s", rate, cfg.OpenFor)
	if rate == 0 {
		b.WriteString(", not run (no rate found, below)")
	} else if cfg.OpenRate == 0 {
		b.WriteString(", half of nginx's saturation rate under the same generator in this run")
	}
	fmt.Fprintf(&b, "; latency from intended send times, and \"added\" is a target's p99 less the upstream's own in the same round (the median over rounds). "+
		"CPU per request is the target's user and system time (its workers' too, for nginx) over the wrk run, from /proc, divided by wrk's requests: it moves much less than req/s with how the machine's cores are shared. "+
		"Medians of %d interleaved rounds, the order rotated each round. nginx %s, Toxiproxy %s. The clients, the proxies and the upstream share the machine's cores, so absolute figures are low and only ratios carry over.\n\n",
		cfg.Rounds, s.peers.versions["nginx"], s.peers.versions["toxiproxy"])

	med := func(name string, f func(proxySample) float64) float64 { return median(pick(results[name], f)) }
	wrkRPS := func(p proxySample) float64 { return p.wrk.rps }
	heyRPS := func(p proxySample) float64 { return p.hey.rps }
	cpuOf := func(name string) time.Duration {
		return pickDur(results[name], func(p proxySample) time.Duration { return p.cpu })
	}
	base, tox, ngx := med("httputil", wrkRPS), med("toxiproxy", wrkRPS), med("nginx", wrkRPS)

	if cfg.OpenRate == 0 {
		b.WriteString(saturationText(sat, rate, cfg.OpenFor))
	}
	b.WriteString("Throughput (closed loop, req/s), with each target's CPU time per request:\n\n")
	b.WriteString("| target | setup | wrk req/s | × httputil | × toxiproxy | × nginx | CPU per request |")
	if cfg.HeyDuration > 0 {
		b.WriteString(" hey req/s | hey × httputil |")
	}
	b.WriteString("\n|---|---|---:|---:|---:|---:|---:|")
	if cfg.HeyDuration > 0 {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, t := range targets {
		rps := med(t.name, wrkRPS)
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %.1f µs |", t.name, t.note, rps, fmtRatio(rps/base), fmtRatio(rps/tox), fmtRatio(rps/ngx), micros(cpuOf(t.name)))
		if cfg.HeyDuration > 0 {
			h := med(t.name, heyRPS)
			fmt.Fprintf(&b, " %.0f | %s |", h, fmtRatio(h/med("httputil", heyRPS)))
		}
		b.WriteString("\n")
	}
	openP99 := func(name string) time.Duration {
		return openDur(open[name], func(r clientResult) time.Duration { return r.p99 })
	}
	directP99 := openP99("direct")
	added := func(name string) time.Duration { return addedP99(open[name], open["direct"]) }
	b.WriteString("\nLatency (medians over rounds; wrk and hey at full load, the open model at a fixed rate):\n\n")
	b.WriteString("| target | wrk p50 | wrk p99 |")
	if cfg.HeyDuration > 0 {
		b.WriteString(" hey p50 | hey p99 |")
	}
	fmt.Fprintf(&b, " open %d/s p50 | open %d/s p99 | p99 added | errors |\n|---|---:|---:|", rate, rate)
	if cfg.HeyDuration > 0 {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|---:|---:|---:|\n")
	for _, t := range targets {
		rs := results[t.name]
		var errs int64
		for _, x := range rs {
			errs += x.wrk.errors + x.hey.errors
		}
		failed := 0
		for _, x := range open[t.name] {
			errs += x.errors
			if x.failed {
				failed++
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", t.name, fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.wrk.p50 })),
			fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.wrk.p99 })))
		if cfg.HeyDuration > 0 {
			fmt.Fprintf(&b, " %s | %s |", fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.hey.p50 })),
				fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.hey.p99 })))
		}
		add := "—"
		if a := added(t.name); t.name != "direct" && a != noAdded {
			add = fmtDur(a)
		}
		p50, p99 := "—", "—"
		if openP99(t.name) > 0 {
			p50, p99 = fmtDur(openDur(open[t.name], func(r clientResult) time.Duration { return r.p50 })), fmtDur(openP99(t.name))
		}
		if failed > 0 {
			p99 += fmt.Sprintf(" (%d of %d runs did not hold the rate)", failed, len(open[t.name]))
		}
		fmt.Fprintf(&b, " %s | %s | %s | %d |\n", p50, p99, add, errs)
	}
	b.WriteString("\nPer round, wrk req/s: ")
	for i, t := range targets {
		if i > 0 {
			b.WriteString("; ")
		}
		rounds := make([]string, 0, len(results[t.name]))
		for _, x := range results[t.name] {
			rounds = append(rounds, fmt.Sprintf("%.0f", x.wrk.rps))
		}
		fmt.Fprintf(&b, "%s %s", t.name, strings.Join(rounds, ", "))
	}

	sl := med("slolab", wrkRPS)
	slAdded, ngxAdded := added("slolab"), added("nginx")
	if slAdded == noAdded || ngxAdded == noAdded {
		slAdded, ngxAdded = -1, -1 // not measured: no round held the rate for both
	}
	goals := proxyGoals(sl, tox, base, ruleCostOf(ruleRuns["slolab"], ruleRuns["slolab-1-active"]), cpuOf, slAdded, ngxAdded, rate)
	b.WriteString(".\n\nIssue 18's goals for the proxy, as this run measured them:\n\n| figure | measured | goal | |\n|---|---:|---:|---|\n")
	for _, g := range goals {
		v := "met"
		if !g.met {
			v = "**missed**"
		}
		shown := g.shown
		if shown == "" {
			shown = fmtRatio(g.got)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", g.figure, shown, g.goal, v)
	}
	b.WriteString("\nReading:\n\n")
	r := sl / base
	text := fmt.Sprintf("slolab (no rules) serves %.2f× the throughput of a plain httputil proxy tuned to keep %d idle connections under wrk", r, tunedIdle)
	if cfg.HeyDuration > 0 {
		text += fmt.Sprintf(" (%.2f× under hey)", med("slolab", heyRPS)/med("httputil", heyRPS))
	}
	b.WriteString(reading(verdict(r), text+fmt.Sprintf(", and %.2f× one with net/http's default transport.", sl/med("httputil-default", wrkRPS))))
	b.WriteString(reading(verdict(sl/tox), fmt.Sprintf("slolab serves %.2f× Toxiproxy's throughput (Toxiproxy without toxics only copies TCP bytes; it does not parse HTTP), at %.1f µs of CPU per request to Toxiproxy's %.1f µs.",
		sl/tox, micros(cpuOf("slolab")), micros(cpuOf("toxiproxy")))))
	b.WriteString(reading(verdict(sl/ngx), fmt.Sprintf("slolab serves %.2f× nginx's throughput, at %.1f µs of CPU per request to nginx's %.1f µs.", sl/ngx, micros(cpuOf("slolab")), micros(cpuOf("nginx")))))
	if lp, np := openP99("slolab"), openP99("nginx"); lp > 0 && np > 0 {
		b.WriteString(reading(latencyVerdict(lp, np), fmt.Sprintf("At %d req/s (open model) slolab's p99 is %s against nginx's %s and the tuned httputil's %s (the upstream alone: %s).",
			rate, fmtDur(lp), fmtDur(np), fmtDur(openP99("httputil")), fmtDur(directP99))))
	}
	idle := ruleCostOf(ruleRuns["slolab"], ruleRuns["slolab-20-idle"])
	b.WriteString(reading(costVerdict(idle.perCPU), fmt.Sprintf("On routes they do not target, 20 idle rules keep %.0f%% of slolab's rule-free requests per CPU-second (%.1f µs of CPU per request against %.1f µs, over the rule-cost runs), and %.0f%% of its wrk throughput paired run by run.",
		100*idle.perCPU, micros(idle.cpu[1]), micros(idle.cpu[0]), 100*idle.wall)))
	for _, g := range goals {
		v := "meets goal"
		if !g.met {
			v = "misses goal"
		}
		b.WriteString(reading(v, g.text))
	}
	return b.String()
}

// ruleCost is what one active rule on another route costs slolab, from
// the rounds with the rule and those without, in two measures.
type ruleCost struct {
	// perCPU is the requests served per CPU-second with the rule ÷ without:
	// the CPU time of each process over all its wrk runs, divided by the
	// requests of those runs. A process's CPU time does not depend on how
	// the machine's cores are shared at the moment, so a busy neighbour
	// barely moves it.
	perCPU float64
	// wall is the median over rounds of the wrk req/s with the rule ÷
	// without in the same round: wall-clock throughput, which follows what
	// else the machine is doing at the moment.
	wall   float64
	rounds []float64 // wall, round by round
	cpu    [2]time.Duration
}

func ruleCostOf(without, with []proxySample) ruleCost {
	var c ruleCost
	var cpu, reqs [2]int64
	for i, ss := range [][]proxySample{without, with} {
		for _, x := range ss {
			cpu[i] += int64(x.cpuTotal)
			reqs[i] += x.wrk.requests
		}
		if reqs[i] > 0 {
			c.cpu[i] = time.Duration(cpu[i] / reqs[i])
		}
	}
	c.perCPU = math.NaN()
	if cpu[0] > 0 && cpu[1] > 0 && reqs[0] > 0 && reqs[1] > 0 {
		c.perCPU = float64(reqs[1]) / float64(cpu[1]) / (float64(reqs[0]) / float64(cpu[0]))
	}
	for i := range min(len(without), len(with)) {
		if without[i].wrk.rps > 0 {
			c.rounds = append(c.rounds, with[i].wrk.rps/without[i].wrk.rps)
		}
	}
	c.wall = median(c.rounds)
	return c
}

// proxyGoals measures the proxy against issue 18's goals. A missed goal's
// reading says what stands in the way, from the figures of the run.
func proxyGoals(sl, tox, tuned float64, rule ruleCost, cpu func(string) time.Duration, slAdded, ngxAdded time.Duration, rate int) []proxyGoal {
	cpuText := func(a, b string) string {
		return fmt.Sprintf("%s used %.1f µs of CPU per request, %s %.1f µs", a, micros(cpu(a)), b, micros(cpu(b)))
	}
	gs := []proxyGoal{
		{figure: "slolab, no rules ÷ Toxiproxy, wrk req/s", goal: "≥ 1.00", got: sl / tox},
		{figure: "slolab ÷ tuned httputil, wrk req/s", goal: "≥ 1.50", got: sl / tuned},
		{figure: fmt.Sprintf("slolab, one active rule on another route ÷ no rules, requests per CPU-second (wrk req/s, paired run by run: %s)", fmtRatio(rule.wall)), goal: "≥ 0.97", got: rule.perCPU},
		{figure: fmt.Sprintf("p99 added at %s (half nginx's saturation), slolab and nginx", rateText(rate)), goal: "slolab ≤ nginx", got: float64(slAdded) / float64(max(ngxAdded, time.Microsecond)),
			shown: fmt.Sprintf("%s, %s", fmtDur(slAdded), fmtDur(ngxAdded))},
	}
	gs[0].met, gs[1].met, gs[2].met = gs[0].got >= 1, gs[1].got >= 1.5, rule.perCPU >= 0.97
	gs[3].met = slAdded >= 0 && slAdded <= ngxAdded
	gs[0].text = fmt.Sprintf("slolab serves %.2f× Toxiproxy's throughput (goal ≥ 1.0); %s.", gs[0].got, cpuText("slolab", "toxiproxy"))
	if !gs[0].met {
		gs[0].text += " On this path a request costs slolab four system calls (Toxiproxy makes six) and one allocation, but it parses the request and the response, matches the route and counts the request, which Toxiproxy does not; on a shared machine what is left between the two is also scheduling and noise."
	}
	gs[1].text = fmt.Sprintf("slolab serves %.2f× the tuned httputil proxy's throughput (goal ≥ 1.5); %s.", gs[1].got, cpuText("slolab", "httputil"))
	rounds := make([]string, len(rule.rounds))
	for i, r := range rule.rounds {
		rounds[i] = fmtRatio(r)
	}
	gs[2].text = fmt.Sprintf("With one active rule on another route slolab serves %.0f%% of its rule-free requests per CPU-second (goal ≥ 97%%): %.1f µs of CPU per request against %.1f µs, over the rule-cost runs of each. Its wrk throughput, paired run by run, is %.0f%% of the rule-free one (runs: %s).",
		100*rule.perCPU, micros(rule.cpu[1]), micros(rule.cpu[0]), 100*rule.wall, strings.Join(rounds, ", "))
	switch {
	case !gs[2].met:
		gs[2].text += " A request of a route that no rule names does not look at any rule (the rules are indexed by route), so the gap is outside the fault rules: measure the request path with `BenchmarkRequestOnAnotherRoute` in ./fault and BenchmarkProxyLoopback under callgrind."
	case rule.wall < 0.97:
		gs[2].text += " The verdict is taken from CPU time, which the machine's other work moves less than it moves wall-clock throughput."
	}
	gs[3].text = fmt.Sprintf("At %d req/s slolab adds %s to the upstream's p99, nginx %s (goal: no more than nginx).", rate, fmtDur(slAdded), fmtDur(ngxAdded))
	switch {
	case slAdded < 0:
		gs[3].got, gs[3].shown = math.NaN(), "—"
		gs[3].text = fmt.Sprintf("The p99 added at %d req/s was not measured (goal: no more than nginx's): in no round did the open-model runs of both the upstream and the proxy hold the rate (under 1%% of requests dropped or failed), so the generator did not hold it on this machine.", rate)
		if rate == 0 {
			gs[3].text = "The p99 added was not measured (goal: no more than nginx's): no open-model rung against nginx held (see how its saturation rate was sought, above), so the machine was too busy to find it."
		}
	case slAdded < 0 || ngxAdded < 0:
		gs[3].text += " A figure below zero is a proxy's p99 under the upstream's own in the same round: the tail of these runs was set by the machine's stalls, not by the proxies, so the comparison says little; run it on a quiet machine, or longer (-open-duration, -rounds)."
	case !gs[3].met:
		gs[3].text += " Tail latency at a fixed rate on a shared machine moves with whatever else runs; the CPU per request above is the steadier comparison."
	}
	return gs
}

// runLine opens every section with when, under what load and by which command it ran.
func runLine(b *bytes.Buffer, started time.Time, load, flags string) {
	fmt.Fprintf(b, "Run %s UTC, load average %s before this section; `make bench` runs it, alone: `go run ./bench %s`.\n\n",
		started.UTC().Format("2006-01-02 15:04"), load, flags)
}

// progress prints one line of progress to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
