package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestProcStatGivesUserPlusSystemTicks(t *testing.T) {
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194304 1000 0 0 0 250 75 0 0 20 0 8 0 100 1000000 500 18446744073709551615\n"
	if got := statTicks(stat); got != 325 {
		t.Errorf("statTicks = %d, want 250 + 75", got)
	}
	if got := statTicks("garbage"); got != 0 {
		t.Errorf("statTicks(garbage) = %d, want 0", got)
	}
}

func TestPprofTopGivesEntriesAndWhatTheyAccountFor(t *testing.T) {
	text := `File: proxy.test
Type: cpu
Duration: 1.96s, Total samples = 2.52s (128.37%)
Active filters:
   ignore=BenchmarkProxyLoopback
Showing nodes accounting for 1.83s, 72.62% of 2.52s total
      flat  flat%   sum%        cum   cum%
     0.75s 29.76% 29.76%      0.75s 29.76%  internal/runtime/syscall/linux.Syscall6
     0.07s  2.78% 32.54%      0.07s  2.78%  runtime.memclrNoHeapPointers
     0.03s  1.19% 40.48%      0.03s  1.19%  internal/runtime/atomic.(*Uint32).CompareAndSwap (inline)
         0     0% 72.62%      180ms  7.14%  runtime.mallocgc
`
	entries, total := parsePprofTop(text)
	want := []pprofEntry{
		{"internal/runtime/syscall/linux.Syscall6", 750 * time.Millisecond, 750 * time.Millisecond},
		{"runtime.memclrNoHeapPointers", 70 * time.Millisecond, 70 * time.Millisecond},
		{"internal/runtime/atomic.(*Uint32).CompareAndSwap", 30 * time.Millisecond, 30 * time.Millisecond},
	}
	want = append(want, pprofEntry{"runtime.mallocgc", 0, 180 * time.Millisecond}) // a flat 0 has no unit
	if total != 1830*time.Millisecond || fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Errorf("total %s, entries %v\nwant 1.83s, %v", total, entries, want)
	}
}

