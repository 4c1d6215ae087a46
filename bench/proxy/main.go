// Command proxy benchmarks slolab's proxy side by side with what people would
// use instead, in one run on one machine: the upstream directly, nginx, a
// plain httputil.ReverseProxy, Toxiproxy (no toxics: it copies TCP bytes) and
// slolab (no rules; 20 idle rules on another CUJ; one active delay rule on
// another route). Rounds are interleaved (A B C ... A B C ...) with the order
// rotated each round, and medians are reported as ratios, because a shared
// two-core machine is noisy.
//
// For each target it runs wrk (closed loop: maximum throughput and its
// latency) and slolab's own open-model generator at a fixed rate (latency at
// a load the machine sustains). It prints a Markdown section and writes it
// into docs/benchmarks.md between the proxy markers.
//
//	go run ./bench/proxy                       # 3 rounds of 10 s
//	go run ./bench/proxy -rounds 5 -duration 20s
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type target struct {
	name string
	addr string // host:port wrk and slolab load hit
	note string
}

type sample struct {
	rps        float64
	p50, p99   time.Duration // wrk, closed loop
	oP50, oP99 time.Duration // open model at -rate
	errors     int64
	openErrors uint64
}

var (
	rounds   = flag.Int("rounds", 3, "interleaved rounds")
	duration = flag.Duration("duration", 10*time.Second, "wrk duration per target per round")
	conns    = flag.Int("conns", 32, "wrk connections")
	threads  = flag.Int("threads", 2, "wrk threads")
	rate     = flag.Int("rate", 2000, "open-model rate (requests per second) for the fixed-rate latency table")
	openFor  = flag.Duration("open-duration", 5*time.Second, "open-model duration per target per round")
	docs     = flag.String("docs", "docs/benchmarks.md", "Markdown file whose proxy section is rewritten (empty: print only)")
)

var procs []*exec.Cmd

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		stopAll()
		os.Exit(1)
	}
	stopAll()
}

func stopAll() {
	for _, p := range procs {
		if p.Process != nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p.Process != nil {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
}

func tool(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", filepath.Join(goEnv("GOPATH"), "bin")} {
			if st, err := os.Stat(filepath.Join(dir, n)); err == nil && !st.IsDir() {
				return filepath.Join(dir, n), nil
			}
		}
	}
	return "", fmt.Errorf("%v not found: run bench/install-peers.sh (make bench does)", names)
}

func goEnv(k string) string {
	out, _ := exec.Command("go", "env", k).Output()
	return strings.TrimSpace(string(out))
}

