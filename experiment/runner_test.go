package experiment

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/spec"
)

// The blast radius holds: half of the experiment group's edits fail, the
// control group sees none of it, and the report says so with the tests.
func TestAHypothesisThatHoldsExitsZeroAndTheControlGroupIsUnaffected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(50*time.Millisecond, 200, "POST /update", "POST /login")
		time.Sleep(time.Minute) // a minute of steady traffic before the experiment
		c := l.compile(`  steadyState:
    - availability("update", "1m", "control") >= 99.9
    - requests("update", "1m") > 100
  blastRadius: {by: "header:X-User-ID", experiment: 20%}
  method:
    - name: errors
      duration: 2m
      faults:
        - {name: update-500, match: {cuj: update}, status: 500, rate: 50%}
  expect:
    - recovers_within("update", 30s)
    - availability("update", "run", "control") >= 99.9
    - availability("update", "run", "experiment") < 60
    - availability("login", "run", "experiment") >= 99.9
`)
		rep := l.run(context.Background(), c)
		if rep.Verdict != Held || rep.ExitCode() != 0 {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		f := rep.Faults[0]
		if f.Intended != spec.NewRatio(1, 2) || f.Matched == 0 || f.Injected != f.Matched/2 || f.Match != "update group=experiment" {
			t.Errorf("fault stage = %+v", f)
		}
		if len(rep.Comparison) != 2 {
			t.Fatalf("comparison = %+v", rep.Comparison)
		}
		up := rep.Comparison[0]
		if up.CUJ != "update" || !up.Targeted || !up.Degraded || up.Errors.P > 1e-6 || !up.Control.WithinSLO || up.Control.Bad != 0 || up.Experiment.WithinSLO {
			t.Errorf("update comparison = %+v", up)
		}
		if !strings.HasPrefix(up.Summary, "the experiment group failed more often (") || !strings.HasSuffix(up.Summary, "; the control group met the CUJ's SLOs") {
			t.Errorf("summary = %s", up.Summary)
		}
		if login := rep.Comparison[1]; login.CUJ != "login" || login.Targeted || login.Degraded {
			t.Errorf("login comparison = %+v", login)
		}
		if r := rep.Recovery; len(r) != 1 || !r[0].Recovered || time.Duration(r[0].After) > 30*time.Second {
			t.Errorf("recovery = %+v", r)
		}
		if len(rep.Expect) != 4 || rep.Failed != nil {
			t.Errorf("expect = %+v, failed = %+v", rep.Expect, rep.Failed)
		}
	})
}

