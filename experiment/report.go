package experiment

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// Report is everything a run found, for people (Markdown, HTML) and tools (JSON).
type Report struct {
	Experiment  string  `json:"experiment"`
	Service     string  `json:"service"`
	Description string  `json:"description,omitempty"`
	Verdict     Verdict `json:"verdict"`
	// Reason says in one sentence why the run ended as it did; Failed is the
	// expression that decided it, with the values it read.
	Reason string   `json:"reason"`
	Failed *Outcome `json:"failed,omitempty"`

	Started       time.Time `json:"started"`
	Ended         time.Time `json:"ended"`
	MethodStarted time.Time `json:"methodStarted,omitzero"`
	MethodEnded   time.Time `json:"methodEnded,omitzero"`

	Interval     spec.Duration  `json:"interval"`
	Lease        spec.Duration  `json:"lease"`
	Significance spec.Ratio     `json:"significance"`
	BlastRadius  *spec.Grouping `json:"blastRadius,omitempty"`

	SteadyBefore []Outcome `json:"steadyStateBefore"`
	// Guardrails holds each guardrail's last evaluation during the method.
	Guardrails  []Outcome     `json:"guardrails,omitempty"`
	SteadyAfter []Outcome     `json:"steadyStateAfter,omitempty"`
	Expect      []Outcome     `json:"expect,omitempty"`
	Faults      []*FaultStage `json:"faults"`
	Recovery    []Recovery    `json:"recovery,omitempty"`
	Comparison  []Comparison  `json:"comparison,omitempty"`
	Evaluations int           `json:"evaluations"`
	Timeline    []Event       `json:"timeline"`
}

// ExitCode is what `slolab experiment run` exits with: 0 only when the hypothesis held.
func (r *Report) ExitCode() int {
	if r.Verdict == Held {
		return 0
	}
	return 1
}

// FaultStage is one rule at one rate: what was intended and what the proxy
// did, side by side.
type FaultStage struct {
	Step     string     `json:"step"`
	Stage    int        `json:"stage"`
	Fault    string     `json:"fault"`
	Match    string     `json:"match"`
	Actions  string     `json:"actions"`
	Intended spec.Ratio `json:"intended"`
	Matched  uint64     `json:"matched"`
	Injected uint64     `json:"injected"`
	State    string     `json:"state,omitempty"` // the rule's state when the stage ended
	From     time.Time  `json:"from"`
	To       time.Time  `json:"to"`
}

// Realised is the injected share of matched requests, or "-" without any.
func (f *FaultStage) Realised() string {
	if f.Matched == 0 {
		return "-"
	}
	return spec.NewRatio(f.Injected, f.Matched).String()
}

// Recovery is when a CUJ met its SLOs again after the method.
type Recovery struct {
	CUJ       string        `json:"cuj"`
	Recovered bool          `json:"recovered"`
	After     spec.Duration `json:"after,omitempty"`
	Waited    spec.Duration `json:"waited"`
}

// GroupSLI is what one group saw of a CUJ during the method.
type GroupSLI struct {
	Total        uint64        `json:"total"`
	Bad          uint64        `json:"bad"`
	Slow         uint64        `json:"slow"`
	Availability float64       `json:"availability"` // percent; 100 without requests
	LatencyGood  *float64      `json:"latencyGood,omitempty"`
	P50          spec.Duration `json:"p50"`
	P99          spec.Duration `json:"p99"`
	// WithinSLO says whether the group met every SLO of the CUJ over the run.
	WithinSLO bool `json:"withinSLO"`
}

// Comparison is the experiment group against the control group for one CUJ
// over the method.
type Comparison struct {
	CUJ        string        `json:"cuj"`
	Targeted   bool          `json:"targeted"` // a fault of the method selected this CUJ
	Span       spec.Duration `json:"span"`
	Experiment GroupSLI      `json:"experiment"`
	Control    GroupSLI      `json:"control"`
	// Errors tests whether the experiment group failed more often (Fisher's
	// exact test, one-sided); Slow whether more of its requests missed the
	// latency threshold (the same test; only with a latency SLO); Latency
	// whether its latency distribution is higher (Mann-Whitney U).
	Errors  FisherTest  `json:"errors"`
	Slow    *FisherTest `json:"slow,omitempty"`
	Latency MannWhitney `json:"latency"`
	// Degraded: some test found the experiment group worse at the significance level.
	Degraded bool   `json:"degraded"`
	Summary  string `json:"summary"`
}

func newReport(c *Compiled, now time.Time) *Report {
	x := c.Experiment
	return &Report{
		Experiment: x.Name, Service: c.Service.Name, Description: x.Description, Started: now,
		Interval: spec.Duration(x.Interval), Lease: spec.Duration(x.Lease), Significance: x.Significance,
		BlastRadius: x.BlastRadius, Faults: []*FaultStage{}, Timeline: []Event{},
	}
}

// noteGuardrail keeps each guardrail's latest outcome.
func (r *Report) noteGuardrail(o Outcome) {
	for i := range r.Guardrails {
		if r.Guardrails[i].Expr == o.Expr {
			r.Guardrails[i] = o
			return
		}
	}
	r.Guardrails = append(r.Guardrails, o)
}

