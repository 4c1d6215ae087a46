package experiment

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

const testService = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs:
    - name: update
      owner: t
      routes: ["POST /update"]
      availability: {objective: 99.9%, window: 30d}
      latency: {threshold: 1s, objective: 99%, window: 30d}
    - name: login
      owner: t
      routes: ["POST /login"]
      availability: {objective: 99.5%, window: 30d}
`

// experimentDoc wraps a spec body (indented by two) into an Experiment document of the test service.
func experimentDoc(body string) string {
	return testService + "---\napiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n  service: chat\n" + body
}

func compileDoc(t *testing.T, doc string) (*Compiled, error) {
	t.Helper()
	f, err := spec.Parse("x.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Compile(f.Experiments[0], f.Services[0])
}

// fakeView answers from a table; a missing entry has no requests.
type fakeView struct {
	sli   map[Query]SLI
	asked []Query
	err   error
}

func (v *fakeView) SLI(_ context.Context, q Query) (SLI, error) {
	v.asked = append(v.asked, q)
	if v.err != nil {
		return SLI{}, v.err
	}
	return v.sli[q], nil
}

var testBounds = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

func TestExpressionsEvaluateOverTheView(t *testing.T) {
	c, err := compileDoc(t, experimentDoc(`  blastRadius: {by: "header:X-User", experiment: 10%}
  steadyState:
    - availability("update", "1m") >= 99.9
    - availability("update", 1m, "experiment") >= 99.9
    - latency_ratio("update", "5m") >= 99
    - p99("update", "1m") < 800ms
    - p50("update", "1m") <= duration("100ms")
    - requests("login", "1m") >= 100
    - burn_rate("login", "1m") < 14.4
    - burn_rate("update", "1m") == 10.0
  method: [{duration: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	minute := Query{CUJ: "update", Group: GroupAll, Window: time.Minute}
	v := &fakeView{sli: map[Query]SLI{
		// 10 of 1000 failed: 99% available, burn rate (1%)/(0.1%) = 10 exactly.
		minute: {Total: 1000, Bad: 10, Slow: 5, Bounds: testBounds, Hist: []uint64{900, 80, 15, 5, 0}, Span: time.Minute},
		{CUJ: "update", Group: GroupExperiment, Window: time.Minute}: {Total: 100, Bad: 10, Bounds: testBounds, Hist: []uint64{100, 0, 0, 0, 0}, Span: time.Minute},
		{CUJ: "update", Group: GroupAll, Window: 5 * time.Minute}:    {Total: 5000, Slow: 50, Bounds: testBounds, Hist: []uint64{4000, 900, 50, 50, 0}, Span: 5 * time.Minute},
		{CUJ: "login", Group: GroupAll, Window: time.Minute}:         {Total: 200, Bad: 1, Bounds: testBounds, Hist: []uint64{200, 0, 0, 0, 0}, Span: time.Minute},
	}}
	ev := &evaluator{view: v, svc: c.Service, exp: c.Experiment, groups: true}
	c.fns.ev = ev
	ev.round(context.Background(), time.Unix(1000, 0))
	var got []string
	for _, h := range c.SteadyState {
		o := ev.eval(h)
		got = append(got, fmt.Sprintf("%v %s [%s]", o.Holds, o.Error, o.Values()))
	}
	want := []string{
		`false  [availability("update", "1m") = 99]`,
		`false  [availability("update", 1m, "experiment") = 90]`,
		`true  [latency_ratio("update", "5m") = 99]`,
		`false  [p99("update", "1m") = 833ms]`,
		`true  [p50("update", "1m") = 56ms]`,
		`true  [requests("login", "1m") = 200]`,
		`true  [burn_rate("login", "1m") = 1]`,
		`true  [burn_rate("update", "1m") = 10]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("outcomes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// One round reads each window once, however many expressions ask.
	if n := len(v.asked); n != 4 {
		t.Errorf("the view was asked %d times, want 4: %v", n, v.asked)
	}
}

func TestAWindowWithoutRequestsIsVacuouslyGood(t *testing.T) {
	c, err := compileDoc(t, experimentDoc(`  steadyState:
    - availability("update", "1m") == 100.0 && burn_rate("update", "1m") == 0.0 && requests("update", "1m") == 0
  method: [{duration: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &evaluator{view: &fakeView{}, svc: c.Service, exp: c.Experiment}
	c.fns.ev = ev
	ev.round(context.Background(), time.Unix(1000, 0))
	if o := ev.eval(c.SteadyState[0]); !o.Holds || o.Error != "" {
		t.Errorf("outcome = %+v", o)
	}
}

func TestAViewThatFailsMakesTheExpressionAnError(t *testing.T) {
	c, err := compileDoc(t, experimentDoc(`  steadyState: ['availability("update", "1m") >= 99']
  method: [{duration: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &evaluator{view: &fakeView{err: fmt.Errorf("admin API unreachable")}, svc: c.Service, exp: c.Experiment}
	c.fns.ev = ev
	ev.round(context.Background(), time.Unix(1000, 0))
	o := ev.eval(c.SteadyState[0])
	if o.Holds || o.Error != `availability("update", "1m"): admin API unreachable` {
		t.Errorf("outcome = %+v", o)
	}
}

func TestBudgetConsumedAndRecovery(t *testing.T) {
	c, err := compileDoc(t, experimentDoc(`  steadyState: ["true"]
  method: [{duration: 1m}]
  guardrails:
    abortIf: ['budget_consumed("update") > 0.5']
  expect:
    - recovers_within("update", 2m)
    - recovers_within("login", "30s")
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Recovery; len(got) != 2 || got["update"] != 2*time.Minute || got["login"] != 30*time.Second {
		t.Errorf("recovery CUJs = %v", got)
	}
	start := time.Date(2026, 11, 17, 12, 0, 0, 0, time.UTC)
	// 144 of 10000 failed over 1h: burn rate 14.4 against 99.9%; an hour of
	// a 30-day window at 14.4 is exactly 2% of the budget.
	v := &fakeView{sli: map[Query]SLI{{CUJ: "update", Group: GroupAll, Since: start}: {Total: 10000, Bad: 144, Span: time.Hour}}}
	ev := &evaluator{view: v, svc: c.Service, exp: c.Experiment, runStart: start}
	c.fns.ev = ev
	ev.round(context.Background(), start.Add(time.Hour))
	o := ev.eval(c.AbortIf[0])
	if !o.Holds || o.Values() != `budget_consumed("update") = 2` {
		t.Errorf("outcome = %+v", o)
	}
	ev.recovery = map[string]recoveryMark{"update": {recovered: true, after: 90 * time.Second}, "login": {waited: 5 * time.Minute}}
	var got []string
	for _, h := range c.Expect {
		o := ev.eval(h)
		got = append(got, fmt.Sprintf("%v %s", o.Holds, o.Measures[0].Detail))
	}
	want := "true met its SLOs again 1m30s after the method ended\nfalse not recovered within the 5m the runner watched"
	if strings.Join(got, "\n") != want {
		t.Errorf("expectations:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}

// Each bad expression is reported at file:line:col of the character at fault.
func TestBadExpressionsPointAtTheCharacter(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{
			name: "an unknown CUJ and a type error, in two expressions",
			body: `  steadyState:
    - availability("updte", "1m") >= 99.9
    - p99("update", "1m") < 800
  method: [{duration: 1m}]
`,
			want: []string{
				`x.yaml:22:20: spec.steadyState[0]: service chat has no CUJ "updte" (it has update, login)`,
				`x.yaml:23:27: spec.steadyState[1]: found no matching overload for '_<_' applied to '(duration, int)'; give the unit: 800ms, 1s`,
			},
		},
		{
			name: "a string compared with a duration, after a rewritten literal",
			body: `  steadyState:
    - 'p99("update", 5m) < "800ms"'
  method: [{duration: 1m}]
`,
			want: []string{`x.yaml:22:26: spec.steadyState[0]: found no matching overload for '_<_' applied to '(duration, string)'; compare a duration with a duration: 800ms or duration("800ms")`},
		},
		{
			name: "windows, groups and sections",
			body: `  steadyState:
    - availability("update", "run") >= 99 && latency_ratio("login", "5m") > 1.0
  method: [{duration: 1m}]
  guardrails:
    abortIf:
      - availability("update", "7h", "experiment") < 99 || recovers_within("update", 1m)
`,
			want: []string{
				`x.yaml:22:30: spec.steadyState[0]: the "run" window does not exist before the method starts; give the steady state a window such as "1m"`,
				`x.yaml:22:60: spec.steadyState[0]: CUJ login has no latency SLO, so latency_ratio has no threshold to measure against`,
				`x.yaml:26:32: spec.guardrails.abortIf[0]: a window must be between 1s and 6h (the proxy's live history), got 7h`,
				`x.yaml:26:38: spec.guardrails.abortIf[0]: the experiment has no blastRadius, so there is no experiment group`,
				`x.yaml:26:60: spec.guardrails.abortIf[0]: recovers_within measures what happens after the method; use it in expect`,
			},
		},
		{
			name: "not a condition, and a syntax error on the second line of a block",
			body: `  steadyState:
    - availability("update", "1m")
    - |
      requests("update", "1m") >
        >= 5
  method: [{duration: 1m}]
`,
			want: []string{
				`x.yaml:22:7: spec.steadyState[0]: must be true or false, but gives a double; compare it, as in availability("login", "5m") >= 99.9`,
				`x.yaml:25:9: spec.steadyState[1]: Syntax error: extraneous input '>=' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`,
			},
		},

		{
			name: "a schedule cron cannot read",
			body: `  steadyState: ["true"]
  method: [{duration: 1m}]
  schedule: every tuesday
`,
			want: []string{`x.yaml:23:13: spec.schedule: want a cron schedule such as "0 11 * * 2" (minute hour day month weekday) or @daily: expected exactly 5 fields, found 2: [every tuesday]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileDoc(t, experimentDoc(tt.body))
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDurationLiteralsAreRewrittenOutsideStringsOnly(t *testing.T) {
	tests := []struct{ in, want string }{
		{`p99("update", "1m") < 800ms`, `p99("update", "1m") < duration("800ms")`},
		{`recovers_within("token", 5m)`, `recovers_within("token", duration("5m0s"))`},
		{`x < 1h30m && y > 30d`, `x < duration("1h30m0s") && y > duration("720h0m0s")`},
		{`'5m' + "1h" + r"2s" + """3s"""`, `'5m' + "1h" + r"2s" + """3s"""`},
		{`a1m + 0x1d + 1e3 + 2u + 1.5s`, `a1m + 0x1d + 1e3 + 2u + duration("1.5s")`},
	}
	for _, tt := range tests {
		if got := rewriteDurations(tt.in).text; got != tt.want {
			t.Errorf("rewriteDurations(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	rw := rewriteDurations(`a < 800ms && b`)
	// "&&" is at 10 in the original and 22 in the rewrite; the literal itself maps to its start.
	if got := rw.original(strings.Index(rw.text, "&&")); got != 10 {
		t.Errorf("original(&&) = %d, want 10", got)
	}
	if got := rw.original(strings.Index(rw.text, `"800ms"`)); got != 4 {
		t.Errorf("original(inside the literal) = %d, want 4", got)
	}
}
