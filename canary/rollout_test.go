package canary_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/canary"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

func TestStepsParseFromFlagsAndFiles(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"25%,pause 5m,50%,pause 5m,100%", "[25% pause 5m 50% pause 5m 100%]"},
		{"# a steps file\n10 # percent, as Argo's setWeight\npause 30s\n\nsetWeight 50\npause 1h, 100%\n", "[10% pause 30s 50% pause 1h 100%]"},
		{"0.5%, pause 1d", "[0.5% pause 1d]"},
	} {
		steps, err := canary.ParseSteps(tc.in)
		if err != nil || fmt.Sprint(steps) != tc.want {
			t.Errorf("ParseSteps(%q) = %v, %v; want %s", tc.in, steps, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", `steps: none given, e.g. "25%,pause 5m,50%,pause 5m,100%"`},
		{"25%, wait 5m, 150%, pause soon", `steps: step 2 "wait 5m": want a weight from 0% to 100% ("25%") or "pause 5m"; step 3 "150%": want a weight from 0% to 100% ("25%") or "pause 5m"; step 4 "pause soon": want "pause 5m"`},
	} {
		if _, err := canary.ParseSteps(tc.in); err == nil || err.Error() != tc.want {
			t.Errorf("ParseSteps(%q) = %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

// weights records what the rollout set.
type weights struct {
	mu  sync.Mutex
	set []string
}

func (w *weights) SetCanaryWeight(_ context.Context, r spec.Ratio) (split.Status, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.set = append(w.set, r.String())
	return split.Status{Weight: &r}, nil
}

// script answers analyses with the given verdicts in turn (the last one
// repeats) and records the windows asked for.
type script struct {
	verdicts []canary.Verdict
	windows  []string
}

func (s *script) analyze(_ context.Context, window time.Duration) (canary.Result, error) {
	s.windows = append(s.windows, spec.FormatDuration(window))
	v := s.verdicts[min(len(s.windows), len(s.verdicts))-1]
	return canary.Result{Verdict: v, Reasons: []string{"task: " + string(v)}}, nil
}

func runRollout(t *testing.T, steps string, maxHold time.Duration, verdicts ...canary.Verdict) (log []string, set []string, windows []string, outcome canary.Outcome, v canary.Verdict) {
	t.Helper()
	st, err := canary.ParseSteps(steps)
	if err != nil {
		t.Fatal(err)
	}
	w := &weights{}
	sc := &script{verdicts: verdicts}
	outcome, v, err = canary.Rollout(t.Context(), canary.RolloutConfig{
		Steps: st, Interval: time.Minute, Window: 3 * time.Minute, MaxHold: maxHold,
		Weights: w, Analyze: sc.analyze,
		Event: func(e canary.Event) {
			weight := ""
			if e.Weight != nil {
				weight = " " + e.Weight.String()
			}
			log = append(log, fmt.Sprintf("+%s %d/%d %s%s %s: %s", e.At, e.Step, e.Steps, e.Kind, weight, e.Verdict, e.Message))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return log, w.set, sc.windows, outcome, v
}

func TestARolloutPromotesStepByStepWhileEveryAnalysisPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, set, windows, outcome, v := runRollout(t, "25%,pause 2m,50%,pause 2m", 0, canary.Pass)
		want := []string{
			"+0s 1/4 weight 25% : the canary serves 25% of every CUJ",
			"+1m 2/4 analysis 25% pass: over 1m10s: task: pass",
			"+2m 2/4 analysis 25% pass: over 2m10s: task: pass",
			"+2m 3/4 weight 50% : the canary serves 50% of every CUJ",
			"+3m 4/4 analysis 50% pass: over 3m: task: pass",
			"+4m 4/4 analysis 50% pass: over 3m: task: pass",
			"+4m 0/4 weight 100% : the canary serves 100% of every CUJ",
			"+4m 0/4 promoted 100% pass: every step passed: the canary serves every request; redeploy it as the new stable",
		}
		if strings.Join(log, "\n") != strings.Join(want, "\n") {
			t.Errorf("log:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
		}
		// The window grows from the canary's start (plus the proxy's 10s
		// resolution) up to --window.
		if fmt.Sprint(set) != "[25% 50% 100%]" || fmt.Sprint(windows) != "[1m10s 2m10s 3m 3m]" || outcome != canary.Promoted || v != canary.Pass {
			t.Errorf("weights %v, windows %v, outcome %s %s", set, windows, outcome, v)
		}
	})
}

func TestAFailedAnalysisRollsBackAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, set, _, outcome, v := runRollout(t, "25%,pause 5m,100%", 0, canary.Pass, canary.Inconclusive, canary.Fail)
		want := []string{
			"+0s 1/3 weight 25% : the canary serves 25% of every CUJ",
			"+1m 2/3 analysis 25% pass: over 1m10s: task: pass",
			"+2m 2/3 analysis 25% inconclusive: over 2m10s: task: inconclusive",
			"+3m 2/3 analysis 25% fail: over 3m: task: fail",
			"+3m 2/3 rollback 0% fail: rolled back: task: fail",
		}
		if strings.Join(log, "\n") != strings.Join(want, "\n") || fmt.Sprint(set) != "[25% 0%]" || outcome != canary.RolledBack || v != canary.Fail {
			t.Errorf("log:\n%s\nweights %v, outcome %s %s", strings.Join(log, "\n"), set, outcome, v)
		}
	})
}

func TestAnInconclusiveAnalysisHoldsThePauseUntilAPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, set, _, outcome, _ := runRollout(t, "10%,pause 1m", 0, canary.Inconclusive, canary.Inconclusive, canary.Inconclusive, canary.Pass)
		want := []string{
			"+0s 1/2 weight 10% : the canary serves 10% of every CUJ",
			"+1m 2/2 analysis 10% inconclusive: over 1m10s: task: inconclusive",
			"+1m 2/2 hold 10% inconclusive: holding at 10% until the analysis passes (held 0s)",
			"+2m 2/2 analysis 10% inconclusive: over 2m10s: task: inconclusive",
			"+2m 2/2 hold 10% inconclusive: holding at 10% until the analysis passes (held 1m)",
			"+3m 2/2 analysis 10% inconclusive: over 3m: task: inconclusive",
			"+3m 2/2 hold 10% inconclusive: holding at 10% until the analysis passes (held 2m)",
			"+4m 2/2 analysis 10% pass: over 3m: task: pass",
			"+4m 0/2 weight 100% : the canary serves 100% of every CUJ",
			"+4m 0/2 promoted 100% pass: every step passed: the canary serves every request; redeploy it as the new stable",
		}
		if strings.Join(log, "\n") != strings.Join(want, "\n") || fmt.Sprint(set) != "[10% 100%]" || outcome != canary.Promoted {
			t.Errorf("log:\n%s\nweights %v, outcome %s", strings.Join(log, "\n"), set, outcome)
		}
	})
}

func TestHoldingLongerThanMaxHoldRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, set, _, outcome, v := runRollout(t, "10%,pause 1m,100%", 2*time.Minute, canary.Inconclusive)
		last := log[len(log)-1]
		if last != "+3m 2/3 rollback 0% inconclusive: rolled back: still inconclusive after holding 2m: task: inconclusive" ||
			fmt.Sprint(set) != "[10% 0%]" || outcome != canary.RolledBack || v != canary.Inconclusive {
			t.Errorf("log:\n%s\nweights %v, outcome %s %s", strings.Join(log, "\n"), set, outcome, v)
		}
	})
}

func TestInterruptingARolloutRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		steps, _ := canary.ParseSteps("50%,pause 10m,100%")
		w := &weights{}
		sc := &script{verdicts: []canary.Verdict{canary.Pass}}
		var kinds []string
		time.AfterFunc(150*time.Second, cancel)
		outcome, _, err := canary.Rollout(ctx, canary.RolloutConfig{
			Steps: steps, Weights: w, Analyze: sc.analyze,
			Event: func(e canary.Event) { kinds = append(kinds, fmt.Sprintf("+%s %s", e.At, e.Kind)) },
		})
		if err != nil || outcome != canary.Interrupted || fmt.Sprint(w.set) != "[50% 0%]" ||
			fmt.Sprint(kinds) != "[+0s weight +1m analysis +2m analysis +2m30s rollback]" {
			t.Errorf("outcome %s %v, weights %v, events %v", outcome, err, w.set, kinds)
		}
	})
}

// A canary that already serves when the rollout starts is judged on what it
// served since: the first analysis's window reaches back to its start.
func TestACanaryAlreadyServingIsJudgedSinceItStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := time.Now()
		time.Sleep(4 * time.Minute)
		steps, _ := canary.ParseSteps("25%,pause 1m")
		sc := &script{verdicts: []canary.Verdict{canary.Pass}}
		_, _, err := canary.Rollout(t.Context(), canary.RolloutConfig{
			Steps: steps, Window: 10 * time.Minute, CanaryStart: started, Weights: &weights{}, Analyze: sc.analyze,
		})
		if err != nil || fmt.Sprint(sc.windows) != "[5m10s]" {
			t.Errorf("windows %v, %v; want [5m10s]: 4m before the rollout, 1m of pause and the 10s resolution", sc.windows, err)
		}
	})
}