// A hypothesis over every client breaks when the experiment group fails:
// exit 1, with the expression and the value it measured.
func TestAHypothesisThatBreaksExitsOneWithTheExpressionAndTheValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(50*time.Millisecond, 200, "POST /update")
		time.Sleep(time.Minute)
		c := l.compile(`  interval: 5s
  steadyState: ['availability("update", "1m") >= 99.9']
  method:
    - duration: 5m
      faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 10%}]
`)
		rep := l.run(context.Background(), c)
		if rep.Verdict != Failed || rep.ExitCode() != 1 || rep.Failed == nil {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		// The first evaluation, 5s in: 10 of the 100 requests since then failed,
		// out of the 1200 of the last minute's window (the last 10s interval
		// has 100 of them, the live one none yet).
		want := `availability("update", "1m") = `
		if got := rep.Failed.Values(); !strings.HasPrefix(got, want) || rep.Failed.Expr != `availability("update", "1m") >= 99.9` {
			t.Errorf("failed = %s: %s", rep.Failed.Expr, got)
		}
		if !strings.HasPrefix(rep.Reason, `the steady state broke during the method: availability("update", "1m") >= 99.9 is false (availability("update", "1m") = 99.`) {
			t.Errorf("reason = %s", rep.Reason)
		}
		if got := rep.MethodEnded.Sub(rep.MethodStarted); got != 5*time.Second {
			t.Errorf("the method ran %v, want it stopped at the first evaluation (5s)", got)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// A guardrail on another CUJ trips within one evaluation interval of the
// moment it becomes true, and nothing stays behind.
func TestAGuardrailAbortsWithinOneIntervalAndLeavesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(10*time.Millisecond, 200, "POST /update", "POST /login")
		time.Sleep(time.Minute)
		c := l.compile(`  interval: 5s
  steadyState: ['availability("update", "1m", "control") >= 99']
  blastRadius: {by: "header:X-User-ID", experiment: 10%}
  method:
    - duration: 10m
      faults: [{name: update-slow, match: {cuj: update}, delay: 2s, rate: 1%}]
  guardrails:
    abortIf: ['availability("login", "1m") < 99']
`)
		var guardrailAt time.Time
		ctx := context.Background()
		// Login starts failing 42s into the method. Its one-minute
		// availability drops below 99% once 1% of the window's requests
		// failed: 60s of 100/s requests → 60 failures → 0.6s later.
		trippedAt := time.Now().Add(42*time.Second + 600*time.Millisecond)
		go func() {
			time.Sleep(42 * time.Second)
			l.failing.Store("/login", 503)
		}()
		rep := l.run(ctx, c, func(cfg *Config) {
			cfg.OnEvent = func(e Event) {
				if e.Kind == EventGuardrail {
					guardrailAt = e.At
				}
			}
		})
		if rep.Verdict != Aborted || !strings.HasPrefix(rep.Reason, `guardrail tripped: availability("login", "1m") < 99 (availability("login", "1m") = 9`) {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if d := guardrailAt.Sub(trippedAt); d < 0 || d > c.Experiment.Interval {
			t.Errorf("the guardrail tripped %v after its condition became true, want within %v", d, c.Experiment.Interval)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		if rep.Failed == nil || rep.Failed.Section != AbortIf {
			t.Errorf("failed = %+v", rep.Failed)
		}
	})
}

func TestARunRefusesOutsideItsWindowAndOnAnUnsteadySystem(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		before func(*lab)
		reason string
	}{
		{
			name: "outside the allowed hours",
			body: `  steadyState: ["true"]
  method: [{duration: 1m}]
  guardrails:
    allowedWindows: [{days: Mon-Fri, hours: "09:00-17:00"}]
`,
			// synctest's clock starts on Saturday 2000-01-01 at midnight UTC.
			reason: "not allowed now: Sat 2000-01-01 00:01 is outside the allowed windows (Mon-Fri 09:00-17:00, UTC)",
		},
		{
			name: "a window that closes before the method ends",
			body: `  steadyState: ["true"]
  method: [{duration: 1h}]
  guardrails:
    allowedWindows: [{hours: "00:00-00:30"}]
`,
			reason: "the method takes 1h and would still run at 00:30: Sat 2000-01-01 00:30 is outside the allowed windows (daily 00:00-00:30, UTC)",
		},
		{
			name: "a system that is not steady",
			body: `  steadyState: ['availability("update", "1m") >= 99.9']
  method: [{duration: 1m}]
`,
			before: func(l *lab) { l.failing.Store("/update", 500) },
			reason: `the system is not steady: availability("update", "1m") >= 99.9 is false (availability("update", "1m") = 0)`,
		},
		{
			name: "a fault of the same name already active",
			body: `  steadyState: ["true"]
  method: [{duration: 1m, faults: [{name: busy, abort: true}]}]
`,
			before: func(l *lab) {
				r, _ := spec.ParseFaultRule("r", []byte(`{"name": "busy", "status": 500, "match": {"cuj": "login"}}`), "")
				l.faults.Put(r)
			},
			reason: "fault busy is already active on the proxy (another experiment, or a manual rule?); remove it or rename the experiment's fault",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLab(t, testService)
				if tt.before != nil {
					tt.before(l)
				}
				l.traffic(100*time.Millisecond, 10, "POST /update")
				time.Sleep(time.Minute)
				rep := l.run(context.Background(), l.compile(tt.body))
				if rep.Verdict != Refused || rep.Reason != tt.reason {
					t.Errorf("verdict %s: %s\nwant refused: %s", rep.Verdict, rep.Reason, tt.reason)
				}
				if rep.MethodStarted != (time.Time{}) || len(rep.Faults) != 0 {
					t.Errorf("a refused run started: %+v", rep)
				}
			})
		})
	}
}

// Short leases stay held for a long method because the runner renews them;
// a ramp's stages inject exactly their rates.
func TestLeasesAreRenewedAndRampsAreExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(10*time.Millisecond, 50, "POST /update")
		time.Sleep(10 * time.Second)
		c := l.compile(`  lease: 3s
  steadyState: ["true"]
  method:
    - duration: 40s
      ramp: {from: 1%, stages: 4}
      faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 10%}]
`)
		var renewFailures []string
		rep := l.run(context.Background(), c, func(cfg *Config) {
			cfg.OnEvent = func(e Event) {
				if e.Kind == EventRenewFailed {
					renewFailures = append(renewFailures, e.Text)
				}
			}
		})
		if rep.Verdict != Held || len(renewFailures) > 0 {
			t.Fatalf("verdict %s: %s; renewal failures %v", rep.Verdict, rep.Reason, renewFailures)
		}
		var got []string
		for _, f := range rep.Faults {
			// Seed 0: request n is injected iff floor(n·p) > floor((n−1)·p), so
			// exactly floor(matched·p) are.
			exact := f.Intended.FloorMul(f.Matched) == f.Injected
			got = append(got, fmt.Sprintf("stage %d %s over %s: exact=%v state=%s", f.Stage, f.Intended, f.To.Sub(f.From), exact, f.State))
		}
		want := []string{
			"stage 1 1% over 10s: exact=true state=active",
			"stage 2 4% over 10s: exact=true state=active",
			"stage 3 7% over 10s: exact=true state=active",
			"stage 4 10% over 10s: exact=true state=active",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n := rep.Faults[3].Matched; n < 990 || n > 1010 {
			t.Errorf("the last stage matched %d requests, want about 1000", n)
		}
	})
}

