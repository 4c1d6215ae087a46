package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

// delayConfig sizes the delay-fidelity benchmark.
type delayConfig struct {
	Rate     int // requests per second
	Share    spec.Ratio
	Delay    time.Duration
	Duration time.Duration // per run
	Rounds   int           // each round runs once without and once with the rule
}

// observed is what the client saw in one run, per request: the time from
// handing the request to the transport until the response head arrived.
type observed struct {
	mu       sync.Mutex
	injected []time.Duration // responses the proxy marked with X-Slolab-Fault
	plain    []time.Duration
	errors   int
}

// recordingTransport sits between slolab's load generator and the network
// and records every response's latency and whether a fault rule touched it.
type recordingTransport struct {
	next http.RoundTripper
	obs  *observed
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	d := time.Since(start)
	t.obs.mu.Lock()
	defer t.obs.mu.Unlock()
	switch {
	case err != nil || resp.StatusCode != http.StatusOK:
		t.obs.errors++
	case resp.Header.Get("X-Slolab-Fault") != "":
		t.obs.injected = append(t.obs.injected, d)
	default:
		t.obs.plain = append(t.obs.plain, d)
	}
	return resp, err
}

type ruleCounts struct {
	Matched  uint64 `json:"matched"`
	Injected uint64 `json:"injected"`
}

// runDelay sends cfg.Rate requests per second through a real slolab proxy
// with slolab's load generator, alternately without a rule and with a rule
// delaying cfg.Share of the requests by cfg.Delay, and compares what the
// client observed with what was intended.
func runDelay(s *session, cfg delayConfig) (string, error) {
	started, loadAvgBefore := time.Now(), loadAvg()
	g := s.group()
	defer g.stop()
	up, err := s.upstream(g)
	if err != nil {
		return "", err
	}
	listen, admin, _, err := s.slolabProxy(g, proxySpec, up)
	if err != nil {
		return "", err
	}
	svc, err := spec.LoadService(proxySpec)
	if err != nil {
		return "", err
	}
	var with, without observed
	var counts ruleCounts
	var sent uint64
	rule := fmt.Sprintf(`{"match": {"cuj": "root"}, "delay": %q, "rate": %q, "ttl": "1h"}`, cfg.Delay.String(), cfg.Share.String())
	for r := range cfg.Rounds {
		for i := range 2 {
			withRule := (i+r)%2 == 1 // alternate which run goes first
			obs := &without
			if withRule {
				obs = &with
				if err := putRule(s.ctx, admin, "fidelity", rule); err != nil {
					return "", err
				}
			}
			n, err := sendLoad(s.ctx, svc, "http://"+listen, cfg, obs)
			if err != nil {
				return "", err
			}
			if withRule {
				sent += n
				c, err := deleteRule(s.ctx, admin, "fidelity")
				if err != nil {
					return "", err
				}
				counts.Matched += c.Matched
				counts.Injected += c.Injected
			}
			progress("delay round %d/%d rule=%-5v sent %d, injected so far %d", r+1, cfg.Rounds, withRule, n, counts.Injected)
		}
	}
	return renderDelay(cfg, started, loadAvgBefore, &with, &without, counts, sent), nil
}

func sendLoad(ctx context.Context, svc *spec.Service, target string, cfg delayConfig, obs *observed) (uint64, error) {
	p, err := load.NewPlan(svc, load.PlanConfig{
		Stages: []load.Stage{{From: spec.Rate{Freq: uint64(cfg.Rate), Per: time.Second}, Duration: cfg.Duration}},
		Seed:   1, CUJs: []string{"root"},
	})
	if err != nil {
		return 0, err
	}
	gen, err := load.New(load.Config{Plan: p, Target: target,
		Transport: recordingTransport{next: load.NewTransport(load.DefaultMaxInFlight, load.DefaultTimeout), obs: obs}})
	if err != nil {
		return 0, err
	}
	rep, err := gen.Run(ctx)
	if err != nil {
		return 0, err
	}
	if rep.Interrupted {
		return 0, ctx.Err()
	}
	return rep.Total.Sent, nil
}

func deleteRule(ctx context.Context, admin, name string) (ruleCounts, error) {
	var c ruleCounts
	req, _ := http.NewRequestWithContext(ctx, "DELETE", admin+"/api/v1/faults/"+name, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("removing rule %s: %s %s", name, resp.Status, b)
	}
	return c, json.Unmarshal(b, &c)
}

