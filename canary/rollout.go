package canary

import (
	"context"
	"fmt"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// Step is one step of a rollout: set the canary's weight, or pause while
// the analysis runs.
type Step struct {
	Weight *spec.Ratio
	Pause  time.Duration
}

func (s Step) String() string {
	if s.Weight != nil {
		return s.Weight.String()
	}
	return "pause " + spec.FormatDuration(s.Pause)
}

// ParseSteps reads steps separated by commas or new lines: a weight ("25%",
// or "25" as in Argo Rollouts' setWeight) or "pause DURATION". Blank lines
// and text after # are ignored, so a steps file may carry comments.
func ParseSteps(text string) ([]Step, error) {
	var steps []Step
	var errs []string
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for item := range strings.SplitSeq(line, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			n++
			if rest, ok := strings.CutPrefix(item, "pause"); ok {
				d, err := spec.ParseDuration(strings.TrimSpace(rest))
				if err != nil || d <= 0 {
					errs = append(errs, fmt.Sprintf("step %d %q: want \"pause 5m\"", n, item))
					continue
				}
				steps = append(steps, Step{Pause: d})
				continue
			}
			w, err := spec.ParsePercent(strings.TrimPrefix(item, "setWeight "))
			if err != nil || w.Cmp(spec.One) > 0 {
				errs = append(errs, fmt.Sprintf("step %d %q: want a weight from 0%% to 100%% (\"25%%\") or \"pause 5m\"", n, item))
				continue
			}
			steps = append(steps, Step{Weight: &w})
		}
	}
	if len(errs) > 0 {
		return nil, slolab.Errorf(slolab.Invalid, "steps: %s", strings.Join(errs, "; "))
	}
	if len(steps) == 0 {
		return nil, slolab.Errorf(slolab.Invalid, "steps: none given, e.g. \"25%%,pause 5m,50%%,pause 5m,100%%\"")
	}
	return steps, nil
}

// Weights sets the canary's weight: the proxy's admin client.
type Weights interface {
	SetCanaryWeight(ctx context.Context, w spec.Ratio) (split.Status, error)
}

// RolloutConfig configures a rollout.
type RolloutConfig struct {
	Steps []Step
	// Interval is how often the analysis runs during a pause (default 1m).
	Interval time.Duration
	// Window is the longest analysis window (default 5m). Early on the
	// window is the time since the canary first got traffic plus one
	// Granularity, so a previous attempt's requests are not judged again.
	Window time.Duration
	// Granularity is the source's time resolution (default 10s, the
	// proxy's intervals): windows are widened by it so that none misses
	// requests the canary served since it started.
	Granularity time.Duration
	// CanaryStart is when the canary started serving, if it already does
	// when the rollout starts (the proxy's weight is above 0).
	CanaryStart time.Time
	// MaxHold bounds how long an inconclusive analysis may hold the rollout
	// at the end of a pause before it rolls back; 0 holds until interrupted.
	MaxHold time.Duration
	Weights Weights
	// Analyze judges the canary over the last window.
	Analyze func(ctx context.Context, window time.Duration) (Result, error)
	// Event receives every step, analysis and decision, in order.
	Event func(Event)
	Now   func() time.Time
}

// Event is one entry of a rollout's log.
type Event struct {
	// At is the time since the rollout started.
	At      spec.Duration `json:"at"`
	Step    int           `json:"step"` // 1-based; 0 after the last step
	Steps   int           `json:"steps"`
	Kind    string        `json:"event"` // weight, analysis, hold, rollback, promoted, error
	Weight  *spec.Ratio   `json:"weight,omitempty"`
	Verdict Verdict       `json:"verdict,omitempty"`
	Message string        `json:"message"`
	Result  *Result       `json:"result,omitempty"`
}

// Outcome is how a rollout ended.
type Outcome string

// The outcomes.
const (
	Promoted    Outcome = "promoted"    // every step passed; the canary serves 100%
	RolledBack  Outcome = "rolled back" // an analysis failed, or held too long: the canary serves 0%
	Interrupted Outcome = "interrupted" // the context ended; the canary serves 0%
)

type rollout struct {
	cfg         RolloutConfig
	start       time.Time
	canaryStart time.Time // when the canary first got a non-zero weight
	step        int
	weight      spec.Ratio
}

// Rollout runs the steps: weights are set at once, pauses run the analysis
// every interval. A fail rolls back at once (weight 0). A pause ends only on
// a pass: an inconclusive analysis at its end holds the weight and keeps
// analysing, up to MaxHold. After the last step the canary gets 100%.
// Interrupting (ctx) rolls back too. The returned verdict is the last
// analysis's (pass when promoted).
func Rollout(ctx context.Context, cfg RolloutConfig) (Outcome, Verdict, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Event == nil {
		cfg.Event = func(Event) {}
	}
	if cfg.Granularity <= 0 {
		cfg.Granularity = 10 * time.Second
	}
	r := &rollout{cfg: cfg, start: cfg.Now(), canaryStart: cfg.CanaryStart}
	for i, st := range cfg.Steps {
		r.step = i + 1
		if st.Weight != nil {
			if err := r.setWeight(ctx, *st.Weight); err != nil {
				return r.fail(ctx, Interrupted, Inconclusive, err)
			}
			continue
		}
		outcome, v, err := r.pause(ctx, st.Pause)
		if outcome != "" || err != nil {
			return outcome, v, err
		}
	}
	r.step = 0
	if r.weight.Cmp(spec.One) != 0 {
		if err := r.setWeight(ctx, spec.One); err != nil {
			return r.fail(ctx, Interrupted, Inconclusive, err)
		}
	}
	r.emit(Event{Kind: "promoted", Weight: &r.weight, Verdict: Pass, Message: "every step passed: the canary serves every request; redeploy it as the new stable"})
	return Promoted, Pass, nil
}

