package canary

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// Verdict is the outcome of a judgment: pass, fail or inconclusive.
type Verdict string

// The verdicts, from best to worst: the overall verdict is the worst CUJ's.
const (
	Pass         Verdict = "pass"
	Inconclusive Verdict = "inconclusive"
	Fail         Verdict = "fail"
)

func (v Verdict) rank() int {
	switch v {
	case Pass:
		return 0
	case Inconclusive:
		return 1
	}
	return 2
}

// Worse returns the worse of v and o.
func (v Verdict) Worse(o Verdict) Verdict {
	if o.rank() > v.rank() {
		return o
	}
	return v
}

// ExitCode is the verdict as `slolab canary judge` exits: 0 pass, 1 fail,
// 2 inconclusive.
func (v Verdict) ExitCode() int {
	switch v {
	case Pass:
		return 0
	case Fail:
		return 1
	}
	return 2
}

// Counts are what one revision of a CUJ served over the window.
type Counts struct {
	Total uint64 // requests
	Bad   uint64 // 5xx or no response
	Slow  uint64 // slower than the CUJ's latency threshold
	// Hist holds latency counts per bucket of Observed.Bounds, the last
	// being +Inf; nil when the source has no histogram.
	Hist []uint64
}

// Revisions are one CUJ's counts per revision.
type Revisions struct {
	Stable, Canary Counts
	// Unsplit counts requests served while no split was active.
	Unsplit Counts
}

// Observed is what a source saw over a window: the judge's whole input.
type Observed struct {
	Source string // where the counts came from, for the report
	At     time.Time
	Window time.Duration
	// Span is the time the counts actually cover.
	Span   time.Duration
	Bounds []time.Duration
	// Weight is the canary's share the proxy is set to, when the source knows it.
	Weight *spec.Ratio
	CUJs   map[string]Revisions
}

// Config tunes the judge. Zero values take the defaults noted.
type Config struct {
	// Confidence is 1 − α, the chance that a canary as good as it must be
	// is not failed by one judgment, all CUJs and checks together (default
	// 95%). Each check runs at α divided by the number of checks (Bonferroni).
	Confidence spec.Ratio
	// MaxBurnRate is how fast the canary may spend its CUJ's error budget
	// over the window (default 1: exactly at the SLO).
	MaxBurnRate spec.Ratio
	// Tolerance is how much worse than stable the canary's bad ratio may be
	// before the comparison with stable can fail it, as a share of the error
	// budget (default 10%): millions of requests make even a harmless
	// difference significant.
	Tolerance *spec.Ratio
	// Weight is the canary's share used to plan traffic; default the
	// source's, else the share the canary actually got.
	Weight *spec.Ratio
	// CUJs narrows the judgment to these CUJs (default every CUJ).
	CUJs []string
}

// Defaults for Config.
var (
	DefaultConfidence = spec.NewRatio(95, 100)
	DefaultTolerance  = spec.NewRatio(1, 10)
)

func (c *Config) defaults() {
	if c.Confidence.IsZero() {
		c.Confidence = DefaultConfidence
	}
	if c.MaxBurnRate.IsZero() {
		c.MaxBurnRate = spec.One
	}
	if c.Tolerance == nil {
		t := DefaultTolerance
		c.Tolerance = &t
	}
}

// Check validates a Config against a service.
func (c *Config) Check(svc *spec.Service) error {
	c.defaults()
	if c.Confidence.Cmp(spec.One) >= 0 {
		return slolab.Errorf(slolab.Invalid, "confidence: must be below 100%%, got %s", c.Confidence)
	}
	for _, name := range c.CUJs {
		if svc.CUJ(name) == nil {
			return slolab.Errorf(slolab.Invalid, "cuj: service %s has no CUJ %q (it has %s)", svc.Name, name, strings.Join(svc.CUJNames(), ", "))
		}
	}
	return nil
}

// Result is a judgment: the body `slolab canary serve` answers and what
// `slolab canary judge -o json` prints. Every number is a JSON number, never
// NaN or null; ratios are percentages and are 0 without requests.
type Result struct {
	Verdict Verdict       `json:"verdict"`
	Service string        `json:"service"`
	Source  string        `json:"source"`
	At      time.Time     `json:"at"`
	Window  spec.Duration `json:"window"`
	Span    spec.Duration `json:"span"`
	// WeightPercent is the canary's share the traffic plan assumes.
	WeightPercent     float64 `json:"weightPercent"`
	ConfidencePercent float64 `json:"confidencePercent"`
	// Checks is how many tests ran; each ran at AlphaPerCheck.
	Checks        int     `json:"checks"`
	AlphaPerCheck float64 `json:"alphaPerCheck"`
	// Reasons explain the overall verdict: the worst CUJs' reasons.
	Reasons []string    `json:"reasons"`
	CUJs    []CUJResult `json:"cujs"`
}

