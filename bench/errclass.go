package main

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// errclassGoal is issue 15's goal: throughput with error classification
// on within 3% of off.
const errclassGoal = 0.03

// runErrclass measures `slolab proxy` with error classification on and
// off, on successes and with every request answered 500 by a status fault
// (a JSON body with an id, so each is sampled and masked into one class),
// with wrk in interleaved rounds, the order rotated.
func runErrclass(s *session, cfg proxyConfig) (string, error) {
	started, load := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	fail := func(ctx context.Context, admin string) error {
		return putRule(ctx, admin, "all-500", `{"match": {"cuj": "root"}, "status": {"code": 500, "body": "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"order 4711 failed\"}}"}, "ttl": "24h"}`)
	}
	none := func(context.Context, string) error { return nil }
	var targets []proxyTarget
	for _, v := range []struct {
		name, note string
		flag       string
		rules      func(context.Context, string) error
	}{
		{"ok-on", "successes, classification on", "--error-classes=100", none},
		{"ok-off", "successes, classification off", "--error-classes=0", none},
		{"500-on", "every request a 500, classification on", "--error-classes=100", fail},
		{"500-off", "every request a 500, classification off", "--error-classes=0", fail},
	} {
		listen, admin, cmd, err := s.slolabProxy(g, proxySpec, up, v.flag)
		if err != nil {
			return "", err
		}
		if err := v.rules(s.ctx, admin); err != nil {
			return "", err
		}
		targets = append(targets, proxyTarget{v.name, listen, v.note, cmd.Process.Pid})
	}
	cfg.HeyDuration = 0
	results := map[string][]proxySample{}
	for r := range cfg.Rounds {
		for _, t := range rotate(targets, r) {
			smp, err := measureProxy(s, cfg, t)
			if err != nil {
				return "", fmt.Errorf("round %d %s: %w", r+1, t.name, err)
			}
			results[t.name] = append(results[t.name], smp)
			progress("errclass round %d/%d %-8s wrk %7.0f/s p99 %-9s cpu %5.1fµs/req", r+1, cfg.Rounds, t.name, smp.wrk.rps, fmtDur(smp.wrk.p99), micros(smp.cpu))
		}
	}

	var b bytes.Buffer
	runLine(&b, started, load, fmt.Sprintf("-only errclass -rounds %d -wrk-duration %s", cfg.Rounds, cfg.WrkDuration))
	fmt.Fprintf(&b, "Closed loop: `wrk -t%d -c%d -d%s --latency` (wrk %s) against `GET /` through `slolab proxy`. Medians of %d interleaved rounds, the order rotated each round; CPU per request from /proc as in the proxy section.\n\n",
		cfg.Threads, cfg.Conns, durSeconds(cfg.WrkDuration), s.peers.versions["wrk"], cfg.Rounds)
	b.WriteString("| traffic | classification | req/s | p99 | CPU/request | on vs off |\n|---|---|---:|---:|---:|---:|\n")
	rps := func(name string) float64 {
		return median(pick(results[name], func(p proxySample) float64 { return p.wrk.rps }))
	}
	var verdicts []string
	for _, pair := range [][2]string{{"ok-on", "ok-off"}, {"500-on", "500-off"}} {
		on, off := rps(pair[0]), rps(pair[1])
		ratio := on/off - 1
		for i, name := range pair {
			state, vs := "on", fmt.Sprintf("%+.1f%%", 100*ratio)
			if i == 1 {
				state, vs = "off", "—"
			}
			traffic := "200s"
			if name[0] == '5' {
				traffic = "500s (a status fault)"
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %.1f µs | %s |\n", traffic, state, rps(name),
				fmtDur(pickDur(results[name], func(p proxySample) time.Duration { return p.wrk.p99 })),
				micros(pickDur(results[name], func(p proxySample) time.Duration { return p.cpu })), vs)
		}
		verdict := "met"
		if ratio < -errclassGoal {
			verdict = "missed"
		}
		verdicts = append(verdicts, fmt.Sprintf("%s: %s (%+.1f%%)", pair[0][:len(pair[0])-3], verdict, 100*ratio))
	}
	fmt.Fprintf(&b, "\nGoal, throughput with classification on within %.0f%% of off: ", 100*errclassGoal)
	for i, v := range verdicts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v)
	}
	b.WriteString(". Differences of a few percent between two runs of the same binary are this shared machine's noise: compare the CPU per request.\n")
	return b.String(), nil
}
