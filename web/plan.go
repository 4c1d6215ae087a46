package web

// This file is the dashboard's stand-in for the SLO engine's simulation
// planner (slo.PlanFor, issue 3): the same inputs and outputs, for the states
// the simulate panel offers. When slo.PlanFor lands on main, PlanFor below
// becomes a call to it and the rest of this file goes.

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Want is one SLO state to simulate on a CUJ. Exactly one field is set.
type Want struct {
	Availability *spec.Ratio    // this share of the CUJ's requests succeed
	BurnRate     *spec.Ratio    // the availability budget burns this many times as fast as allowed
	Latency      *LatencyTarget // exactly 1 − Objective of requests end above Threshold
	Alert        string         // "page" or "ticket": the state that trips that alert's first rule
	Seed         uint64
	TTL          time.Duration
}

// LatencyTarget is "Objective of requests complete within Threshold".
type LatencyTarget struct {
	Threshold time.Duration
	Objective spec.Ratio
}

// Plan is the exact fault rules that put a CUJ in a wanted state.
type Plan struct {
	CUJ         string            `json:"cuj"`
	Rules       []*spec.FaultRule `json:"rules"`
	Intended    Intended          `json:"intended"`
	Explanation string            `json:"explanation"`
}

// Intended is what the simulation means to realise on the CUJ.
type Intended struct {
	Kind      string        `json:"kind"`  // "availability" or "latency"
	Share     spec.Ratio    `json:"share"` // of the CUJ's requests made bad (failed, or slow)
	Threshold spec.Duration `json:"threshold,omitempty"`
	BurnRate  string        `json:"burnRate,omitempty"`
}

// Kinds of intended effect.
const (
	KindAvailability = "availability"
	KindLatency      = "latency"
)

// PlanFor returns the plan that puts CUJ cuj of svc in the wanted state.
func PlanFor(svc *spec.Service, cuj string, w Want) (*Plan, error) {
	c := svc.CUJ(cuj)
	if c == nil {
		return nil, fmt.Errorf("service %s has no CUJ %q (it has %s)", svc.Name, cuj, strings.Join(svc.CUJNames(), ", "))
	}
	if w.TTL == 0 {
		w.TTL = spec.DefaultTTL
	}
	rule := &spec.FaultRule{Name: "sim-" + c.Name, Match: spec.Selector{CUJ: c.Name}, Seed: w.Seed, TTL: w.TTL}
	p := &Plan{CUJ: c.Name, Rules: []*spec.FaultRule{rule}}
	if w.Latency != nil {
		t := *w.Latency
		share := t.Objective.OneMinus()
		delay := t.Threshold + max(t.Threshold/10, time.Millisecond)
		rule.Rate, rule.Delay = share, &spec.Delay{Kind: spec.DelayFixed, Fixed: delay}
		rule.Description = fmt.Sprintf("slolab dashboard: %s of %s requests take %s", share, c.Name, spec.FormatDuration(delay))
		p.Intended = Intended{Kind: KindLatency, Share: share, Threshold: spec.Duration(t.Threshold)}
		p.Explanation = fmt.Sprintf("%s of %s requests take %s, just above %s", share, c.Name, spec.FormatDuration(delay), spec.FormatDuration(t.Threshold))
		if l := c.Latency; l != nil && l.Threshold == t.Threshold {
			p.Intended.BurnRate = burnText(share, l.Objective)
			p.Explanation += fmt.Sprintf(": the latency SLO (%s under %s) is met exactly, and its %s budget lasts %s",
				l.Objective, spec.FormatDuration(l.Threshold), l.Window, lasts(share, l.Objective, l.Window))
		}
		p.Explanation += "."
		return p, nil
	}
	var share spec.Ratio
	a := c.Availability
	var because string
	switch {
	case w.Availability != nil:
		if w.Availability.Cmp(spec.One) > 0 {
			return nil, fmt.Errorf("availability %s is above 100%%", w.Availability)
		}
		share = w.Availability.OneMinus()
	case a == nil:
		return nil, fmt.Errorf("CUJ %s has no availability SLO: a burn rate or an alert state needs one", c.Name)
	case w.BurnRate != nil:
		s, ok := w.BurnRate.Mul(a.Objective.OneMinus())
		if !ok || s.Cmp(spec.One) > 0 {
			return nil, fmt.Errorf("burn rate %s of a %s SLO would fail more than every request", w.BurnRate.Decimal(), a.Objective)
		}
		share = s
	default:
		var rule *spec.BurnRateAlert
		for _, r := range slo.AlertsFor(svc, c) {
			if r.Severity == w.Alert {
				rule = &r
				break
			}
		}
		if rule == nil {
			return nil, fmt.Errorf("CUJ %s has no %q alert: want page or ticket", c.Name, w.Alert)
		}
		share, _ = rule.Factor.Mul(a.Objective.OneMinus())
		because = fmt.Sprintf(", the threshold of the %s alert (%s over %s, confirmed over %s)",
			rule.Severity, rule.Factor.Decimal(), spec.FormatDuration(rule.Long), spec.FormatDuration(rule.Short))
	}
	if share.IsZero() {
		return nil, fmt.Errorf("that state fails no request: nothing to simulate")
	}
	if share.Cmp(spec.MinRate) < 0 {
		return nil, fmt.Errorf("that state fails %s of requests, below the smallest rate a fault rule injects (%s)", share, spec.MinRate)
	}
	rule.Rate = share
	rule.Status = &spec.StatusAction{Code: 503, Body: "slolab dashboard: injected failure\n"}
	rule.Description = fmt.Sprintf("slolab dashboard: %s of %s requests fail", share, c.Name)
	p.Intended = Intended{Kind: KindAvailability, Share: share}
	p.Explanation = fmt.Sprintf("%s of %s requests fail with 503", share, c.Name)
	if a != nil {
		p.Intended.BurnRate = burnText(share, a.Objective)
		p.Explanation += fmt.Sprintf(": burn rate %s%s. At this rate the availability SLO's %s budget (%s) lasts %s",
			p.Intended.BurnRate, because, a.Window, a.Objective, lasts(share, a.Objective, a.Window))
	}
	p.Explanation += "."
	return p, nil
}

func ratioRat(r spec.Ratio) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Num()), new(big.Int).SetUint64(r.Den()))
}

// burnText is share/(1 − objective), exact when it has a short decimal form.
func burnText(share, objective spec.Ratio) string {
	b := new(big.Rat).Quo(ratioRat(share), ratioRat(objective.OneMinus()))
	for places := 0; places <= 6; places++ {
		s := b.FloatString(places)
		if back, ok := new(big.Rat).SetString(s); ok && back.Cmp(b) == 0 {
			return s
		}
	}
	return b.FloatString(2)
}

// lasts says how long a full budget lasts at this share of bad requests.
func lasts(share, objective spec.Ratio, w spec.Window) string {
	length := w.Rolling
	if w.Calendar != "" {
		length = 30 * spec.Day
	}
	b := new(big.Rat).Quo(ratioRat(share), ratioRat(objective.OneMinus()))
	d := new(big.Rat).Quo(new(big.Rat).SetInt64(int64(length)), b)
	f, _ := d.Float64()
	switch dur := time.Duration(f); {
	case dur >= spec.Day && dur%spec.Day == 0:
		return fmt.Sprintf("%d days", dur/spec.Day)
	case dur >= time.Hour:
		return "about " + spec.FormatDuration(dur.Round(time.Minute))
	default:
		return "about " + spec.FormatDuration(dur.Round(time.Second))
	}
}