// CUJResult is one CUJ's judgment.
type CUJResult struct {
	CUJ     string   `json:"cuj"`
	Verdict Verdict  `json:"verdict"`
	Reasons []string `json:"reasons"`
	Canary  Sample   `json:"canary"`
	Stable  Sample   `json:"stable"`
	// MinRequests is the fewest canary requests a pass needs (see MinRequests).
	MinRequests uint64  `json:"minRequests"`
	Checks      []Check `json:"checks"`
	Traffic     Traffic `json:"traffic"`
}

// Sample is one revision's counts over the window.
type Sample struct {
	Total        uint64        `json:"total"`
	Bad          uint64        `json:"bad"`
	Slow         uint64        `json:"slow"`
	ErrorPercent float64       `json:"errorPercent"`
	SlowPercent  float64       `json:"slowPercent"`
	P50          spec.Duration `json:"p50,omitempty"`
	P99          spec.Duration `json:"p99,omitempty"`
}

// Check is one test: an SLI of the canary against the SLO or against stable.
type Check struct {
	SLI     string  `json:"sli"`     // availability or latency
	Against string  `json:"against"` // slo or stable
	Verdict Verdict `json:"verdict"`
	// PValue is the one-sided p-value that the canary is worse: exact
	// binomial against the SLO, Fisher's exact test against stable.
	PValue float64 `json:"pValue"`
	// CanaryPercent and LimitPercent: the canary's bad ratio and what it
	// was held to (the SLO's allowed ratio, or stable's plus the tolerance).
	CanaryPercent float64 `json:"canaryPercent"`
	LimitPercent  float64 `json:"limitPercent"`
	Reason        string  `json:"reason"`
}

// Traffic tells how much traffic a decision on the CUJ needs.
type Traffic struct {
	// RatePerSecond is the CUJ's request rate over the span, both revisions.
	RatePerSecond  float64 `json:"ratePerSecond"`
	CanaryRequests uint64  `json:"canaryRequests"`
	// NeededCanaryRequests is MinRequests: what a pass needs in one window.
	NeededCanaryRequests uint64 `json:"neededCanaryRequests"`
	// NeededRatePerSecond is the CUJ rate that gives the canary enough
	// requests at the planned weight within the window (absent at weight 0).
	NeededRatePerSecond *float64 `json:"neededRatePerSecond,omitempty"`
	// NeededWindow is the window that gives the canary enough requests at
	// the current rate and weight (absent without traffic).
	NeededWindow *spec.Duration `json:"neededWindow,omitempty"`
	// NeededWeightPercent is the weight that gives the canary enough
	// requests at the current rate within the window (absent above 100%).
	NeededWeightPercent *float64 `json:"neededWeightPercent,omitempty"`
}

// sloLimit is one SLI's objective as the judge applies it.
type sloLimit struct {
	sli       string  // availability or latency
	budget    float64 // 1 − objective
	limit     float64 // budget × max burn rate: the bad ratio allowed over the window
	objective spec.Ratio
	threshold time.Duration
}

func limits(c *spec.CUJ, maxBurn spec.Ratio) []sloLimit {
	var out []sloLimit
	add := func(name string, objective spec.Ratio, threshold time.Duration) {
		budget := objective.OneMinus()
		limit := budget.Float() * maxBurn.Float()
		if l, ok := budget.Mul(maxBurn); ok {
			limit = l.Float()
		}
		out = append(out, sloLimit{sli: name, budget: budget.Float(), limit: min(limit, 1), objective: objective, threshold: threshold})
	}
	if a := c.Availability; a != nil {
		add("availability", a.Objective, 0)
	}
	if l := c.Latency; l != nil {
		add("latency", l.Objective, l.Threshold)
	}
	return out
}