func (r *rollout) emit(e Event) {
	e.At = spec.Duration(r.cfg.Now().Sub(r.start).Round(time.Millisecond))
	e.Step, e.Steps = r.step, len(r.cfg.Steps)
	r.cfg.Event(e)
}

func (r *rollout) setWeight(ctx context.Context, w spec.Ratio) error {
	if _, err := r.cfg.Weights.SetCanaryWeight(ctx, w); err != nil {
		return fmt.Errorf("setting the canary weight to %s: %w", w, err)
	}
	r.weight = w
	if !w.IsZero() && r.canaryStart.IsZero() {
		r.canaryStart = r.cfg.Now()
	}
	r.emit(Event{Kind: "weight", Weight: &w, Message: fmt.Sprintf("the canary serves %s of every CUJ", w)})
	return nil
}

// rollback sets the weight to 0, even when ctx has ended.
func (r *rollout) rollback(ctx context.Context, why string, v Verdict, res *Result) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	zero := spec.Ratio{}
	if _, err := r.cfg.Weights.SetCanaryWeight(bctx, zero); err != nil {
		r.emit(Event{Kind: "error", Verdict: v, Message: fmt.Sprintf("rolling back failed: %v: set the weight to 0 by hand (PUT /api/v1/canary)", err)})
		return fmt.Errorf("rolling back: %w", err)
	}
	r.weight = zero
	r.emit(Event{Kind: "rollback", Weight: &zero, Verdict: v, Message: why, Result: res})
	return nil
}

func (r *rollout) fail(ctx context.Context, o Outcome, v Verdict, err error) (Outcome, Verdict, error) {
	r.emit(Event{Kind: "error", Message: err.Error()})
	if rbErr := r.rollback(ctx, "rolled back: "+err.Error(), v, nil); rbErr != nil {
		return o, v, fmt.Errorf("%w; %w", err, rbErr)
	}
	return o, v, err
}

// window is the analysis window now: at most Window, and at most the time
// since the canary first got traffic plus one Granularity.
func (r *rollout) window() time.Duration {
	d := r.cfg.Window
	if !r.canaryStart.IsZero() {
		d = min(d, (r.cfg.Now().Sub(r.canaryStart) + r.cfg.Granularity).Round(time.Second))
	}
	return max(d, time.Second)
}

func summarize(res Result) string {
	if len(res.Reasons) == 0 {
		return string(res.Verdict)
	}
	return strings.Join(res.Reasons, "; ")
}

// pause waits d, analysing every interval; it returns a non-empty outcome
// when the rollout ended.
func (r *rollout) pause(ctx context.Context, d time.Duration) (Outcome, Verdict, error) {
	deadline := r.cfg.Now().Add(d)
	last := r.cfg.Now()
	var holdStart time.Time
	for {
		next := last.Add(r.cfg.Interval)
		if now := r.cfg.Now(); now.Before(deadline) && deadline.Before(next) {
			next = deadline
		}
		t := time.NewTimer(next.Sub(r.cfg.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			err := r.rollback(ctx, "interrupted: rolled back to stable", Inconclusive, nil)
			return Interrupted, Inconclusive, err
		case <-t.C:
		}
		last = r.cfg.Now()
		w := r.window()
		res, err := r.cfg.Analyze(ctx, w)
		if err != nil {
			if ctx.Err() != nil {
				continue // the select above rolls back
			}
			r.emit(Event{Kind: "error", Verdict: Inconclusive, Message: fmt.Sprintf("analysis over %s failed: %v", spec.FormatDuration(w), err)})
			res = Result{Verdict: Inconclusive, Reasons: []string{"the analysis failed: " + err.Error()}}
		} else {
			r.emit(Event{Kind: "analysis", Weight: &r.weight, Verdict: res.Verdict, Message: fmt.Sprintf("over %s: %s", spec.FormatDuration(w), summarize(res)), Result: &res})
		}
		ended := !last.Before(deadline)
		switch res.Verdict {
		case Fail:
			err := r.rollback(ctx, "rolled back: "+summarize(res), Fail, &res)
			return RolledBack, Fail, err
		case Pass:
			if ended {
				return "", Pass, nil
			}
		default:
			if !ended {
				continue
			}
			if holdStart.IsZero() {
				holdStart = last
			}
			held := last.Sub(holdStart)
			if r.cfg.MaxHold > 0 && held >= r.cfg.MaxHold {
				err := r.rollback(ctx, fmt.Sprintf("rolled back: still inconclusive after holding %s: %s", spec.FormatDuration(held), summarize(res)), Inconclusive, &res)
				return RolledBack, Inconclusive, err
			}
			r.emit(Event{Kind: "hold", Weight: &r.weight, Verdict: Inconclusive, Message: fmt.Sprintf("holding at %s until the analysis passes (held %s)", r.weight, spec.FormatDuration(held))})
		}
	}
}
