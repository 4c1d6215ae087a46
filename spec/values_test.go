package spec_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

func TestRatiosAreExact(t *testing.T) {
	tests := []struct {
		in       string
		num, den uint64
		str      string
	}{
		{"0.1%", 1, 1000, "0.1%"},
		{"0.001", 1, 1000, "0.1%"},
		{"0.0001%", 1, 1_000_000, "0.0001%"},
		{"1/3", 1, 3, "1/3"},
		{"100%", 1, 1, "100%"},
		{"99.95%", 1999, 2000, "99.95%"},
		{"14.4", 72, 5, "1440%"},
	}
	for _, tt := range tests {
		r, err := spec.ParseRatio(tt.in)
		if err != nil {
			t.Errorf("ParseRatio(%q): %v", tt.in, err)
			continue
		}
		if r.Num() != tt.num || r.Den() != tt.den || r.String() != tt.str {
			t.Errorf("ParseRatio(%q) = %d/%d %q, want %d/%d %q", tt.in, r.Num(), r.Den(), r, tt.num, tt.den, tt.str)
		}
	}
	for _, bad := range []string{"", "-1%", "abc", "1e-20", "%", "1e-6"} {
		if _, err := spec.ParseRatio(bad); err == nil {
			t.Errorf("ParseRatio(%q) accepted", bad)
		}
	}
}

func TestFloorMulIsExactBeyond64Bits(t *testing.T) {
	r := spec.NewRatio(999_999, 1_000_000)
	n := uint64(math.MaxUint64)
	// floor((2^64-1)·999999/1e6) computed by hand: n - ceil(n/1e6) + (n mod 1e6 == 0 ? 0 : ...) — check via identity.
	got := r.FloorMul(n)
	want := n - n/1_000_000 - 1 // n·(1-1e-6) = n - n/1e6, and n/1e6 is not whole
	if got != want {
		t.Errorf("FloorMul = %d, want %d", got, want)
	}
	if !spec.AtLeast(1, 1000, spec.NewRatio(1, 1000)) || spec.AtLeast(999, 1_000_000, spec.NewRatio(1, 1000)) {
		t.Error("AtLeast is wrong at the boundary")
	}
}

func TestDurationsReadDaysAndWriteShortForms(t *testing.T) {
	tests := []struct {
		in   string
		d    time.Duration
		text string
	}{
		{"30d", 30 * 24 * time.Hour, "30d"},
		{"2w", 14 * 24 * time.Hour, "2w"},
		{"1h30m", 90 * time.Minute, "1h30m"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"1.5s", 1500 * time.Millisecond, "1.5s"},
		{"5m", 5 * time.Minute, "5m"},
	}
	for _, tt := range tests {
		d, err := spec.ParseDuration(tt.in)
		if err != nil || d != tt.d || spec.FormatDuration(d) != tt.text {
			t.Errorf("ParseDuration(%q) = %v, %v; formats as %q; want %v, %q", tt.in, d, err, spec.FormatDuration(d), tt.d, tt.text)
		}
	}
}

func TestDelayDistributions(t *testing.T) {
	tests := []struct {
		in        string
		quantiles map[float64]time.Duration
	}{
		{"1s", map[float64]time.Duration{0: time.Second, 0.99: time.Second}},
		{"uniform(100ms, 300ms)", map[float64]time.Duration{0: 100 * time.Millisecond, 0.5: 200 * time.Millisecond}},
		{"normal(200ms, 50ms)", map[float64]time.Duration{0.5: 200 * time.Millisecond}},
		{"lognormal(120ms, 900ms)", map[float64]time.Duration{0.5: 120 * time.Millisecond, 0.99: 900 * time.Millisecond}},
		{"p50=120ms p90=300ms p99=900ms", map[float64]time.Duration{0.25: 60 * time.Millisecond, 0.5: 120 * time.Millisecond, 0.7: 210 * time.Millisecond, 0.995: 900 * time.Millisecond}},
	}
	for _, tt := range tests {
		d, err := spec.ParseDelay(tt.in)
		if err != nil {
			t.Errorf("ParseDelay(%q): %v", tt.in, err)
			continue
		}
		if d.String() != tt.in {
			t.Errorf("ParseDelay(%q).String() = %q", tt.in, d)
		}
		for u, want := range tt.quantiles {
			got := d.Quantile(u)
			if diff := got - want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("%s: Quantile(%v) = %v, want %v", tt.in, u, got, want)
			}
		}
	}
	for _, bad := range []string{"uniform(3s, 1s)", "p90=1s p50=2s", "lognormal(1s, 500ms)", "soon"} {
		if _, err := spec.ParseDelay(bad); err == nil {
			t.Errorf("ParseDelay(%q) accepted", bad)
		}
	}
}

func TestFaultRulesRoundTripThroughJSON(t *testing.T) {
	src := `{"name": "update-500", "match": {"cuj": "update", "route": "POST /update", "headers": {"x-debug": "1"}, "group": "experiment"},
	  "rate": "0.1%", "seed": 7, "status": {"code": 500, "body": "injected"}, "delay": "p50=10ms p99=900ms", "ttl": "2m",
	  "patch": {"response": {"headers": {"X-Fault": "yes"}, "body": "!"}}}`
	r, err := spec.ParseFaultRule("body", []byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rate != spec.NewRatio(1, 1000) || r.Status.Code != 500 || r.TTL != 2*time.Minute || r.Match.Headers["X-Debug"] != "1" {
		t.Fatalf("decoded %+v", r)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := spec.ParseFaultRule("again", out, "")
	if err != nil {
		t.Fatalf("re-reading %s: %v", out, err)
	}
	out2, _ := json.Marshal(again)
	if string(out) != string(out2) {
		t.Errorf("round trip changed the rule:\n%s\n%s", out, out2)
	}
}

func TestBadFaultRulesAreRejectedWithPositions(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no action", `{"name": "x"}`, `body:1:1: a fault rule needs an action: abort, status, delay, replace or patch`},
		{"abort and status", `{"name": "x", "abort": true, "status": 500}`, `body:1:40: status: abort and status are both terminal; give one`},
		{"rate too small", `{"name": "x", "abort": true, "rate": "0.0000001"}`, `body:1:38: rate: must be at least 0.0001% (one in a million), got 0.0000001`},
		{"rate above one", `{"name": "x", "abort": true, "rate": "150%"}`, `body:1:38: rate: must be at most 100%, got 150%`},
		{"name mismatch", `{"name": "z", "abort": true}`, `body:1:10: name: the body names "z" but the URL names "x"`},
		{"route without cuj", `{"abort": true, "match": {"route": "GET /a"}}`, `body:1:36: match.route: a route selector needs the CUJ it belongs to (match.cuj)`},
		{"bad delay", `{"delay": "soonish"}`, `body:1:11: delay: want a delay such as 1s, uniform(100ms, 300ms), normal(200ms, 50ms), lognormal(120ms, 900ms) or "p50=120ms p99=900ms", got "soonish"`},
		{"unknown group", `{"abort": true, "match": {"group": "canary"}}`, `body:1:36: match.group: want experiment or control, got "canary"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.ParseFaultRule("body", []byte(tt.body), "x")
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

func TestRates(t *testing.T) {
	for in, want := range map[string]string{"200/s": "200/s", "200": "200/s", "30/m": "30/m", "0.5/s": "1/2s", "5/2s": "5/2s"} {
		r, err := spec.ParseRate(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	if _, err := spec.ParseRate("fast"); err == nil || !strings.Contains(err.Error(), "200/s") {
		t.Errorf("ParseRate(fast) = %v", err)
	}
}