// Ctrl-C during the method removes everything at once.
func TestAnInterruptedRunLeavesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(100*time.Millisecond, 50, "POST /update")
		c := l.compile(`  steadyState: ["true"]
  blastRadius: {by: "header:X-User-ID", experiment: 50%}
  method: [{duration: 10m, faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 5%}]}]
`)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rep := l.run(ctx, c)
		if rep.Verdict != Interrupted {
			t.Fatalf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// When the runner dies (here: it simply stops renewing), the lease ends the faults.
func TestWithoutTheRunnerTheLeaseEndsTheFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		g := &spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: 3 * time.Second}
		l.admin.SetGrouping(context.Background(), g)
		r, _ := spec.ParseFaultRule("r", []byte(`{"name": "x", "status": 500, "ttl": "3s"}`), "")
		l.admin.PutFault(context.Background(), r)
		if left := l.leftovers(); len(left) != 2 {
			t.Fatalf("installed: %v", left)
		}
		time.Sleep(3 * time.Second)
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("after the lease: %v", left)
		}
	})
}

func TestTheMaximumDurationBoundsTheRecoveryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(100*time.Millisecond, 50, "POST /update")
		time.Sleep(10 * time.Second)
		// The app breaks for good as the method ends: update never recovers.
		go func() { time.Sleep(2 * time.Minute); l.failing.Store("/update", 500) }()
		rep := l.run(context.Background(), l.compile(`  steadyState: ["true"]
  recovery: 5m
  method: [{duration: 2m, faults: [{name: a, match: {cuj: update}, status: 500, rate: 1%}]}]
  guardrails: {maxDuration: 3m}
  expect: ['recovers_within("update", 5m)']
`))
		if rep.Verdict != Failed || rep.Reason != `an expectation failed: recovers_within("update", 5m) is false (recovers_within("update", 5m) = false)` {
			t.Errorf("verdict %s: %s", rep.Verdict, rep.Reason)
		}
		if got := rep.Recovery; len(got) != 1 || got[0].Recovered || got[0].Waited != spec.Duration(time.Minute) {
			t.Errorf("recovery = %+v, want update not recovered after a one-minute wait", got)
		}
		if d := rep.Ended.Sub(rep.Started); d != 3*time.Minute {
			t.Errorf("the run took %v, want the maximum of 3m", d)
		}
	})
}

func TestAMitigationEndsTheMethodEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		l.traffic(100*time.Millisecond, 50, "POST /update")
		time.Sleep(10 * time.Second)
		end := make(chan string, 1)
		go func() { time.Sleep(time.Minute); end <- "alex failed over to the standby" }()
		rep := l.run(context.Background(), l.compile(`  steadyState: ["true"]
  method: [{duration: 5m, faults: [{name: b, match: {cuj: update}, status: 500, rate: 1%}]}]
  expect: ['recovers_within("update", 1m)']
`), func(cfg *Config) { cfg.EndMethod = end })
		if rep.Verdict != Held || rep.MethodEnded.Sub(rep.MethodStarted) != time.Minute {
			t.Errorf("verdict %s: %s; method %v", rep.Verdict, rep.Reason, rep.MethodEnded.Sub(rep.MethodStarted))
		}
	})
}

