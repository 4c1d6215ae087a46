package slo

import (
	"math/big"
	"time"

	"slolab.dev/slolab/spec"
)

// Review is what an SLO review meeting looks at: per CUJ, each SLO's budget
// over the review window, how it was spent, the alerts that fired and what
// the error-budget policy calls for.
type Review struct {
	Service string        `json:"service"`
	Window  spec.Duration `json:"window"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Step    spec.Duration `json:"trendStep"`
	// Span is what the source held: since when, and which part of it is
	// synthetic (the lab's generated history).
	Span Span        `json:"span,omitzero"`
	CUJs []CUJReview `json:"cujs"`
}

// CUJReview is one CUJ's part of a review.
type CUJReview struct {
	Name        string      `json:"name"`
	Owner       string      `json:"owner"`
	Description string      `json:"description,omitempty"`
	SLOs        []SLOReview `json:"slos"`
	// Policy lists the policy rules whose condition holds for any of the
	// CUJ's SLOs, each once, in policy order.
	Policy []PolicyHit `json:"policy"`
}

// SLOReview is one SLO over the review window.
type SLOReview struct {
	Kind          Kind          `json:"kind"`
	Objective     spec.Ratio    `json:"objective"`
	Threshold     spec.Duration `json:"threshold,omitempty"`
	Events        Events        `json:"events"`
	SLIPercent    *float64      `json:"sliPercent"`
	Met           bool          `json:"met"`
	Budget        Budget        `json:"budget"`
	TooFewToJudge bool          `json:"tooFewToJudge,omitempty"`
	Trend         []TrendPoint  `json:"trend"`
	Alerts        []Episode     `json:"alerts"`
	Policy        []PolicyHit   `json:"policy,omitempty"`
}

// TrendPoint is one step of a budget's burn-down.
type TrendPoint struct {
	End    time.Time `json:"end"`
	Events Events    `json:"events"`
	// ConsumedPercent is this step's bad events as a share of the whole
	// window's budget; RemainingPercent is what is left after this step.
	ConsumedPercent  float64 `json:"consumedPercent"`
	RemainingPercent float64 `json:"remainingPercent"`
}

// TrendStep returns the step of a review's burn-down: a day for windows of a
// week or more, else an hour.
func TrendStep(window time.Duration) time.Duration {
	if window >= spec.Week {
		return spec.Day
	}
	return time.Hour
}

// ReviewOf builds the review of the window ending at at. h must hold the
// window and, for the alert replay, the longest alert window before it.
func ReviewOf(svc *spec.Service, h *History, at time.Time, window time.Duration) *Review {
	from := at.Add(-window)
	step := TrendStep(window)
	rv := &Review{Service: svc.Name, Window: spec.Duration(window), From: from.UTC(), To: at.UTC(), Step: spec.Duration(step), Span: h.span}
	bt := Replay(svc, h, from, at, time.Minute)
	slos := SLOs(svc)
	for _, c := range svc.CUJs {
		cr := CUJReview{Name: c.Name, Owner: c.Owner, Description: c.Description, SLOs: []SLOReview{}, Policy: []PolicyHit{}}
		hit := map[string]bool{}
		for i := range slos {
			s := slos[i]
			if s.CUJ != c.Name {
				continue
			}
			s.Window = spec.Window{Rolling: window}
			st := judge(&s, at, h.span, h.Lookup(s.Key))
			sr := SLOReview{
				Kind: s.Kind, Objective: s.Objective, Threshold: st.Threshold, Events: st.Events, SLIPercent: st.SLIPercent,
				Met: st.Met, Budget: st.Budget, TooFewToJudge: tooFew(st.Events, s.Objective, s.MinBadEvents),
				Trend: trend(h, s, from, at, step, st.Events), Alerts: []Episode{}, Policy: st.Policy,
			}
			for _, ep := range bt.Episodes {
				if ep.CUJ == s.CUJ && ep.Kind == s.Kind {
					sr.Alerts = append(sr.Alerts, ep)
				}
			}
			cr.SLOs = append(cr.SLOs, sr)
			for _, p := range st.Policy {
				hit[p.When+"\x00"+p.Action] = true
			}
		}
		for _, p := range slos[indexOfCUJ(slos, c.Name)].Policy {
			if hit[p.When.String()+"\x00"+p.Action] {
				cr.Policy = append(cr.Policy, PolicyHit{When: p.When.String(), Action: p.Action})
			}
		}
		rv.CUJs = append(rv.CUJs, cr)
	}
	return rv
}

func indexOfCUJ(slos []SLO, cuj string) int {
	for i := range slos {
		if slos[i].CUJ == cuj {
			return i
		}
	}
	return 0
}

// trend splits [from, at) into steps ending at at and reports each step's
// share of the whole window's budget and what remained after it.
func trend(h *History, s SLO, from, at time.Time, step time.Duration, whole Events) []TrendPoint {
	allowed := Allowed(whole, s.Objective)
	var points []TrendPoint
	var spent uint64
	for start := from; start.Before(at); start = start.Add(step) {
		end := start.Add(step)
		if end.After(at) {
			end = at
		}
		ev := h.Between(s.Key, Range{start, end})
		spent += ev.Bad
		p := TrendPoint{End: end.UTC(), Events: ev, RemainingPercent: 100}
		if allowed.Sign() > 0 {
			p.ConsumedPercent = percentOf(ev.Bad, allowed)
			p.RemainingPercent = 100 - percentOf(spent, allowed)
		}
		points = append(points, p)
	}
	return points
}

func percentOf(n uint64, of *big.Rat) float64 {
	x := new(big.Rat).SetInt(new(big.Int).Mul(new(big.Int).SetUint64(n), big.NewInt(100)))
	f, _ := x.Quo(x, of).Float64()
	return f
}
