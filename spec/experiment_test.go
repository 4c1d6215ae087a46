package spec_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

func TestTheExampleExperimentsLoad(t *testing.T) {
	f, err := spec.LoadFile("../examples/chat-experiments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Experiments) != 2 || len(f.GameDays) != 1 {
		t.Fatalf("got %d experiments and %d GameDays, want 2 and 1", len(f.Experiments), len(f.GameDays))
	}
	x := f.Experiments[0]
	if x.Name != "update-errors" || x.Service != "chat" || x.ServiceFile != "chat.yaml" {
		t.Errorf("experiment %q of service %q in %q", x.Name, x.Service, x.ServiceFile)
	}
	if x.Interval != 5*time.Second || x.Lease != 30*time.Second || x.Recovery != spec.DefaultRecovery {
		t.Errorf("interval %v, lease %v, recovery %v", x.Interval, x.Lease, x.Recovery)
	}
	if got := x.MethodDuration(); got != 6*time.Minute {
		t.Errorf("method takes %v, want 6m", got)
	}
	if g := x.BlastRadius; g == nil || g.By != "header:X-User-ID" || g.Experiment != spec.NewRatio(1, 10) || g.Salt != "update-errors" || g.TTL != 30*time.Second {
		t.Errorf("blast radius = %+v", x.BlastRadius)
	}
	step := x.Method[0]
	if step.Name != "errors" || step.Ramp == nil || step.Ramp.Stages != 4 || step.StageDuration() != 75*time.Second {
		t.Errorf("step = %+v", step)
	}
	if r := step.Faults[0]; r.Name != "update-500" || r.Status.Code != 500 || r.Rate != spec.NewRatio(1, 10) {
		t.Errorf("fault = %+v", r)
	}
	if got := x.SteadyState[1]; got.Text != `p99("update", "1m", "control") < 800ms` || got.Description != "edits feel instant" || got.Path != "spec.steadyState[1].expr" {
		t.Errorf("second steady-state expression = %+v", got)
	}
	if got := x.Guardrails.Location.String(); got != "Europe/Berlin" {
		t.Errorf("time zone = %s", got)
	}
	if x.Guardrails.MaxDuration != 15*time.Minute || len(x.Guardrails.AbortIf) != 2 || len(x.Expect) != 2 {
		t.Errorf("guardrails = %+v, expect = %+v", x.Guardrails, x.Expect)
	}
	g := f.GameDays[0]
	if g.Name != "edits-failing" || g.Announced || !g.EndOnMitigate || len(g.Scenario) != 1 || g.Scenario[0].Experiment != "update-errors" || g.Scenario[0].After != time.Minute {
		t.Errorf("GameDay = %+v", g)
	}
}

