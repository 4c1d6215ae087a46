package slo

import (
	"math/big"
	"slices"
	"time"
)

// Outlook is what lies ahead for an SLO if, from the instant it was judged,
// its traffic keeps the rate of the last BurnBasis and fails (or is slow) at
// a steady error ratio.
type Outlook struct {
	// Rate is the traffic assumed, in requests per second.
	Rate float64
	// BudgetLasts is how long until the budget over the SLO window is
	// spent; nil if it never is.
	BudgetLasts *time.Duration
	// FiresAfter says, for each alert of the SLO in order, how long until it
	// fires (zero: it fires now); nil if it never does.
	FiresAfter []*time.Duration
}

// Outlook forecasts the SLO from what its windows hold, at error ratio e
// from now on. It reports false when the last BurnBasis holds no request,
// so there is no traffic to go by.
//
// The model: a window of length w is [at+t−w, at+t) at time t after the
// judgement. The events it holds now are taken as spread evenly over the
// part of it the source covers (WindowState.Covered), and leave it at that
// pace once it slides past them; a window the history covers only in part
// first loses its empty, uncovered stretch. New requests come at the rate
// of the last BurnBasis, a share e of them bad. A calendar month keeps what
// it holds until it ends. Counts are linear in t between the instants where
// a window starts and ends losing its old events, so the first instant at
// which an alert's conditions (both windows at the factor, each with
// minBadEvents bad events) or the budget's (bad ≥ (1 − objective)·total)
// all hold is found exactly, piece by piece, in rationals.
//
// From a full, clean history this is DetectionTime for the alerts and the
// window's length over the burn rate for the budget; from a young one it
// says how soon the few minutes held reach a factor.
func (s *SLOStatus) Outlook(e *big.Rat) (Outlook, bool) { return s.outlook(e, true) }

// outlook is Outlook, for the budget alone unless withAlerts.
func (s *SLOStatus) outlook(e *big.Rat, withAlerts bool) (Outlook, bool) {
	basis, ok := s.window(BurnBasis)
	if !ok || basis.Events.Total == 0 || basis.Covered <= 0 {
		return Outlook{}, false
	}
	rate := new(big.Rat).SetFrac(new(big.Int).SetUint64(basis.Events.Total), big.NewInt(int64(basis.Covered))) // per ns
	o := Outlook{Rate: ratFloat(rate) * float64(time.Second)}
	allowed := ratioRat(s.Objective.OneMinus())
	minBad := new(big.Rat).SetInt64(max(s.MinBadEvents, 0))
	newCourse := func(w WindowState) course {
		return course{w: time.Duration(w.Window), c: time.Duration(w.Covered), now: w.Events, rate: rate, e: e}
	}

	period := course{w: time.Duration(s.Period.Duration()), c: time.Duration(s.Covered), now: s.Events, rate: rate, e: e}
	if s.slo.Window.Calendar != "" {
		period.w = MonthStart(s.at).AddDate(0, 1, 0).Sub(s.at) // until the month ends
		period.grows = true
	}
	// Exhausted: bad ≥ (1 − objective)·total, with at least one bad event.
	tiny := new(big.Rat).SetFrac64(1, 1<<62)
	o.BudgetLasts = firstWhen([]condition{{period, allowed, nil}, {period, new(big.Rat), tiny}}, period.horizon())

	if !withAlerts {
		return o, true
	}
	for _, a := range s.slo.Alerts {
		long, ok1 := s.window(a.Long)
		short, ok2 := s.window(a.Short)
		if !ok1 || !ok2 {
			o.FiresAfter = append(o.FiresAfter, nil)
			continue
		}
		theta := new(big.Rat).Mul(ratioRat(a.Factor), allowed)
		l, sh := newCourse(long), newCourse(short)
		o.FiresAfter = append(o.FiresAfter, firstWhen([]condition{
			{l, theta, nil}, {sh, theta, nil}, {l, new(big.Rat), minBad}, {sh, new(big.Rat), minBad},
		}, max(l.horizon(), sh.horizon())))
	}
	return o, true
}

// RequestsPerMinute is the SLO's traffic over the last BurnBasis, as the
// source holds it, in whole requests a minute (rounded down), or 0 when
// that window holds no request. It is the rate Outlook assumes.
func (s *SLOStatus) RequestsPerMinute() uint64 {
	basis, ok := s.window(BurnBasis)
	if !ok || basis.Events.Total == 0 || basis.Covered <= 0 {
		return 0
	}
	n := new(big.Int).Mul(new(big.Int).SetUint64(basis.Events.Total), big.NewInt(int64(time.Minute)))
	return n.Quo(n, big.NewInt(int64(basis.Covered))).Uint64()
}

// ratioOf returns Bad/Total exactly.
func ratioOf(e Events) *big.Rat {
	if e.Total == 0 {
		return new(big.Rat)
	}
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(e.Bad), new(big.Int).SetUint64(e.Total))
}

func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}

// course is one window's events as a function of the time t (in ns) from the
// judgement: old events leave at their average pace, new ones arrive at
// rate with error ratio e.
type course struct {
	w, c  time.Duration // the window's length and the part of it covered now
	now   Events        // what it holds now
	rate  *big.Rat      // new requests per ns
	e     *big.Rat      // their error ratio
	grows bool          // a calendar month: nothing leaves before it ends
}

