package slo_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

const chatFull = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs:
    - {name: login, owner: id, routes: ["POST /login"], availability: {objective: 99.95%}, latency: {threshold: 500ms, objective: 99%}}
    - {name: update, owner: msg, routes: ["POST /update"], availability: {objective: 99.9%}, latency: {threshold: 1s, objective: 99%}}
    - {name: read, owner: msg, routes: ["GET /messages"], availability: {objective: 99.9%}, latency: {threshold: 300ms, objective: 99%}}
    - {name: upload, owner: files, routes: ["POST /files"], availability: {objective: 99.5%, window: month}}
`

func ratioPtr(t *testing.T, s string) *spec.Ratio {
	r := ratio(t, s)
	return &r
}

// ruleJSON renders rules as the admin API receives them.
func ruleJSON(t *testing.T, rules []*spec.FaultRule) []string {
	t.Helper()
	var out []string
	for _, r := range rules {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		// Every planned rule must read back as a valid fault rule.
		if _, err := spec.ParseFaultRule("plan", b, ""); err != nil {
			t.Fatalf("planned rule %s does not parse back: %v", b, err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestPlan(t *testing.T) {
	svc := service(t, chatFull)
	lt := func(s string) *slo.LatencyTarget {
		l, err := slo.ParseLatencyTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		return &l
	}
	delay := func(s string) *spec.Delay {
		d, err := spec.ParseDelay(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cases := []struct {
		name        string
		cuj         string
		want        slo.Want
		rules       []string
		explanation string
		notes       []string
	}{
		{
			name: "99.9% availability on a 99.9% SLO fails 1 in 1,000 and lasts the window",
			cuj:  "update", want: slo.Want{Availability: ratioPtr(t, "99.9%"), TTL: time.Minute},
			rules:       []string{`{"name":"sim-update","description":"slolab simulate: 0.1% of update requests fail","match":{"cuj":"update"},"rate":"0.1%","status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`},
			explanation: "1 in 1,000 update requests fails; at this rate the 30-day budget lasts exactly 30 days, and the ticket alert (3d/6h ≥ 1) fires after 3 days.",
		},
		{
			name: "burn rate 14.4 fails 1.44% and pages after exactly an hour",
			cuj:  "update", want: slo.Want{BurnRate: ratioPtr(t, "14.4"), Seed: 7, TTL: time.Minute},
			rules:       []string{`{"name":"sim-update","description":"slolab simulate: 1.44% of update requests fail","match":{"cuj":"update"},"rate":"1.44%","seed":7,"status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`},
			explanation: "1.44% of update requests fail; at this rate (burn rate 14.4) the 30-day budget lasts exactly 2d2h, and the page alert (1h/5m ≥ 14.4) fires after 1h.",
		},
		{
			name: "the page state at measured traffic adds one failure per five minutes",
			cuj:  "update", want: slo.Want{Alert: "page", RequestsPerMinute: 1500, TTL: time.Minute},
			// 1.44% + 1/7,500 = 109/7,500
			rules:       []string{`{"name":"sim-update","description":"slolab simulate: about 1.4533% of update requests fail","match":{"cuj":"update"},"rate":"109/7500","status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`},
			explanation: "about 1.4533% of update requests fail; at this rate (burn rate 14.53) the 30-day budget lasts about 2d1h32m, and the page alert (1h/5m ≥ 14.4) fires after 59m27s.",
			notes:       []string{"at about 1,500 requests a minute, one extra failure per 5m window keeps every window over the threshold of the page alert (1h/5m ≥ 14.4)"},
		},
		{
			name: "the 6h/30m pair can be chosen by its windows",
			cuj:  "read", want: slo.Want{Alert: "6h/30m", TTL: time.Minute},
			rules:       []string{`{"name":"sim-read","description":"slolab simulate: 0.6% of read requests fail","match":{"cuj":"read"},"rate":"0.6%","status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`},
			explanation: "0.6% of read requests fail; at this rate (burn rate 6) the 30-day budget lasts exactly 5 days, and the page alert (6h/30m ≥ 6) fires after 6h.",
			notes:       []string{"exactly at the threshold of the page alert (6h/30m ≥ 6): a window holds its share of failures rounded either way, so the alert may flap; measured traffic lets the plan add one failure per short window"},
		},
		{
			name: "1s@99% delays exactly 1 in 100 past the threshold by a tenth of it",
			cuj:  "update", want: slo.Want{Latency: lt("1s@99%"), TTL: time.Minute},
			rules:       []string{`{"name":"sim-update","description":"slolab simulate: 1% of update requests take 1.1s","match":{"cuj":"update"},"rate":"1%","delay":"1.1s","ttl":"1m"}`},
			explanation: "1 in 100 update requests takes 1.1s, above 1s; at this rate the 30-day latency budget lasts exactly 30 days, and the ticket alert (3d/6h ≥ 1) fires after 3 days.",
		},
		{
			name: "a latency below the SLO's threshold does not burn its budget",
			cuj:  "update", want: slo.Want{Latency: lt("600ms@95%"), TTL: time.Minute},
			rules:       []string{`{"name":"sim-update","description":"slolab simulate: 5% of update requests take 660ms","match":{"cuj":"update"},"rate":"5%","delay":"660ms","ttl":"1m"}`},
			explanation: "1 in 20 update requests takes 660ms, above 600ms; they stay within the latency SLO's 1s threshold, so its budget does not burn.",
		},
		{
			name: "a baseline is capped below each other CUJ's threshold and spares the simulated CUJ",
			cuj:  "update", want: slo.Want{Availability: ratioPtr(t, "99%"), Baseline: delay("p50=120ms p99=450ms"), TTL: time.Minute},
			rules: []string{
				`{"name":"sim-update","description":"slolab simulate: 1% of update requests fail","match":{"cuj":"update"},"rate":"1%","status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`,
				`{"name":"sim-baseline-login","description":"slolab simulate: baseline latency p50=120ms p99=400ms for login","match":{"cuj":"login"},"rate":"100%","delay":"p50=120ms p99=400ms","ttl":"1m"}`,
				`{"name":"sim-baseline-read","description":"slolab simulate: baseline latency p50=120ms p99=240ms for read","match":{"cuj":"read"},"rate":"100%","delay":"p50=120ms p99=240ms","ttl":"1m"}`,
				`{"name":"sim-baseline-upload","description":"slolab simulate: baseline latency p50=120ms p99=450ms for upload","match":{"cuj":"upload"},"rate":"100%","delay":"p50=120ms p99=450ms","ttl":"1m"}`,
			},
			explanation: "1 in 100 update requests fails; at this rate (burn rate 10) the 30-day budget lasts exactly 3 days, and the page alert (6h/30m ≥ 6) fires after 3h36m.",
			notes: []string{
				"login: baseline capped at 400ms (80% of its 500ms threshold), so the baseline alone never makes a login request slow",
				"read: baseline capped at 240ms (80% of its 300ms threshold), so the baseline alone never makes a read request slow",
			},
		},
		{
			name: "a calendar-month SLO speaks of the month's budget",
			cuj:  "upload", want: slo.Want{BurnRate: ratioPtr(t, "2"), TTL: time.Minute},
			rules:       []string{`{"name":"sim-upload","description":"slolab simulate: 1% of upload requests fail","match":{"cuj":"upload"},"rate":"1%","status":{"code":503,"body":"slolab simulate: injected failure\n"},"ttl":"1m"}`},
			explanation: "1 in 100 upload requests fails; at this rate (burn rate 2) a calendar month's budget lasts exactly 15 days, and the ticket alert (3d/6h ≥ 1) fires after 1d12h.",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := slo.PlanFor(svc, c.cuj, c.want)
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleJSON(t, p.Rules); strings.Join(got, "\n") != strings.Join(c.rules, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.rules, "\n"))
			}
			if p.Explanation != c.explanation {
				t.Errorf("explanation:\n%s\nwant:\n%s", p.Explanation, c.explanation)
			}
			if strings.Join(p.Notes, "\n") != strings.Join(c.notes, "\n") {
				t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(p.Notes, "\n"), strings.Join(c.notes, "\n"))
			}
		})
	}
}