// Two experiments overlap in time on different CUJs, each with its own
// blast radius: each run holds its CUJ on the proxy, groups that CUJ's
// clients by its own salt, and counts that CUJ's requests as its own. The
// second run starts while the first is in its method (before runs were
// kept apart, the proxy had one grouping and the second run was refused).
func TestTwoOverlappingExperimentsReportOnlyTheirOwnRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond)
		l.traffic(100*time.Millisecond, 400, "POST /update", "POST /login")
		time.Sleep(2*time.Minute + 2500*time.Millisecond)
		updates := l.compile(`  interval: 5s
  steadyState: ['availability("update", "1m", "control") >= 99.9']
  blastRadius: {by: "header:X-User-ID", experiment: 20%, salt: updates}
  method:
    - {duration: 2m, faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 50%}]}
  expect:
    - availability("update", "run", "control") >= 99.9
    - availability("update", "run", "experiment") < 60
`)
		logins := l.compile(`  interval: 5s
  steadyState: ['availability("login", "1m", "control") >= 99.9']
  blastRadius: {by: "header:X-User-ID", experiment: 30%, salt: logins}
  method:
    - {duration: 1m, faults: [{name: login-503, match: {cuj: login}, status: 503, rate: 100%}]}
  expect:
    - availability("login", "run", "control") >= 99.9
    - availability("login", "run", "experiment") < 1
`)
		var reps [2]*Report
		var wg sync.WaitGroup
		wg.Go(func() {
			reps[0], _ = Run(context.Background(), Config{Compiled: updates, Proxy: l.admin, View: AdminView{Client: l.admin}})
		})
		time.Sleep(30 * time.Second)
		wg.Go(func() {
			reps[1], _ = Run(context.Background(), Config{Compiled: logins, Proxy: l.admin, View: AdminView{Client: l.admin}})
		})
		wg.Wait()
		for i, rep := range reps {
			if rep.Verdict != Held {
				t.Errorf("run %d: %s: %s", i, rep.Verdict, rep.Reason)
			}
		}
		if !reps[1].MethodStarted.Before(reps[0].MethodEnded) {
			t.Fatalf("the runs did not overlap: %s–%s and %s–%s", reps[0].MethodStarted, reps[0].MethodEnded, reps[1].MethodStarted, reps[1].MethodEnded)
		}
		// Each run compares the groups of its own CUJ only, grouped by its
		// own salt: the other run's failures never show in its control group.
		for i, cuj := range []string{"update", "login"} {
			cmp := reps[i].Comparison
			if len(cmp) != 1 || cmp[0].CUJ != cuj || !cmp[0].Degraded || cmp[0].Control.Bad != 0 {
				t.Errorf("run %d: comparison %+v, want %s alone, degraded, a clean control group", i, cmp, cuj)
			}
		}
		// The exact rates held on each run's own experiment group.
		for i, want := range []spec.Ratio{spec.NewRatio(1, 2), spec.One} {
			f := reps[i].Faults[0]
			if f.Matched == 0 || f.Injected != want.FloorMul(f.Matched) {
				t.Errorf("run %d: fault %s injected %d of %d", i, f.Fault, f.Injected, f.Matched)
			}
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// Two runs on one CUJ, back to back: the second starts 12 seconds after the
// first ended, and its guardrail reads the experiment group over the last
// minute, which reaches back into the first run. Before runs were kept
// apart, the second counted the first run's failed requests and aborted;
// now it counts only requests of no run and its own.
func TestARunNeverCountsTheRequestsOfTheRunBeforeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond)
		l.traffic(100*time.Millisecond, 400, "POST /update", "POST /login")
		time.Sleep(2*time.Minute + 2500*time.Millisecond)
		first := l.compile(`  interval: 5s
  steadyState: ['availability("update", "1m", "control") >= 99.9']
  blastRadius: {by: "header:X-User-ID", experiment: 20%, salt: first}
  method:
    - {duration: 1m, faults: [{name: first-500, match: {cuj: update}, status: 500, rate: 100%}]}
`)
		second := l.compile(`  interval: 5s
  steadyState: ['availability("login", "1m") >= 99.9']
  blastRadius: {by: "header:X-User-ID", experiment: 20%, salt: second}
  guardrails:
    abortIf: ['availability("update", "1m", "experiment") < 95']
  method:
    - {duration: 30s, faults: [{name: second-delay, match: {cuj: update}, delay: 1ms, rate: 1%}]}
`)
		one := l.run(context.Background(), first)
		if one.MethodEnded.Sub(one.MethodStarted) != time.Minute || one.Verdict != Held {
			t.Fatalf("first run: %s after %s: %s", one.Verdict, one.MethodEnded.Sub(one.MethodStarted), one.Reason)
		}
		time.Sleep(12*time.Second - l.sinceEnd(one))
		two := l.run(context.Background(), second)
		if two.Verdict != Held {
			t.Errorf("second run %s: %s", two.Verdict, two.Reason)
		}
		if two.MethodStarted.Sub(one.Ended) > 13*time.Second {
			t.Errorf("the second run began %s after the first ended", two.MethodStarted.Sub(one.Ended))
		}
	})
}