// Judge judges every CUJ of svc (or cfg.CUJs) on what obs saw. It is a pure
// function of its arguments.
func Judge(svc *spec.Service, obs *Observed, cfg Config) (Result, error) {
	if err := cfg.Check(svc); err != nil {
		return Result{}, err
	}
	alpha := cfg.Confidence.OneMinus().Float()
	var cujs []*spec.CUJ
	checks := 0
	for _, c := range svc.CUJs {
		if len(cfg.CUJs) > 0 && !slices.Contains(cfg.CUJs, c.Name) {
			continue
		}
		cujs = append(cujs, c)
		checks += 2 * len(limits(c, cfg.MaxBurnRate))
	}
	perCheck := alpha / float64(max(checks, 1))
	weight := planningWeight(obs, cfg)
	res := Result{
		Verdict: Pass, Service: svc.Name, Source: obs.Source, At: obs.At.UTC(),
		Window: spec.Duration(obs.Window), Span: spec.Duration(roundSpan(obs.Span)),
		WeightPercent: 100 * weight, ConfidencePercent: 100 * cfg.Confidence.Float(),
		Checks: checks, AlphaPerCheck: perCheck, Reasons: []string{}, CUJs: []CUJResult{},
	}
	split := false
	for _, c := range cujs {
		rv := obs.CUJs[c.Name]
		if rv.Canary.Total > 0 || rv.Stable.Total > 0 {
			split = true
		}
		cr := judgeCUJ(c, rv, obs, cfg, alpha, perCheck, weight)
		res.Verdict = res.Verdict.Worse(cr.Verdict)
		res.CUJs = append(res.CUJs, cr)
	}
	for _, cr := range res.CUJs {
		if cr.Verdict == res.Verdict && res.Verdict != Pass {
			for _, r := range cr.Reasons {
				res.Reasons = append(res.Reasons, cr.CUJ+": "+r)
			}
		}
	}
	if !split {
		res.Reasons = append(res.Reasons, fmt.Sprintf("no request was served by a stable or canary revision in the last %s: is the proxy splitting traffic (--upstream stable=URL --upstream canary=URL)?", spec.FormatDuration(obs.Window)))
	}
	if res.Verdict == Pass {
		res.Reasons = append(res.Reasons, fmt.Sprintf("every CUJ passed (%d)", len(res.CUJs)))
	}
	return res, nil
}