func build(dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// start runs a long-lived process and, when firstLine, returns the first line it prints.
func start(firstLine bool, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	var out io.ReadCloser
	if firstLine {
		out, _ = cmd.StdoutPipe()
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	procs = append(procs, cmd)
	if !firstLine {
		return "", nil
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return strings.TrimSpace(line), err
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within 10s", addr)
}

func run() error {
	wrk, err := tool("wrk")
	if err != nil {
		return err
	}
	nginx, err := tool("nginx")
	if err != nil {
		return err
	}
	toxiproxy, err := tool("toxiproxy-server", "server")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "slolab-bench-proxy-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	slolab, err := build(dir, "./cmd/slolab", "slolab")
	if err != nil {
		return err
	}
	server, err := build(dir, "./bench/load/server", "server")
	if err != nil {
		return err
	}
	plain, err := build(dir, "./bench/proxy/plain", "plain")
	if err != nil {
		return err
	}
	up, err := start(true, server)
	if err != nil {
		return err
	}
	targets := []target{{name: "direct", addr: up, note: "wrk → upstream"}}

	// nginx as a reverse proxy with upstream keep-alive, as one would configure it.
	nginxAddr := freeAddr()
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream app { server %[2]s; keepalive 64; }
  server {
    listen %[3]s;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`, dir, up, nginxAddr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if _, err := start(false, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf")); err != nil {
		return err
	}
	targets = append(targets, target{name: "nginx", addr: nginxAddr, note: "proxy_pass, upstream keepalive 64, workers auto"})

	plainAddr, err := start(true, plain, "-upstream", "http://"+up)
	if err != nil {
		return err
	}
	targets = append(targets, target{name: "httputil", addr: plainAddr, note: "httputil.NewSingleHostReverseProxy, default transport"})

	toxAPI, toxAddr := freeAddr(), freeAddr()
	toxHost, toxPort, _ := net.SplitHostPort(toxAPI)
	if _, err := start(false, toxiproxy, "-host", toxHost, "-port", toxPort); err != nil {
		return err
	}
	if err := toxiproxyCreate(toxAPI, toxAddr, up); err != nil {
		return err
	}
	targets = append(targets, target{name: "toxiproxy", addr: toxAddr, note: "v2.12.0, no toxics (copies TCP bytes)"})

	for _, v := range []struct {
		name, note string
		rules      func(admin string) error
	}{
		{"slolab", "no rules", func(string) error { return nil }},
		{"slolab-20-idle", "20 rules on another CUJ", idleRules},
		{"slolab-1-active", "a 1 ms delay on every request of another route", activeRule},
	} {
		listen, adminAddr := freeAddr(), freeAddr()
		if _, err := start(false, slolab, "proxy", "--spec", "bench/proxy/bench.yaml", "--upstream", "http://"+up,
			"--listen", listen, "--admin", adminAddr, "--audit-log", "-", "--log-level", "warn", "--max-ttl", "24h"); err != nil {
			return err
		}
		if err := waitHTTP(listen); err != nil {
			return err
		}
		if err := v.rules("http://" + adminAddr); err != nil {
			return err
		}
		targets = append(targets, target{name: v.name, addr: listen, note: v.note})
	}
	for _, t := range targets {
		if err := waitHTTP(t.addr); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	results := map[string][]sample{}
	for r := 0; r < *rounds; r++ {
		order := slices.Clone(targets)
		k := r % len(order) // rotate, so no target always runs first or last
		order = append(order[k:], order[:k]...)
		for _, t := range order {
			s, err := measure(wrk, slolab, t)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			results[t.name] = append(results[t.name], s)
			fmt.Fprintf(os.Stderr, "round %d %-16s %9.0f req/s  p50 %-9v p99 %-9v | open %d/s p50 %-9v p99 %v\n",
				r+1, t.name, s.rps, s.p50, s.p99, *rate, s.oP50, s.oP99)
		}
	}
	md := render(targets, results)
	fmt.Print(md)
	if *docs != "" {
		return writeSection(*docs, "proxy", md)
	}
	return nil
}

func toxiproxyCreate(api, listen, upstream string) error {
	body := fmt.Sprintf(`{"name": "bench", "listen": %q, "upstream": %q, "enabled": true}`, listen, upstream)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post("http://"+api+"/proxies", "application/json", strings.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 201 {
				return nil
			}
			return fmt.Errorf("toxiproxy: %s %s", resp.Status, b)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("toxiproxy API: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func putRule(admin, name, body string) error {
	req, _ := http.NewRequest("PUT", admin+"/api/v1/faults/"+name, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("adding rule %s: %s %s", name, resp.Status, b)
	}
	return nil
}

func idleRules(admin string) error {
	for i := range 20 {
		if err := putRule(admin, fmt.Sprintf("idle-%02d", i), fmt.Sprintf(`{"match": {"cuj": "other"}, "status": 500, "rate": "%d%%", "ttl": "24h"}`, i+1)); err != nil {
			return err
		}
	}
	return nil
}

func activeRule(admin string) error {
	return putRule(admin, "active-delay", `{"match": {"cuj": "other", "route": "GET /other/{id}"}, "delay": "1ms", "ttl": "24h"}`)
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	errRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	n2xRe = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

func measure(wrk, slolab string, t target) (sample, error) {
	var s sample
	out, err := exec.Command(wrk, fmt.Sprintf("-t%d", *threads), fmt.Sprintf("-c%d", *conns), fmt.Sprintf("-d%s", *duration), "--latency", "http://"+t.addr+"/").CombinedOutput()
	if err != nil {
		return s, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	text := string(out)
	m := rpsRe.FindStringSubmatch(text)
	if m == nil {
		return s, fmt.Errorf("wrk output without Requests/sec:\n%s", text)
	}
	s.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range pctRe.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		d := time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]))
		if p[1] == "50" {
			s.p50 = d
		} else {
			s.p99 = d
		}
	}
	for _, e := range errRe.FindAllStringSubmatch(text, -1) {
		for _, x := range e[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			s.errors += n
		}
	}
	if e := n2xRe.FindStringSubmatch(text); e != nil {
		n, _ := strconv.ParseInt(e[1], 10, 64)
		s.errors += n
	}
	// The open model: a steady rate the machine sustains, latency from intended send times.
	ctx, cancel := context.WithTimeout(context.Background(), *openFor+30*time.Second)
	defer cancel()
	o, err := exec.CommandContext(ctx, slolab, "load", "--spec", "bench/proxy/bench.yaml", "--cuj", "root", "--target", "http://"+t.addr,
		"--rate", fmt.Sprintf("%d/s", *rate), "--duration", openFor.String(), "--progress", "0", "-o", "json").Output()
	if err != nil {
		return s, fmt.Errorf("slolab load: %w", err)
	}
	var rep struct {
		Total struct {
			Errors  uint64 `json:"errors"`
			Latency struct {
				P50 string `json:"p50"`
				P99 string `json:"p99"`
			} `json:"latency"`
		} `json:"total"`
	}
	if err := json.Unmarshal(o, &rep); err != nil {
		return s, fmt.Errorf("slolab load output: %w", err)
	}
	s.oP50, _ = time.ParseDuration(rep.Total.Latency.P50)
	s.oP99, _ = time.ParseDuration(rep.Total.Latency.P99)
	s.openErrors = rep.Total.Errors
	return s, nil
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianD(xs []time.Duration) time.Duration {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return time.Duration(medianF(f))
}

func pick[T any](ss []sample, f func(sample) T) []T {
	out := make([]T, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func render(targets []target, results map[string][]sample) string {
	var b bytes.Buffer
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "Command: `go run ./bench/proxy -rounds %d -duration %s` (or `make bench`), %s.\n\n", *rounds, *duration, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Machine: %d cores (%s), %s; load average before the run: %s. wrk, the proxies and the upstream share these cores, so absolute figures are low and only ratios carry over.\n\n",
		runtime.NumCPU(), cpu, runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(&b, "Closed loop: `wrk -t%d -c%d -d%s --latency` against `GET /` of a raw HTTP/1.1 upstream (bench/load/server). Open model: `slolab load --rate %d/s` for %s, latency from intended send times. Medians of %d interleaved rounds, order rotated each round.\n\n",
		*threads, *conns, *duration, *rate, *openFor, *rounds)
	base := medianF(pick(results["httputil"], func(s sample) float64 { return s.rps }))
	tox := medianF(pick(results["toxiproxy"], func(s sample) float64 { return s.rps }))
	b.WriteString("| target | setup | req/s | × httputil | × toxiproxy | p50 | p99 | errors | open p50 | open p99 |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range targets {
		rs := results[t.name]
		rps := medianF(pick(rs, func(s sample) float64 { return s.rps }))
		var errs int64
		for _, s := range rs {
			errs += s.errors + int64(s.openErrors)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %.2f | %s | %s | %d | %s | %s |\n", t.name, t.note, rps, rps/base, rps/tox,
			round(medianD(pick(rs, func(s sample) time.Duration { return s.p50 }))),
			round(medianD(pick(rs, func(s sample) time.Duration { return s.p99 }))), errs,
			round(medianD(pick(rs, func(s sample) time.Duration { return s.oP50 }))),
			round(medianD(pick(rs, func(s sample) time.Duration { return s.oP99 }))))
	}
	b.WriteString("\nPer round (req/s): ")
	for i, t := range targets {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %v", t.name, pick(results[t.name], func(s sample) int { return int(s.rps) }))
	}
	b.WriteString(".\n")
	return b.String()
}

// writeSection replaces the text between <!-- bench:NAME:begin --> and
// <!-- bench:NAME:end --> in path, appending the section if it is missing.
func writeSection(path, name, body string) error {
	begin, end := "<!-- bench:"+name+":begin -->", "<!-- bench:"+name+":end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	block := begin + "\n" + body + end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end):]
	} else {
		text += "\n## Proxy\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
