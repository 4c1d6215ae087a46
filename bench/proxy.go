package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	OpenRate    int
	OpenFor     time.Duration
}

type proxyTarget struct {
	name, addr, note string
}

// proxySample is one target's figures in one round.
type proxySample struct {
	wrk, hey, open clientResult
}

// clientResult is what one load tool measured against one target.
type clientResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64 // socket errors, timeouts and non-2xx responses
}

const proxySpec = "bench/proxy/bench.yaml"

// runProxy measures the upstream directly, nginx, a plain httputil proxy,
// Toxiproxy and slolab (no rules; 20 idle rules; one active rule on another
// route) with wrk, hey and slolab's open-model generator, in interleaved
// rounds with the order rotated, and renders the medians as ratios.
func runProxy(s *session, cfg proxyConfig) (string, error) {
	started, load := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	targets := []proxyTarget{{name: "direct", addr: up, note: "the upstream itself"}}

	nginxAddr, err := startNginx(s, g, "proxy", up, 4096)
	if err != nil {
		return "", err
	}
	targets = append(targets, proxyTarget{"nginx", nginxAddr, "proxy_pass, upstream keepalive 64, workers auto"})

	_, plainAddr, err := g.start(true, s.plain, "-upstream", "http://"+up)
	if err != nil {
		return "", err
	}
	targets = append(targets, proxyTarget{"httputil", plainAddr, "httputil.NewSingleHostReverseProxy, default transport"})

	toxAddr, err := startToxiproxy(s, g, up)
	if err != nil {
		return "", err
	}
	targets = append(targets, proxyTarget{"toxiproxy", toxAddr, "no toxics (copies TCP bytes)"})

	for _, v := range []struct {
		name, note string
		rules      func(ctx context.Context, admin string) error
	}{
		{"slolab", "no rules", func(context.Context, string) error { return nil }},
		{"slolab-20-idle", "20 rules on another CUJ", idleRules},
		{"slolab-1-active", "a 1 ms delay on every request of another route", activeRule},
	} {
		listen, admin, _, err := s.slolabProxy(g, proxySpec, up)
		if err != nil {
			return "", err
		}
		if err := v.rules(s.ctx, admin); err != nil {
			return "", err
		}
		targets = append(targets, proxyTarget{v.name, listen, v.note})
	}
	for _, t := range targets {
		if err := waitHTTP(s.ctx, t.addr); err != nil {
			return "", fmt.Errorf("%s: %w", t.name, err)
		}
	}

	results := map[string][]proxySample{}
	for r := range cfg.Rounds {
		k := r % len(targets) // rotate, so no target always runs first or last
		order := append(slices.Clone(targets[k:]), targets[:k]...)
		for _, t := range order {
			smp, err := measureProxy(s, cfg, t)
			if err != nil {
				return "", fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			results[t.name] = append(results[t.name], smp)
			progress("proxy round %d/%d %-16s wrk %7.0f/s p99 %-9s hey %7.0f/s p99 %-9s open %d/s p99 %s",
				r+1, cfg.Rounds, t.name, smp.wrk.rps, fmtDur(smp.wrk.p99), smp.hey.rps, fmtDur(smp.hey.p99), cfg.OpenRate, fmtDur(smp.open.p99))
		}
	}
	return renderProxy(s, cfg, targets, results, started, load), nil
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
	out, err := exec.CommandContext(s.ctx, s.peers.wrk, fmt.Sprintf("-t%d", cfg.Threads), fmt.Sprintf("-c%d", cfg.Conns),
		"-d"+durSeconds(cfg.WrkDuration), "--latency", url).CombinedOutput()
	if err != nil {
		return smp, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	if smp.wrk, err = parseWrk(string(out)); err != nil {
		return smp, err
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
	// The open model: a steady rate the machine sustains, latency from intended send times.
	ctx, cancel := context.WithTimeout(s.ctx, cfg.OpenFor+30*time.Second)
	defer cancel()
	o, err := exec.CommandContext(ctx, s.slolab, "load", "--spec", proxySpec, "--cuj", "root", "--target", "http://"+t.addr,
		"--rate", fmt.Sprintf("%d/s", cfg.OpenRate), "--duration", cfg.OpenFor.String(), "--seed", "1", "--progress", "0", "-o", "json").Output()
	if err != nil {
		return smp, fmt.Errorf("slolab load: %w", err)
	}
	smp.open, err = parseLoadReport(o)
	return smp, err
}

// durSeconds formats d for wrk's and hey's duration flags, which take whole seconds.
func durSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", max(1, int(d.Round(time.Second)/time.Second)))
}

var (
	rpsLine = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`) // wrk and hey print the same line
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
	return clientResult{rps: t.Rate, p50: time.Duration(t.Latency.P50), p99: time.Duration(t.Latency.P99),
		errors: int64(t.Errors + t.Dropped + t.Status.C4xx + t.Status.C5xx)}, nil
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

func renderProxy(s *session, cfg proxyConfig, targets []proxyTarget, results map[string][]proxySample, started time.Time, load string) string {
	var b bytes.Buffer
	runLine(&b, started, load, fmt.Sprintf("-only proxy -rounds %d -wrk-duration %s -hey-duration %s -open-rate %d -open-duration %s",
		cfg.Rounds, cfg.WrkDuration, cfg.HeyDuration, cfg.OpenRate, cfg.OpenFor))
	fmt.Fprintf(&b, "Closed loop: `wrk -t%d -c%d -d%s --latency` (wrk %s)", cfg.Threads, cfg.Conns, durSeconds(cfg.WrkDuration), s.peers.versions["wrk"])
	if cfg.HeyDuration > 0 {
		fmt.Fprintf(&b, " and `hey -z %s -c %d` (hey %s, which reports latencies to 0.1 ms)", durSeconds(cfg.HeyDuration), cfg.Conns, s.peers.versions["hey"])
	}
	fmt.Fprintf(&b, " against `GET /` of a raw HTTP/1.1 upstream (bench/load/server). Open model: `slolab load --rate %d/s` for %s, latency from intended send times. "+
		"Medians of %d interleaved rounds, the order rotated each round. nginx %s, Toxiproxy %s. The clients, the proxies and the upstream share the machine's cores, so absolute figures are low and only ratios carry over.\n\n",
		cfg.OpenRate, cfg.OpenFor, cfg.Rounds, s.peers.versions["nginx"], s.peers.versions["toxiproxy"])

	med := func(name string, f func(proxySample) float64) float64 { return median(pick(results[name], f)) }
	wrkRPS := func(p proxySample) float64 { return p.wrk.rps }
	heyRPS := func(p proxySample) float64 { return p.hey.rps }
	base, tox, ngx := med("httputil", wrkRPS), med("toxiproxy", wrkRPS), med("nginx", wrkRPS)

	b.WriteString("Throughput (closed loop, req/s):\n\n")
	b.WriteString("| target | setup | wrk req/s | × httputil | × toxiproxy | × nginx |")
	if cfg.HeyDuration > 0 {
		b.WriteString(" hey req/s | hey × httputil |")
	}
	b.WriteString("\n|---|---|---:|---:|---:|---:|")
	if cfg.HeyDuration > 0 {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, t := range targets {
		rps := med(t.name, wrkRPS)
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s |", t.name, t.note, rps, fmtRatio(rps/base), fmtRatio(rps/tox), fmtRatio(rps/ngx))
		if cfg.HeyDuration > 0 {
			h := med(t.name, heyRPS)
			fmt.Fprintf(&b, " %.0f | %s |", h, fmtRatio(h/med("httputil", heyRPS)))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nLatency (medians over rounds; wrk and hey at full load, the open model at a fixed rate):\n\n")
	b.WriteString("| target | wrk p50 | wrk p99 |")
	if cfg.HeyDuration > 0 {
		b.WriteString(" hey p50 | hey p99 |")
	}
	fmt.Fprintf(&b, " open %d/s p50 | open %d/s p99 | errors |\n|---|---:|---:|", cfg.OpenRate, cfg.OpenRate)
	if cfg.HeyDuration > 0 {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|---:|---:|\n")
	for _, t := range targets {
		rs := results[t.name]
		var errs int64
		for _, x := range rs {
			errs += x.wrk.errors + x.hey.errors + x.open.errors
		}
		fmt.Fprintf(&b, "| %s | %s | %s |", t.name, fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.wrk.p50 })),
			fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.wrk.p99 })))
		if cfg.HeyDuration > 0 {
			fmt.Fprintf(&b, " %s | %s |", fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.hey.p50 })),
				fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.hey.p99 })))
		}
		fmt.Fprintf(&b, " %s | %s | %d |\n", fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.open.p50 })),
			fmtDur(pickDur(rs, func(p proxySample) time.Duration { return p.open.p99 })), errs)
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
	b.WriteString(".\n\nReading:\n\n")

	sl := med("slolab", wrkRPS)
	r := sl / base
	text := fmt.Sprintf("slolab (no rules) serves %.2f× the plain httputil proxy's throughput under wrk", r)
	if cfg.HeyDuration > 0 {
		text += fmt.Sprintf(" (%.2f× under hey)", med("slolab", heyRPS)/med("httputil", heyRPS))
	}
	b.WriteString(reading(verdict(r), text+"."))
	b.WriteString(reading(verdict(sl/tox), fmt.Sprintf("slolab serves %.2f× Toxiproxy's throughput (Toxiproxy without toxics only copies TCP bytes; it does not parse HTTP).", sl/tox)))
	b.WriteString(reading(verdict(sl/ngx), fmt.Sprintf("slolab serves %.2f× nginx's throughput.", sl/ngx)))
	openP99 := func(name string) time.Duration {
		return pickDur(results[name], func(p proxySample) time.Duration { return p.open.p99 })
	}
	if lp, hp := openP99("slolab"), openP99("httputil"); lp > 0 && hp > 0 {
		b.WriteString(reading(latencyVerdict(lp, hp), fmt.Sprintf("At %d req/s (open model) slolab's p99 is %s against httputil's %s and nginx's %s.",
			cfg.OpenRate, fmtDur(lp), fmtDur(hp), fmtDur(openP99("nginx")))))
	}
	idle, active := med("slolab-20-idle", wrkRPS)/sl, med("slolab-1-active", wrkRPS)/sl
	b.WriteString(reading(costVerdict(min(idle, active)), fmt.Sprintf("On routes they do not target, 20 idle rules keep %.0f%% of slolab's rule-free throughput and an active delay rule on another route %.0f%%.",
		100*idle, 100*active)))
	return b.String()
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