func renderDelay(cfg delayConfig, started time.Time, loadBefore string, with, without *observed, counts ruleCounts, sent uint64) string {
	var b bytes.Buffer
	runLine(&b, started, loadBefore, fmt.Sprintf("-only delay -delay-rate %d -delay-duration %s -delay-rounds %d", cfg.Rate, cfg.Duration, cfg.Rounds))
	fmt.Fprintf(&b, "`slolab load` at %d req/s (open model) through a real `slolab proxy` to the raw upstream, %d rounds of two %s runs each, interleaved: one with no rule, one with the rule "+
		"`delay %s on %s of CUJ root`. The client records, per request, the time from handing it to the transport until the response head arrived, and whether the proxy marked it (`X-Slolab-Fault`).\n\n",
		cfg.Rate, cfg.Rounds, cfg.Duration, cfg.Delay, cfg.Share)
	inj := slices.Clone(with.injected)
	slices.Sort(inj)
	all := len(with.injected) + len(with.plain)
	over := 0
	for _, d := range append(slices.Clone(with.injected), with.plain...) {
		if d >= cfg.Delay {
			over++
		}
	}
	intended := cfg.Share.FloorMul(sent)
	b.WriteString("| | intended | observed |\n|---|---:|---:|\n")
	fmt.Fprintf(&b, "| requests sent with the rule | | %d (%d answered) |\n", sent, all)
	fmt.Fprintf(&b, "| injected (proxy's count of %d matched) | %d (⌊%s × %d⌋) | %d |\n", counts.Matched, cfg.Share.FloorMul(counts.Matched), cfg.Share, counts.Matched, counts.Injected)
	fmt.Fprintf(&b, "| responses marked injected (client) | %d | %d |\n", intended, len(inj))
	fmt.Fprintf(&b, "| share of requests at or over %s | %s | %.3f%% |\n", cfg.Delay, cfg.Share, 100*float64(over)/float64(max(all, 1)))
	if len(inj) > 0 {
		fmt.Fprintf(&b, "| injected latency min / p50 / p99 / max | %s | %s / %s / %s / %s |\n", cfg.Delay,
			fmtDur(inj[0]), fmtDur(quantileDur(inj, 0.5)), fmtDur(quantileDur(inj, 0.99)), fmtDur(inj[len(inj)-1]))
		fmt.Fprintf(&b, "| injected latency − %s, p50 / max | 0 | %s / %s |\n", cfg.Delay, fmtDur(quantileDur(inj, 0.5)-cfg.Delay), fmtDur(inj[len(inj)-1]-cfg.Delay))
	}
	fmt.Fprintf(&b, "| client errors, with / without the rule | 0 | %d / %d |\n", with.errors, without.errors)

	pw, pn := slices.Clone(with.plain), slices.Clone(without.plain)
	slices.Sort(pw)
	slices.Sort(pn)
	b.WriteString("\nRequests the rule did not touch, against the runs without the rule:\n\n| | requests | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"un-injected, rule active", pw}, {"no rule", pn}} {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", row.name, len(row.ds), fmtDur(quantileDur(row.ds, 0.5)), fmtDur(quantileDur(row.ds, 0.9)),
			fmtDur(quantileDur(row.ds, 0.99)), fmtDur(quantileDur(row.ds, 0.999)), fmtDur(quantileDur(row.ds, 1)))
	}
	b.WriteString("\nReading:\n\n")
	exact := counts.Injected == cfg.Share.FloorMul(counts.Matched) && uint64(len(inj)) == counts.Injected
	v := "leads"
	if !exact {
		v = "trails"
	}
	text := fmt.Sprintf("Exactly the intended requests were delayed: %d of %d matched (%s), all %d seen delayed by the client", counts.Injected, counts.Matched, cfg.Share, len(inj))
	if !exact {
		text = fmt.Sprintf("The injected count missed its target: %d of %d matched where %d were intended, %d seen by the client", counts.Injected, counts.Matched, cfg.Share.FloorMul(counts.Matched), len(inj))
	}
	if len(inj) > 0 {
		text += fmt.Sprintf("; their latency was %s over the intended %s at the median and %s at most.", fmtDur(quantileDur(inj, 0.5)-cfg.Delay), cfg.Delay, fmtDur(inj[len(inj)-1]-cfg.Delay))
	} else {
		text += "."
	}
	b.WriteString(reading(v, text))
	p99w, p99n := quantileDur(pw, 0.99), quantileDur(pn, 0.99)
	if p99w > 0 && p99n > 0 {
		v, verb := latencyVerdict(p99w, p99n), "kept their latency"
		switch v {
		case "leads": // faster with a rule active is noise, not a lead
			v = "on par"
		case "trails":
			verb = "were slowed"
		}
		b.WriteString(reading(v, fmt.Sprintf("Requests the rule did not select %s: p99 %s with the rule active against %s without it (p50 %s against %s).",
			verb, fmtDur(p99w), fmtDur(p99n), fmtDur(quantileDur(pw, 0.5)), fmtDur(quantileDur(pn, 0.5)))))
	}
	return b.String()
}