func TestRampsRiseEvenlyAndEndAtTheRate(t *testing.T) {
	tests := []struct {
		name   string
		from   string
		stages int
		to     string
		want   []string
	}{
		{"from 1% to 10% in four stages", "1%", 4, "10%", []string{"1%", "4%", "7%", "10%"}},
		{"from zero in two stages", "0%", 2, "50%", []string{"0%", "50%"}},
		{"thirds stay exact", "0%", 4, "1%", []string{"0%", "1/300", "1/150", "1%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, _ := spec.ParseRatio(tt.from)
			to, _ := spec.ParseRatio(tt.to)
			r := &spec.Ramp{From: from, Stages: tt.stages}
			var got []string
			for _, v := range r.Rates(to) {
				got = append(got, v.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("rates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAllowedWindows(t *testing.T) {
	const doc = `apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: x}
spec:
  steadyState: ["true"]
  method: [{duration: 1m}]
  guardrails:
    timeZone: Europe/Berlin
    allowedWindows:
      - {days: Mon-Thu, hours: "10:00-16:00"}
      - {days: [Fri], hours: "22:00-02:00"}
    blackoutDates: ["2026-12-24..2026-12-26", "2026-11-19"]
`
	f, err := spec.Parse("x.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g := f.Experiments[0].Guardrails
	berlin := g.Location
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		at   string
		ok   bool
		why  string
	}{
		{"a Tuesday at noon is allowed", "2026-11-17 12:00", true, ""},
		{"the window's end is excluded", "2026-11-17 16:00", false, "Tue 2026-11-17 16:00 is outside the allowed windows (Mon-Thu 10:00-16:00; Fri 22:00-02:00, Europe/Berlin)"},
		{"a Friday night window runs past midnight", "2026-11-21 01:30", true, ""},
		{"but not into Saturday night", "2026-11-21 23:00", false, "Sat 2026-11-21 23:00 is outside the allowed windows (Mon-Thu 10:00-16:00; Fri 22:00-02:00, Europe/Berlin)"},
		{"a blackout date wins over a window", "2026-11-19 12:00", false, "Thu 2026-11-19 is a blackout date (2026-11-19)"},
		{"a blackout range includes its last day", "2026-12-26 12:00", false, "Sat 2026-12-26 is a blackout date (2026-12-24..2026-12-26)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, why := g.Allowed(at(tt.at).UTC())
			if ok != tt.ok || why != tt.why {
				t.Errorf("Allowed = %v, %q; want %v, %q", ok, why, tt.ok, tt.why)
			}
		})
	}
	closes, ok := g.ClosesWithin(at("2026-11-17 15:30"), time.Hour)
	if !ok || !closes.Equal(at("2026-11-17 16:00")) {
		t.Errorf("ClosesWithin = %v, %v; want 16:00", closes, ok)
	}
	if _, ok := g.ClosesWithin(at("2026-11-17 11:00"), time.Hour); ok {
		t.Error("a window open for the whole hour closes within it")
	}
}

// Each bad experiment or GameDay is rejected with exactly these messages, in file order.
func TestBadExperimentsAreRejectedWithPositions(t *testing.T) {
	const head = "apiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n"
	tests := []struct {
		name string
		body string
		want []string
	}{
		{
			name: "no hypothesis and no method",
			body: "  description: nothing\n",
			want: []string{
				`t.yaml:5:3: spec.steadyState: required`,
				`t.yaml:5:3: spec.method: required`,
			},
		},
		{
			name: "a rule of a step with a TTL and a ramp above its rate",
			body: `  steadyState: ["true"]
  method:
    - duration: 1m
      ramp: {from: 20%, stages: 2}
      faults:
        - {name: a, status: 500, rate: 10%, ttl: 5m}
`,
			want: []string{
				`t.yaml:8:13: spec.method[0].ramp.from: the ramp starts at 20%, which is not below the rate of fault a (10%)`,
				`t.yaml:10:50: spec.method[0].faults[0].ttl: the experiment runner times its faults (the step's duration, the experiment's lease); remove ttl`,
			},
		},
		{
			name: "a TCP fault with a blast radius and a method longer than the maximum",
			body: `  steadyState: ["true"]
  blastRadius: {by: "header:X-User", experiment: 10%, ttl: 1m}
  method:
    - duration: 10m
      faults:
        - {name: db, match: {tcp: postgres}, tcp: {latency: 100ms}}
  guardrails: {maxDuration: 5m}
`,
			want: []string{
				`t.yaml:6:60: spec.blastRadius.ttl: the experiment's lease is the grouping's TTL; set spec.lease instead`,
				`t.yaml:10:11: spec.method: fault db is a TCP fault, which reaches every client (a connection carries no user identity); it cannot be held to the blast radius: remove blastRadius or this fault`,
				`t.yaml:11:29: spec.guardrails.maxDuration: the method alone takes 10m, more than the maximum duration 5m`,
			},
		},
		{
			name: "windows, days and dates that do not parse",
			body: `  steadyState: ["true"]
  method: [{duration: 1m}]
  guardrails:
    timeZone: Mars/Olympus
    allowedWindows: [{days: Mon-Someday, hours: "9-17"}]
    blackoutDates: ["2026-12-31..2026-12-01", "tomorrow"]
`,
			want: []string{
				`t.yaml:8:15: spec.guardrails.timeZone: unknown time zone "Mars/Olympus": use an IANA name such as Europe/Berlin or UTC`,
				`t.yaml:9:29: spec.guardrails.allowedWindows[0].days: want days such as Mon-Fri, Mon,Wed,Fri or daily, got "Mon-Someday"`,
				`t.yaml:9:49: spec.guardrails.allowedWindows[0].hours: want hours such as 09:00-17:00 (24-hour clock; 22:00-06:00 runs past midnight), got "9-17"`,
				`t.yaml:10:21: spec.guardrails.blackoutDates[0]: the range "2026-12-31..2026-12-01" ends before it starts`,
				`t.yaml:10:47: spec.guardrails.blackoutDates[1]: want a date such as 2026-12-24 or a range 2026-12-24..2027-01-02, got "tomorrow"`,
			},
		},
		{
			name: "an empty expression and a misspelt field",
			body: `  steadyState: ["  "]
  method: [{duration: 1m}]
  expectations: []
`,
			want: []string{
				`t.yaml:5:17: spec.steadyState[0]: empty expression`,
				`t.yaml:7:3: spec.expectations: unknown field (known: blastRadius, description, expect, guardrails, interval, lease, method, recovery, schedule, service, serviceFile, significance, steadyState)`,
			},
		},
		{
			name: "an experiment naming a service the file does not hold",
			body: `  service: billing
  steadyState: ["true"]
  method: [{duration: 1m}]
---
apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs: [{name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}}]
`,
			want: []string{`t.yaml:5:12: spec.service: no Service "billing" in this file (it has chat); name one of them or set serviceFile`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse("t.yaml", []byte(head+tt.body))
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestBadGameDaysAreRejectedWithPositions(t *testing.T) {
	const doc = `apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: g}
spec:
  announced: maybe
  scenario:
    - {after: 1m}
`
	_, err := spec.Parse("g.yaml", []byte(doc))
	want := "g.yaml:5:14: spec.announced: want true or false, got \"maybe\"\ng.yaml:7:7: spec.scenario[0].experiment: required"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

// An expression's characters map back to the file, whatever the YAML style.
func TestExpressionPositionsPointIntoTheFile(t *testing.T) {
	const doc = `apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: x}
spec:
  steadyState:
    - availability("a", "1m") >= 99
    - 'availability(''a'', "1m") >= 99'
    - "availability(\"a\", '1m') >= 99"
    - |
      availability("a", "1m")
        >= 99
  method: [{duration: 1m}]
`
	f, err := spec.Parse("x.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	ss := f.Experiments[0].SteadyState
	// The position of ">=" in each expression, as CEL would report it.
	tests := []struct {
		name      string
		e         spec.Expr
		line, col int
		want      string
	}{
		{"plain", ss[0], 1, 24, "x.yaml:6:31"},
		{"single-quoted, with doubled quotes before it", ss[1], 1, 24, "x.yaml:7:34"},
		{"double-quoted, with escapes before it", ss[2], 1, 24, "x.yaml:8:34"},
		{"literal block, second line", ss[3], 2, 2, "x.yaml:11:9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.At(tt.line, tt.col).String(); got != tt.want {
				t.Errorf("At(%d, %d) = %s, want %s", tt.line, tt.col, got, tt.want)
			}
		})
	}
}

func TestTCPFaultRules(t *testing.T) {
	r, err := spec.ParseFaultRule("body", []byte(`{"match": {"tcp": "postgres"}, "rate": "25%", "tcp": {"per": "chunk", "direction": "both", "latency": "100ms", "jitter": "20ms", "bandwidth": "64KiB/s"}}`), "db-slow")
	if err != nil {
		t.Fatal(err)
	}
	want := &spec.TCPAction{Per: spec.PerChunk, Direction: spec.Both, Latency: 100 * time.Millisecond, Jitter: 20 * time.Millisecond, Bandwidth: 64 << 10}
	if *r.TCP != *want || !r.IsTCP() || r.Terminal() {
		t.Errorf("tcp = %+v", r.TCP)
	}
	if got := r.Actions(); got != "tcp latency 100ms±20ms + bandwidth 64KiB/s both per chunk" {
		t.Errorf("actions = %q", got)
	}
	out, _ := json.Marshal(r)
	again, err := spec.ParseFaultRule("again", out, "")
	if err != nil {
		t.Fatalf("re-reading %s: %v", out, err)
	}
	if *again.TCP != *want || again.Match.TCP != "postgres" {
		t.Errorf("round trip gave %+v from %s", again.TCP, out)
	}

	bad := []struct{ name, body, want string }{
		{"a TCP rule with an HTTP action and a CUJ", `{"match": {"tcp": "db", "cuj": "a"}, "status": 500, "tcp": {"reset": true}}`,
			"body:1:1: a TCP fault (match.tcp) cannot have HTTP actions (abort, status, delay, replace, patch): a TCP stream has no requests\n" +
				"body:1:11: match: a TCP fault selects only its listener (match.tcp): a connection carries no CUJ, route, method, header or client group"},
		{"a TCP action without a listener", `{"tcp": {"reset": true}}`, "body:1:9: tcp: a TCP fault needs the listener it applies to: match.tcp"},
		{"a listener without a TCP action", `{"match": {"tcp": "db"}}`, "body:1:1: a rule with match.tcp needs a tcp action: latency, bandwidth, reset, blackhole or slowClose"},
		{"reset and blackhole, slow close per chunk", `{"match": {"tcp": "db"}, "tcp": {"per": "chunk", "reset": true, "blackhole": true, "slowClose": "1s"}}`,
			"body:1:78: tcp.blackhole: reset and blackhole both end the data flow; give one\nbody:1:97: tcp.slowClose: a close belongs to a connection, not a chunk: use per: connection"},
		{"a bandwidth without a unit per second", `{"match": {"tcp": "db"}, "tcp": {"bandwidth": "64KiB"}}`, `body:1:47: tcp.bandwidth: want a bandwidth such as 64KiB/s, 1MB/s or 10Mbit/s, got "64KiB"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.ParseFaultRule("body", []byte(tt.body), "x")
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

func TestBandwidths(t *testing.T) {
	for in, want := range map[string]int64{"64KiB/s": 65536, "1MB/s": 1_000_000, "10Mbit/s": 1_250_000, "512 B/s": 512, "1.5MiB/s": 1572864} {
		got, err := spec.ParseBandwidth(in)
		if err != nil || got != want {
			t.Errorf("ParseBandwidth(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[int64]string{65536: "64KiB/s", 1_000_000: "1000000B/s", 3 << 20: "3MiB/s"} {
		if got := spec.FormatBandwidth(in); got != want {
			t.Errorf("FormatBandwidth(%d) = %s, want %s", in, got, want)
		}
	}
}