// roundSpan keeps a span readable: whole seconds, tenths below 10s.
func roundSpan(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// planningWeight is the canary's share the traffic plan assumes.
func planningWeight(obs *Observed, cfg Config) float64 {
	switch {
	case cfg.Weight != nil:
		return cfg.Weight.Float()
	case obs.Weight != nil:
		return obs.Weight.Float()
	}
	var canary, all uint64
	for _, rv := range obs.CUJs {
		canary += rv.Canary.Total
		all += rv.Canary.Total + rv.Stable.Total
	}
	if all == 0 {
		return 0
	}
	return float64(canary) / float64(all)
}

func percent(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(part) / float64(total)
}

func sample(c Counts, bounds []time.Duration) Sample {
	s := Sample{Total: c.Total, Bad: c.Bad, Slow: c.Slow, ErrorPercent: percent(c.Bad, c.Total), SlowPercent: percent(c.Slow, c.Total)}
	if c.Total > 0 && len(c.Hist) == len(bounds)+1 && len(bounds) > 0 {
		s.P50 = spec.Duration(sli.Quantile(bounds, c.Hist, 0.5).Round(time.Microsecond))
		s.P99 = spec.Duration(sli.Quantile(bounds, c.Hist, 0.99).Round(time.Microsecond))
	}
	return s
}

// pct formats a percentage for reasons: enough digits to tell 0.1% from 0.15%.
func pct(p float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", p), "0"), ".") + "%"
}

func pvalue(p float64) string {
	if p < 1e-4 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4f", p)
}

func judgeCUJ(c *spec.CUJ, rv Revisions, obs *Observed, cfg Config, alpha, perCheck, weight float64) CUJResult {
	cr := CUJResult{
		CUJ: c.Name, Verdict: Pass, Reasons: []string{}, Checks: []Check{},
		Canary: sample(rv.Canary, obs.Bounds), Stable: sample(rv.Stable, obs.Bounds),
	}
	lims := limits(c, cfg.MaxBurnRate)
	if len(lims) == 0 {
		cr.Reasons = append(cr.Reasons, "no availability or latency SLO: nothing to judge")
		return cr
	}
	var fails, doubts, passes []string
	for _, l := range lims {
		cr.MinRequests = max(cr.MinRequests, MinRequests(l.limit, alpha))
		badC, badS := rv.Canary.Bad, rv.Stable.Bad
		what := "failed"
		if l.sli == "latency" {
			badC, badS = rv.Canary.Slow, rv.Stable.Slow
			what = "slower than " + spec.FormatDuration(l.threshold)
		}
		nC, nS := rv.Canary.Total, rv.Stable.Total
		rC, rS := percent(badC, nC), percent(badS, nS)

		// Against the SLO: could a canary within the limit show this many bad requests?
		slo := Check{SLI: l.sli, Against: "slo", Verdict: Pass, CanaryPercent: rC, LimitPercent: 100 * l.limit}
		slo.PValue = BinomialTail(badC, nC, l.limit)
		sloName := "its SLO (" + l.objective.String() + ")"
		if cfg.MaxBurnRate.Cmp(spec.One) != 0 {
			sloName = fmt.Sprintf("its SLO (%s) at %s× burn", l.objective, cfg.MaxBurnRate.Decimal())
		}
		switch {
		case slo.PValue < perCheck:
			slo.Verdict = Fail
			slo.Reason = fmt.Sprintf("%s: %d of %d canary requests %s (%s), above the %s %s allows (p = %s)", l.sli, badC, nC, what, pct(rC), pct(100*l.limit), sloName, pvalue(slo.PValue))
			fails = append(fails, slo.Reason)
		case nC > 0 && rC > 100*l.limit:
			slo.Reason = fmt.Sprintf("%s: %d of %d canary requests %s (%s), above the %s %s allows, not yet significantly (p = %s)", l.sli, badC, nC, what, pct(rC), pct(100*l.limit), sloName, pvalue(slo.PValue))
			doubts = append(doubts, slo.Reason)
		default:
			slo.Reason = fmt.Sprintf("%s: %d of %d canary requests %s (%s), within the %s %s allows", l.sli, badC, nC, what, pct(rC), pct(100*l.limit), sloName)
			passes = append(passes, slo.Reason)
		}

		// Against stable: is the canary worse, by more than the tolerance?
		margin := 100 * cfg.Tolerance.Float() * l.budget
		st := Check{SLI: l.sli, Against: "stable", Verdict: Pass, CanaryPercent: rC, LimitPercent: rS + margin}
		st.PValue = FisherGreater(badC, nC, badS, nS)
		switch {
		case nS == 0:
			st.Reason = fmt.Sprintf("%s: no stable requests to compare with", l.sli)
		case st.PValue < perCheck && rC-rS > margin:
			st.Verdict = Fail
			st.Reason = fmt.Sprintf("%s: canary %s %s against stable's %s (%d of %d), worse by more than the %s tolerance (Fisher p = %s)", l.sli, pct(rC), what, pct(rS), badS, nS, pct(margin), pvalue(st.PValue))
			fails = append(fails, st.Reason)
		default:
			st.Reason = fmt.Sprintf("%s: canary %s %s, stable %s (%d of %d): not significantly worse (Fisher p = %s)", l.sli, pct(rC), what, pct(rS), badS, nS, pvalue(st.PValue))
		}
		cr.Checks = append(cr.Checks, slo, st)
	}
	cr.Traffic = plan(rv, obs, cr.MinRequests, weight)
	switch {
	case len(fails) > 0:
		cr.Verdict, cr.Reasons = Fail, fails
	case rv.Canary.Total < cr.MinRequests:
		cr.Verdict = Inconclusive
		cr.Reasons = append(doubts, needMore(cr, obs, weight))
	case len(doubts) > 0:
		cr.Verdict, cr.Reasons = Inconclusive, doubts
	default:
		cr.Reasons = passes
	}
	return cr
}

// needMore says how far the canary is from a decision.
func needMore(cr CUJResult, obs *Observed, weight float64) string {
	msg := fmt.Sprintf("too little traffic: a pass needs %d canary requests in the window, the canary served %d", cr.MinRequests, cr.Canary.Total)
	t := cr.Traffic
	var ways []string
	if t.NeededRatePerSecond != nil {
		ways = append(ways, fmt.Sprintf("%s req/s of %s traffic at %s over %s (now %s req/s)", rate(*t.NeededRatePerSecond), cr.CUJ, pct(100*weight), spec.FormatDuration(obs.Window), rate(t.RatePerSecond)))
	}
	if t.NeededWindow != nil {
		ways = append(ways, "a window of "+t.NeededWindow.String())
	}
	if t.NeededWeightPercent != nil {
		ways = append(ways, "a weight of "+pct(*t.NeededWeightPercent))
	}
	if len(ways) > 0 {
		msg += "; that takes " + strings.Join(ways, ", or ")
	}
	return msg
}

func rate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", r), "0"), ".")
}

// plan derives the traffic a decision needs from the CUJ's current rate.
func plan(rv Revisions, obs *Observed, need uint64, weight float64) Traffic {
	t := Traffic{CanaryRequests: rv.Canary.Total, NeededCanaryRequests: need}
	span := obs.Span.Seconds()
	if span > 0 {
		t.RatePerSecond = float64(rv.Canary.Total+rv.Stable.Total+rv.Unsplit.Total) / span
	}
	w := obs.Window.Seconds()
	if weight > 0 && w > 0 {
		r := float64(need) / (weight * w)
		t.NeededRatePerSecond = &r
	}
	if weight > 0 && t.RatePerSecond > 0 {
		if secs := math.Ceil(float64(need) / (weight * t.RatePerSecond)); secs < 100*365*86400 {
			d := spec.Duration(time.Duration(secs) * time.Second)
			t.NeededWindow = &d
		}
	}
	if t.RatePerSecond > 0 && w > 0 {
		if nw := 100 * float64(need) / (t.RatePerSecond * w); nw <= 100 {
			nw = math.Ceil(nw*100) / 100
			t.NeededWeightPercent = &nw
		}
	}
	return t
}