func TestPlanRefuses(t *testing.T) {
	svc := service(t, chatFull)
	lognormal, _ := spec.ParseDelay("lognormal(100ms, 900ms)")
	cases := []struct {
		name string
		cuj  string
		want slo.Want
		err  string
	}{
		{"an unknown CUJ", "chat", slo.Want{BurnRate: ratioPtr(t, "1")}, `service chat has no CUJ "chat" (it has login, update, read, upload)`},
		{"two states at once", "update", slo.Want{BurnRate: ratioPtr(t, "1"), Alert: "page"}, "give exactly one state: an availability, a burn rate, a latency target or an alert"},
		{"a burn rate beyond total failure", "update", slo.Want{BurnRate: ratioPtr(t, "2000")}, "burn rate 2000 of a 99.9% SLO would fail more than every request (at most 1000.0)"},
		{"an alert the CUJ does not have", "update", slo.Want{Alert: "2h/1m"}, `no "2h/1m" alert: want page, ticket or one of the window pairs 1h/5m, 6h/30m, 1d/2h, 3d/6h`},
		{"a baseline without a maximum", "update", slo.Want{BurnRate: ratioPtr(t, "1"), Baseline: lognormal}, `baseline latency lognormal(100ms, 900ms) has no maximum, so it could push any CUJ past its threshold: give a fixed delay, uniform(a, b) or a percentile table such as "p50=120ms p99=400ms"`},
		{"full availability", "update", slo.Want{Availability: ratioPtr(t, "100%")}, "that state fails no request; nothing to simulate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := slo.PlanFor(svc, c.cuj, c.want)
			if err == nil || err.Error() != c.err {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}

func TestParseLatencyTarget(t *testing.T) {
	got, err := slo.ParseLatencyTarget("1s@99%")
	if err != nil || got.Threshold != time.Second || got.Objective != spec.NewRatio(99, 100) {
		t.Errorf("1s@99%%: %+v, %v", got, err)
	}
	for _, bad := range []string{"1s", "@99%", "1s@100%", "0s@99%", "fast@99%"} {
		if _, err := slo.ParseLatencyTarget(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