// compare tests, per CUJ with requests in both groups during the method,
// whether the experiment group fared worse than the control group.
func (r *run) compare() {
	if r.x.BlastRadius == nil || r.rep.MethodStarted.IsZero() {
		return
	}
	targeted := r.c.touchedCUJs()
	alpha := r.x.Significance.Float()
	for _, c := range r.c.Service.CUJs {
		exp, ok1 := r.ev.frozen[[2]string{c.Name, GroupExperiment}]
		ctl, ok2 := r.ev.frozen[[2]string{c.Name, GroupControl}]
		if !ok1 || !ok2 || exp.Total == 0 && ctl.Total == 0 {
			continue
		}
		cmp := Comparison{CUJ: c.Name, Targeted: targeted[c.Name], Span: spec.Duration(exp.Span.Round(time.Second)),
			Experiment: groupSLI(c, exp), Control: groupSLI(c, ctl),
			Errors: Fisher(exp.Bad, exp.Total, ctl.Bad, ctl.Total)}
		if c.Latency != nil {
			f := Fisher(exp.Slow, exp.Total, ctl.Slow, ctl.Total)
			cmp.Slow = &f
		}
		if len(exp.Hist) == len(ctl.Hist) {
			cmp.Latency = MannWhitneyU(exp.Hist, ctl.Hist)
		}
		cmp.Degraded = cmp.Errors.P < alpha || cmp.Slow != nil && cmp.Slow.P < alpha || cmp.Latency.P < alpha
		cmp.Summary = summarise(cmp, alpha)
		r.rep.Comparison = append(r.rep.Comparison, cmp)
	}
}

func groupSLI(c *spec.CUJ, s SLI) GroupSLI {
	g := GroupSLI{Total: s.Total, Bad: s.Bad, Slow: s.Slow, Availability: ratFloat(percentGood(s.Total, s.Bad)), WithinSLO: meetsSLOs(c, s)}
	if c.Latency != nil {
		v := ratFloat(percentGood(s.Total, s.Slow))
		g.LatencyGood = &v
	}
	if s.Total > 0 {
		g.P50 = spec.Duration(sli.Quantile(s.Bounds, s.Hist, 0.5).Round(time.Millisecond))
		g.P99 = spec.Duration(sli.Quantile(s.Bounds, s.Hist, 0.99).Round(time.Millisecond))
	}
	return g
}

// summarise says in one sentence what the comparison found.
func summarise(c Comparison, alpha float64) string {
	e, k := c.Experiment, c.Control
	var found []string
	if c.Errors.P < alpha {
		found = append(found, fmt.Sprintf("failed more often (%s vs %s of requests; Fisher's exact test p = %s, odds ratio %s)",
			rate(e.Bad, e.Total), rate(k.Bad, k.Total), pValue(c.Errors.P), odds(float64(c.Errors.OddsRatio))))
	}
	if c.Slow != nil && c.Slow.P < alpha {
		found = append(found, fmt.Sprintf("missed the latency threshold more often (%s vs %s; Fisher's exact test p = %s)",
			rate(e.Slow, e.Total), rate(k.Slow, k.Total), pValue(c.Slow.P)))
	}
	if c.Latency.P < alpha {
		found = append(found, fmt.Sprintf("was slower (p99 %s vs %s; Mann-Whitney U = %.0f, z = %.2f, p = %s, P(slower) = %.3f)",
			e.P99, k.P99, c.Latency.U, c.Latency.Z, pValue(c.Latency.P), float64(c.Latency.Superiority)))
	}
	control := "the control group met the CUJ's SLOs"
	if !k.WithinSLO {
		control = "the control group missed the CUJ's SLOs too"
	}
	if len(found) == 0 {
		return fmt.Sprintf("no significant difference at %s (errors %s vs %s, Fisher p = %s; latency Mann-Whitney p = %s); %s",
			pValue(alpha), rate(e.Bad, e.Total), rate(k.Bad, k.Total), pValue(c.Errors.P), pValue(c.Latency.P), control)
	}
	s := "the experiment group " + found[0]
	for i, f := range found[1:] {
		if i == len(found)-2 {
			s += " and " + f
		} else {
			s += ", " + f
		}
	}
	return s + "; " + control
}

// rate writes bad/total as an exact percentage when it terminates, else to four significant digits.
func rate(bad, total uint64) string {
	if total == 0 {
		return "no requests"
	}
	r := spec.NewRatio(bad, total)
	if s := r.String(); len(s) <= 8 {
		return s
	}
	f, _ := new(big.Rat).SetFrac(new(big.Int).SetUint64(bad*100), new(big.Int).SetUint64(total)).Float64()
	return fmt.Sprintf("%.4g%%", f)
}

func pValue(p float64) string {
	switch {
	case p < 1e-300:
		return "< 1e-300"
	case p < 0.001:
		return fmt.Sprintf("%.2g", p)
	}
	return fmt.Sprintf("%.3g", p)
}

func odds(o float64) string {
	switch {
	case math.IsInf(o, 1):
		return "∞"
	case math.IsNaN(o):
		return "n/a"
	}
	return fmt.Sprintf("%.3g", o)
}