func TestTheProxyGoalsAreMetOrMissedFromTheFigures(t *testing.T) {
	cpu := func(name string) time.Duration {
		return map[string]time.Duration{"slolab": 25 * time.Microsecond}[name]
	}
	for _, c := range []struct {
		name                     string
		sl, tox, tuned, active   float64
		slAdded, ngxAdded        time.Duration
		want                     string
		missedReadingMentionsWhy bool
	}{
		{"all met", 30000, 29000, 15000, 29500, time.Millisecond, 2 * time.Millisecond, "met met met met", false},
		{"all missed", 25000, 29000, 20000, 24000, 3 * time.Millisecond, 2 * time.Millisecond, "missed missed missed missed", true},
		{"on the line", 29000, 29000, 29000 / 1.5, 29000 * 0.97, time.Millisecond, time.Millisecond, "met met met met", false},
	} {
		rule := ruleCost{perCPU: c.active / c.sl, wall: 1, rounds: []float64{1}}
		gs := proxyGoals(c.sl, c.tox, c.tuned, rule, cpu, c.slAdded, c.ngxAdded, 15000)
		var got []string
		for _, g := range gs {
			v := "met"
			if !g.met {
				v = "missed"
				if c.missedReadingMentionsWhy && !strings.Contains(g.text, "goal") {
					t.Errorf("%s: a missed goal's reading does not name the goal: %q", c.name, g.text)
				}
			}
			got = append(got, v)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
}

// The cost of a rule elsewhere is judged from CPU time over every round
// (requests per CPU-second), with the wall-clock ratio paired round by
// round beside it: a round that a busy neighbour slowed for one process
// moves the wall ratio, not the verdict.
func TestARulesCostIsJudgedFromCPUTimeWithTheWallRatioPairedByRound(t *testing.T) {
	sample := func(rps float64, reqs int64, cpu time.Duration) proxySample {
		return proxySample{wrk: clientResult{rps: rps, requests: reqs}, cpuTotal: cpu}
	}
	without := []proxySample{sample(20000, 100000, 2500*time.Millisecond), sample(18000, 90000, 2250*time.Millisecond), sample(21000, 105000, 2650*time.Millisecond)}
	with := []proxySample{sample(19800, 99000, 2480*time.Millisecond), sample(15300, 76500, 1920*time.Millisecond), sample(21210, 106050, 2670*time.Millisecond)}
	c := ruleCostOf(without, with)
	if fmt.Sprintf("%.3f %.3f %v %v %v", c.perCPU, c.wall, c.rounds, c.cpu[0], c.cpu[1]) != "0.999 0.990 [0.99 0.85 1.01] 25.084µs 25.11µs" {
		t.Errorf("perCPU %.3f wall %.3f rounds %v cpu %v", c.perCPU, c.wall, c.rounds, c.cpu)
	}
	g := proxyGoals(20000, 19000, 10000, c, func(string) time.Duration { return 0 }, time.Millisecond, time.Millisecond, 1000)[2]
	if !g.met || !strings.Contains(g.text, "runs: 0.99, 0.85, 1.01") {
		t.Errorf("met %v: %s", g.met, g.text)
	}
	c.perCPU = 0.95
	if g := proxyGoals(20000, 19000, 10000, c, func(string) time.Duration { return 0 }, time.Millisecond, time.Millisecond, 1000)[2]; g.met {
		t.Errorf("5%% more CPU per request met the goal: %s", g.text)
	}
}

// The p99 a proxy adds is paired with the upstream's own run of the same
// round, over the rounds where both held the rate.
func TestTheP99AddedIsPairedByRoundOverRunsThatHeld(t *testing.T) {
	ms := time.Millisecond
	direct := []clientResult{{p99: 2 * ms}, {p99: 40 * ms}, {p99: 3 * ms}, {failed: true}}
	target := []clientResult{{p99: 3 * ms}, {p99: 42 * ms}, {failed: true}, {p99: ms}}
	if got := addedP99(target, direct); got != 1500*time.Microsecond {
		t.Errorf("added %s, want 1.5ms (the median of 1ms and 2ms)", got)
	}
	if got := addedP99([]clientResult{{failed: true}}, direct); got != noAdded {
		t.Errorf("added %s with no round held", got)
	}
}

func TestARunHoldsItsRateUnderEveryBar(t *testing.T) {
	for _, c := range []struct {
		res  clientResult
		want string
	}{
		{clientResult{requests: 4000, p99: 3 * time.Millisecond, lag: time.Millisecond}, ""},
		{clientResult{failed: true}, "the run did not finish"},
		{clientResult{requests: 4000, errors: 41, failed: true}, "41 of 4000 requests dropped or failed"},
		{clientResult{requests: 4000, p99: 3 * time.Millisecond, lag: 11 * time.Millisecond}, "the generator sent late (p99 schedule lag 11ms)"},
		{clientResult{requests: 4000, p99: 900 * time.Millisecond, lag: time.Millisecond}, "p99 900ms, over 50ms: requests queued"},
	} {
		if got := notHeld(c.res); got != c.want {
			t.Errorf("%+v: %q, want %q", c.res, got, c.want)
		}
	}
}

// A run whose open model found no rate renders the closed loop and the
// rule cost, says the open model did not run and why, and judges the
// p99 goal not measured rather than dividing by nothing.
func TestAProxySectionWithoutAnOpenModelRateSaysWhy(t *testing.T) {
	s := &session{peers: peers{versions: map[string]string{}}}
	var targets []proxyTarget
	results, ruleRuns := map[string][]proxySample{}, map[string][]proxySample{}
	for i, name := range []string{"direct", "nginx", "httputil", "httputil-default", "toxiproxy", "slolab", "slolab-20-idle", "slolab-1-active"} {
		targets = append(targets, proxyTarget{name: name, note: name})
		smp := proxySample{wrk: clientResult{rps: float64(10000 + 1000*i), requests: 50000, p50: time.Millisecond, p99: 9 * time.Millisecond}, cpu: 20 * time.Microsecond, cpuTotal: time.Second}
		results[name] = []proxySample{smp}
		ruleRuns[name] = []proxySample{smp, smp}
	}
	sat := saturation{rungs: []saturationRung{{rate: 5000, res: clientResult{lag: 40 * time.Millisecond}, why: "the generator sent late (p99 schedule lag 40ms)"}}}
	out := renderProxy(s, proxyConfig{Rounds: 1, WrkDuration: 5 * time.Second, Conns: 32, Threads: 2, RulePairs: 2, RuleFor: 3 * time.Second, OpenFor: 4 * time.Second},
		targets, results, ruleRuns, map[string][]clientResult{}, 0, sat, time.Unix(0, 0), "1.00")
	for _, want := range []string{
		"5000/s not (the generator sent late (p99 schedule lag 40ms)). No rung held, so the open model did not run",
		"| slolab, one active rule on another route ÷ no rules, requests per CPU-second (wrk req/s, paired run by run: 1.13) | 1.00 | ≥ 0.97 | met |",
		"| p99 added at — (half nginx's saturation), slolab and nginx | — | slolab ≤ nginx | **missed** |",
		"The p99 added was not measured (goal: no more than nginx's): no open-model rung against nginx held",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the section lacks %q:\n%s", want, out)
		}
	}
}