// horizon is when the window holds new events only (or, for a calendar
// month, when it ends): past it nothing changes.
func (tr course) horizon() time.Duration { return tr.w }

// breaks are the instants where the window's counts change slope.
func (tr course) breaks() []time.Duration {
	if tr.grows {
		return []time.Duration{tr.w}
	}
	return []time.Duration{tr.w - tr.c, tr.w}
}

// linear is α + β·t.
type linear struct{ a, b *big.Rat }

// counts returns the window's total and bad events as linear functions of t
// on the piece starting at t0 (where no break lies inside the piece).
func (tr course) counts(t0 time.Duration) (total, bad linear) {
	// Old part o(t) = oa + ob·t, new part n(t) = na + nb·t.
	oa, ob, na, nb := new(big.Rat), new(big.Rat), new(big.Rat), new(big.Rat)
	switch {
	case tr.grows:
		oa.SetInt64(int64(tr.c))
		if t0 < tr.w {
			nb.SetInt64(1)
		} else {
			na.SetInt64(int64(tr.w))
		}
	case t0 < tr.w-tr.c:
		oa.SetInt64(int64(tr.c))
		nb.SetInt64(1)
	case t0 < tr.w:
		oa.SetInt64(int64(tr.w))
		ob.SetInt64(-1)
		nb.SetInt64(1)
	default:
		na.SetInt64(int64(tr.w))
	}
	// Per ns of the covered part, the old events' density.
	var dT, dB *big.Rat
	if tr.c > 0 {
		dT = new(big.Rat).SetFrac(new(big.Int).SetUint64(tr.now.Total), big.NewInt(int64(tr.c)))
		dB = new(big.Rat).SetFrac(new(big.Int).SetUint64(tr.now.Bad), big.NewInt(int64(tr.c)))
	} else {
		dT, dB = new(big.Rat), new(big.Rat)
		oa.SetInt64(0)
		ob.SetInt64(0)
	}
	newBad := new(big.Rat).Mul(tr.rate, tr.e)
	lin := func(old, fresh *big.Rat) linear {
		return linear{
			a: new(big.Rat).Add(new(big.Rat).Mul(old, oa), new(big.Rat).Mul(fresh, na)),
			b: new(big.Rat).Add(new(big.Rat).Mul(old, ob), new(big.Rat).Mul(fresh, nb)),
		}
	}
	return lin(dT, tr.rate), lin(dB, newBad)
}

// condition holds at t when bad(t) ≥ k·total(t) + m for its window.
type condition struct {
	tr course
	k  *big.Rat
	m  *big.Rat // nil: 0
}

// on returns the condition as f(t) ≥ 0 with f linear on the piece at t0.
func (c condition) on(t0 time.Duration) linear {
	total, bad := c.tr.counts(t0)
	f := linear{
		a: new(big.Rat).Sub(bad.a, new(big.Rat).Mul(c.k, total.a)),
		b: new(big.Rat).Sub(bad.b, new(big.Rat).Mul(c.k, total.b)),
	}
	if c.m != nil {
		f.a.Sub(f.a, c.m)
	}
	return f
}

// firstWhen returns the first t ≥ 0 at which every condition holds, or nil
// if none does before the horizon (after it nothing changes, so the answer
// at the horizon stands for ever).
func firstWhen(conds []condition, horizon time.Duration) *time.Duration {
	breaks := []time.Duration{0, horizon}
	for _, c := range conds {
		for _, b := range c.tr.breaks() {
			if b > 0 && b < horizon {
				breaks = append(breaks, b)
			}
		}
	}
	slices.Sort(breaks)
	breaks = slices.Compact(breaks)
	for i, t0 := range breaks {
		lo := new(big.Rat).SetInt64(int64(t0))
		var hi *big.Rat // inclusive upper bound from falling conditions; nil: none
		ok := true
		for _, c := range conds {
			f := c.on(t0)
			switch f.b.Sign() {
			case 0:
				ok = ok && evalAt(f, lo).Sign() >= 0
			case 1: // holds from its root on
				root := new(big.Rat).Quo(new(big.Rat).Neg(f.a), f.b)
				if root.Cmp(lo) > 0 {
					lo = root
				}
			case -1: // holds up to its root
				root := new(big.Rat).Quo(new(big.Rat).Neg(f.a), f.b)
				if hi == nil || root.Cmp(hi) < 0 {
					hi = root
				}
			}
		}
		if !ok || hi != nil && lo.Cmp(hi) > 0 {
			continue
		}
		if i+1 < len(breaks) && lo.Cmp(new(big.Rat).SetInt64(int64(breaks[i+1]))) >= 0 {
			continue
		}
		d := ceilDuration(lo)
		return &d
	}
	return nil
}

func evalAt(f linear, t *big.Rat) *big.Rat {
	return new(big.Rat).Add(f.a, new(big.Rat).Mul(f.b, t))
}

// ceilDuration rounds a non-negative number of ns up to a whole ns.
func ceilDuration(r *big.Rat) time.Duration {
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 1<<63 - 1
	}
	return time.Duration(q.Int64())
}
