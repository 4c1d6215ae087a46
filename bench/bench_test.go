package main

import (
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

func ratio(t *testing.T, s string) spec.Ratio {
	t.Helper()
	r, err := spec.ParsePercent(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTenThousandRequestsOver32ConnectionsAreSplit313And312(t *testing.T) {
	got := spreadConns(10000, 32)
	want := append(slices.Repeat([]int{313}, 16), slices.Repeat([]int{312}, 16)...)
	if !slices.Equal(got, want) {
		t.Errorf("spreadConns(10000, 32) = %v\nwant %v", got, want)
	}
}

func TestSlolabsCounterInjectsExactlyTenOf10000AtEverySeed(t *testing.T) {
	res := simulateExact(exactConfig{Rate: ratio(t, "0.1%"), Requests: 10000, Conns: 32, Runs: 20, Seed: 1})
	if res[0].strategy.name != "slolab" {
		t.Fatalf("first strategy is %q, want slolab", res[0].strategy.name)
	}
	if want := slices.Repeat([]int{10}, 20); !slices.Equal(res[0].counts, want) {
		t.Errorf("slolab counts = %v, want %v", res[0].counts, want)
	}
}

func TestTheRandomStrategiesSpreadOverTheSameSeeds(t *testing.T) {
	res := simulateExact(exactConfig{Rate: ratio(t, "0.1%"), Requests: 10000, Conns: 32, Runs: 20, Seed: 1})
	for _, r := range res[1:] {
		if slices.Min(r.counts) == slices.Max(r.counts) {
			t.Errorf("%s: every run injected %d; a random draw spreads", r.strategy.name, r.counts[0])
		}
	}
}

func TestAPerConnectionDrawFaultsWholeConnections(t *testing.T) {
	// Every count is 313·a + 312·b for a, b ≤ 16 connections faulted.
	whole := map[int]bool{}
	for a := range 17 {
		for b := range 17 {
			whole[313*a+312*b] = true
		}
	}
	conns := spreadConns(10000, 32)
	for seed := range uint64(200) {
		if n := perConnStrategy(ratio(t, "10%"), conns, seed); !whole[n] {
			t.Fatalf("seed %d: %d injected is not a whole number of connections", seed, n)
		}
	}
}

func TestTheStrategiesAtRates0And100Percent(t *testing.T) {
	conns := spreadConns(10000, 32)
	for _, st := range strategies {
		if n := st.run(ratio(t, "0%"), conns, 7); n != 0 {
			t.Errorf("%s at 0%%: %d injected, want 0", st.name, n)
		}
		if n := st.run(ratio(t, "100%"), conns, 7); n != 10000 {
			t.Errorf("%s at 100%%: %d injected, want 10000", st.name, n)
		}
	}
}

func TestWrksSummaryIsRead(t *testing.T) {
	text, err := os.ReadFile("testdata/wrk.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseWrk(string(text))
	want := clientResult{rps: 31700.35, requests: 34883, p50: 77 * time.Microsecond, p99: 1820 * time.Microsecond}
	if err != nil || got != want {
		t.Errorf("parseWrk = %+v, %v\nwant %+v", got, err, want)
	}
	withErrors := string(text) + "  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 5\n"
	if got, _ := parseWrk(withErrors); got.errors != 15 {
		t.Errorf("errors = %d, want 15", got.errors)
	}
	if _, err := parseWrk("Running 1s test\n"); err == nil {
		t.Error("no error for output without Requests/sec")
	}
}

func TestHeysSummaryIsReadWithItsErrorsAndNon200Responses(t *testing.T) {
	text, err := os.ReadFile("testdata/hey.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseHey(string(text))
	want := clientResult{rps: 6596.0504, p50: 400 * time.Microsecond, p99: 3 * time.Millisecond, errors: 5 + 3 + 2}
	if err != nil || got != want {
		t.Errorf("parseHey = %+v, %v\nwant %+v", got, err, want)
	}
}

func TestSlolabLoadsJSONTotalsAreRead(t *testing.T) {
	got, err := parseLoadReport([]byte(`{"elapsed": "4s", "total": {"due": 8002, "sent": 8000, "dropped": 2, "errors": 1, "rate": 1999.5,
		"status": {"2xx": 7990, "4xx": 3, "5xx": 4}, "latency": {"p50": "250µs", "p99": "1.5ms"}}}`))
	want := clientResult{rps: 1999.5, requests: 8002, p50: 250 * time.Microsecond, p99: 1500 * time.Microsecond, errors: 2 + 1 + 3 + 4}
	if err != nil || got != want {
		t.Errorf("parseLoadReport = %+v, %v\nwant %+v", got, err, want)
	}
}

func TestVegetasLagIsMeasuredFromTheLeastLaggedHit(t *testing.T) {
	// 100 hits at 1000/s: hit k is due at began + (k+1) ms. Hits 0..98 are
	// on time after a constant offset; hit 99 left 3 ms late.
	var b strings.Builder
	began := int64(1_000_000_000_000)
	for k := range 100 {
		ts := began + int64(k+1)*1e6 + 42 // the constant offset does not count
		if k == 99 {
			ts += 3e6
		}
		code := "200"
		if k == 5 {
			code = "500"
		}
		b.WriteString(strings.Join([]string{itoa(ts), code, "1000", "0", "2", "", "b2s=", "", itoa(int64(k)), "GET", "http://x/", ""}, ",") + "\n")
	}
	p99, hits, errs, err := vegetaLag(strings.NewReader(b.String()), 1000)
	// Nearest rank: the 99th of 100 sorted lags is the last on-time one.
	if err != nil || p99 != 0 || hits != 100 || errs != 1 {
		t.Errorf("vegetaLag = %s, %d hits, %d errors, %v; want 0s, 100, 1, nil", p99, hits, errs, err)
	}
	// With two late hits the p99 is the smaller lateness.
	late := strings.Replace(b.String(), itoa(began+99*1e6+42), itoa(began+99*1e6+42+2e6), 1)
	if p99, _, _, _ := vegetaLag(strings.NewReader(late), 1000); p99 != 2*time.Millisecond {
		t.Errorf("p99 with hits 98 and 99 late by 2 and 3 ms = %s, want 2ms", p99)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestNearestRankQuantiles(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}, {0, 1}} {
		if got := quantileDur(ds, c.q); got != c.want {
			t.Errorf("quantile %v = %d, want %d", c.q, got, c.want)
		}
	}
}

func TestGoTestVerboseOutputGivesEachTestsResultAndLogs(t *testing.T) {
	out := `=== RUN   TestA
    realtime_test.go:62: sent 5000 late 0
--- PASS: TestA (10.12s)
=== RUN   TestB
    realtime_test.go:90: sent 20000
    realtime_test.go:95: achieved 1982.84/s, want 2000/s ± 0.5%
--- FAIL: TestB (11.31s)
FAIL
`
	got := parseGoTestV(out)
	want := []testResult{
		{name: "TestA", result: "PASS", elapsed: "10.12s", logs: []string{"sent 5000 late 0"}},
		{name: "TestB", result: "FAIL", elapsed: "11.31s", logs: []string{"sent 20000", "achieved 1982.84/s, want 2000/s ± 0.5%"}},
	}
	if !slices.EqualFunc(got, want, func(a, b testResult) bool {
		return a.name == b.name && a.result == b.result && a.elapsed == b.elapsed && slices.Equal(a.logs, b.logs)
	}) {
		t.Errorf("parseGoTestV = %+v\nwant %+v", got, want)
	}
}

func TestProcStatIsReadWhenTheCommandNameHoldsParentheses(t *testing.T) {
	pid, ppid, err := parseStat("4242 (nginx: worker (x) y) S 4241 4241 1 0 -1")
	if err != nil || pid != 4242 || ppid != 4241 {
		t.Errorf("parseStat = %d, %d, %v; want 4242, 4241, nil", pid, ppid, err)
	}
	if got := parseProcField("Name:\tx\nVmHWM:\t  336123 kB\nVmRSS:\t 1 kB\n", "VmHWM"); got != 336123 {
		t.Errorf("VmHWM = %d, want 336123", got)
	}
}

const testTemplate = `# Benchmarks

## Summary

<!-- bench:summary:begin -->
<!-- bench:summary:end -->

## A

<!-- bench:a:begin -->
<!-- bench:a:end -->

## B

<!-- bench:b:begin -->
<!-- bench:b:end -->
`

func TestTheDocumentKeepsSectionsThisRunDidNotMeasureAndSummarizesAll(t *testing.T) {
	old, err := fill(testTemplate, "", map[string]string{
		"a": "old a\n\n- **trails**: slolab is slower at a.\n",
		"b": "old b\n\n- **leads**: slolab is exact at b.\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fill(testTemplate, old, map[string]string{"a": "new a\n\n- **leads**: slolab is faster at a.\n- **on par**: a and a.\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Benchmarks

## Summary

<!-- bench:summary:begin -->
Where slolab leads:

- a: slolab is faster at a.
- b: slolab is exact at b.

Where slolab trails:

- nowhere in this run.

Where it is on par (within the noise of a shared machine: 5% for throughput, 20% or 1 ms for latency):

- a: a and a.
<!-- bench:summary:end -->

## A

<!-- bench:a:begin -->
new a

- **leads**: slolab is faster at a.
- **on par**: a and a.
<!-- bench:a:end -->

## B

<!-- bench:b:begin -->
old b

- **leads**: slolab is exact at b.
<!-- bench:b:end -->
`
	if got != want {
		t.Errorf("fill =\n%s\nwant\n%s", got, want)
	}
}

func TestASectionNeverRunSaysHowToRunIt(t *testing.T) {
	got, err := fill(testTemplate, "", map[string]string{"a": "x\n"})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := section(got, "b"); body != "*Not run yet: `go run ./bench -only b`.*\n" {
		t.Errorf("section b = %q", body)
	}
}

func TestASectionWithoutMarkersIsAnError(t *testing.T) {
	if _, err := fill(testTemplate, "", map[string]string{"c": "x\n"}); err == nil {
		t.Error("no error for a section the template lacks")
	}
}

func TestTheCheckedInTemplateHasEverySection(t *testing.T) {
	tmpl, err := os.ReadFile("benchmarks.tmpl.md")
	if err != nil {
		t.Fatal(err)
	}
	got := sectionNames(string(tmpl))
	want := append([]string{"summary", "session"}, "proxy", "errclass", "profile", "exact", "delay", "load", "realtime", "slo", "slo-prometheus", "memory")
	if !slices.Equal(got, want) {
		t.Errorf("template sections = %v, want %v", got, want)
	}
	for _, name := range allSections {
		if !slices.Contains(got, name) {
			t.Errorf("section %s has no markers in the template", name)
		}
	}
}

func TestVerdicts(t *testing.T) {
	for _, c := range []struct {
		name string
		got  string
		want string
	}{
		{"4× the throughput leads", verdict(4), "leads"},
		{"0.97× is on par", verdict(0.97), "on par"},
		{"0.5× trails", verdict(0.5), "trails"},
		{"half the p99 leads", latencyVerdict(10*time.Millisecond, 20*time.Millisecond), "leads"},
		{"a p99 0.9 ms above a 2 ms one is on par", latencyVerdict(2900*time.Microsecond, 2*time.Millisecond), "on par"},
		{"twice a 10 ms p99 trails", latencyVerdict(20*time.Millisecond, 10*time.Millisecond), "trails"},
		{"keeping 96% of throughput is on par", costVerdict(0.96), "on par"},
		{"keeping 68% trails", costVerdict(0.68), "trails"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestBadFlagsAreRefusedWithTheirName(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-only", "proxy,nope"}, `-only: unknown section "nope"`},
		{[]string{"-load-rates", "500,400"}, "-load-rates: want ascending rates, got 400 after 500"},
		{[]string{"-load-step", "1500ms"}, "-load-step: want whole seconds, got 1.5s"},
		{[]string{"-exact-rate", "200%"}, "-exact-rate and -delay-share: want at most 100%, got 200% and 1%"},
	} {
		_, err := parseFlags(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
	cfg, err := parseFlags(nil)
	if err != nil || !slices.Equal(cfg.only, allSections) || cfg.exact.Rate != ratio(t, "0.1%") || cfg.memory.Conns != 10000 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}

func TestGoBenchmarkLinesGiveTheirMetricsByUnit(t *testing.T) {
	out := "goos: linux\nBenchmarkStatus10kSLOs30Days-2   \t      20\t 129012345 ns/op\t     10000 SLOs\t 193000000 cpu-ns/op\t28512345 B/op\t   88608 allocs/op\nPASS\n"
	got := parseBench(out)
	want := []benchResult{{name: "BenchmarkStatus10kSLOs30Days", n: 20, metrics: map[string]float64{
		"ns/op": 129012345, "SLOs": 10000, "cpu-ns/op": 193000000, "B/op": 28512345, "allocs/op": 88608}}}
	if len(got) != 1 || got[0].name != want[0].name || got[0].n != want[0].n || !maps.Equal(got[0].metrics, want[0].metrics) {
		t.Errorf("parseBench = %+v\nwant %+v", got, want)
	}
}
