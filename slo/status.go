package slo

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	"slolab.dev/slolab/spec"
)

// Source counts the events of a service's SLOs. Implementations: the
// embedded store (store/sqlite), Prometheus (store/promql) and History.
type Source interface {
	// Events returns every SLO's events over r. An SLO it knows nothing
	// about may be missing from the map; it counts as no events.
	Events(ctx context.Context, r Range) (map[Key]Events, error)
}

// BurnBasis is the window whose burn rate is "the current burn" when status
// estimates the time to exhaustion.
const BurnBasis = time.Hour

// SLO is one SLO of a CUJ with everything the engine needs to judge it.
type SLO struct {
	Key
	Owner        string
	Objective    spec.Ratio
	Threshold    time.Duration // latency SLOs
	Window       spec.Window
	Alerts       []spec.BurnRateAlert
	MinBadEvents int64
	Policy       []*spec.PolicyRule // the service's rules, then the CUJ's

	windows []time.Duration // Windows(), computed once
	factors []string        // each alert's factor as text
}

// SLOs lists the SLOs of a service in spec order, availability before latency.
func SLOs(svc *spec.Service) []SLO {
	var out []SLO
	texts := map[spec.Ratio]string{} // Decimal is slow; most SLOs share one alert table
	for _, c := range svc.CUJs {
		base := SLO{
			Owner: c.Owner, Alerts: AlertsFor(svc, c), MinBadEvents: MinBadEventsFor(svc, c),
			Policy: append(slices.Clip(svc.Policy), c.Policy...),
		}
		base.windows = base.Windows()
		for _, a := range base.Alerts {
			t, ok := texts[a.Factor]
			if !ok {
				t = a.Factor.Decimal()
				texts[a.Factor] = t
			}
			base.factors = append(base.factors, t)
		}
		if a := c.Availability; a != nil {
			s := base
			s.Key, s.Objective, s.Window = Key{c.Name, Availability}, a.Objective, a.Window
			out = append(out, s)
		}
		if l := c.Latency; l != nil {
			s := base
			s.Key, s.Objective, s.Window, s.Threshold = Key{c.Name, Latency}, l.Objective, l.Window, l.Threshold
			out = append(out, s)
		}
	}
	return out
}

// Windows returns the windows an SLO's status reports burn rates over:
// StatusWindows plus any alert window not among them, shortest first.
func (s *SLO) Windows() []time.Duration {
	if s.windows != nil {
		return s.windows
	}
	ws := slices.Clone(StatusWindows)
	for _, a := range s.Alerts {
		for _, w := range []time.Duration{a.Short, a.Long} {
			if !slices.Contains(ws, w) {
				ws = append(ws, w)
			}
		}
	}
	slices.Sort(ws)
	return ws
}

// Status is the state of every SLO of a service at one instant.
type Status struct {
	Service string    `json:"service"`
	At      time.Time `json:"at"`
	// Span is what the source holds, when it can tell: since when, and
	// which part of it is synthetic (the lab's generated history).
	Span *Span       `json:"span,omitempty"`
	SLOs []SLOStatus `json:"slos"`
}

// SLOStatus is the state of one SLO: its SLI over the SLO window, the error
// budget, burn rates and alerts.
type SLOStatus struct {
	CUJ       string        `json:"cuj"`
	Owner     string        `json:"owner"`
	Kind      Kind          `json:"kind"`
	Objective spec.Ratio    `json:"objective"`
	Threshold spec.Duration `json:"threshold,omitempty"`
	Window    string        `json:"window"`
	Period    Range         `json:"period"`
	// Covered is how much of the period the source holds: less than the
	// period while its history is younger than the SLO window.
	Covered      spec.Duration `json:"covered"`
	Events       Events        `json:"events"`
	SLIPercent   *float64      `json:"sliPercent"` // nil without events
	Met          bool          `json:"met"`
	Budget       Budget        `json:"budget"`
	Windows      []WindowState `json:"windows"`
	Alerts       []AlertState  `json:"alerts"`
	MinBadEvents int64         `json:"minBadEvents"`
	Policy       []PolicyHit   `json:"policy,omitempty"`

	at  time.Time
	slo SLO
}

// Key returns the SLO's key.
func (s *SLOStatus) Key() Key { return Key{s.CUJ, s.Kind} }

// Firing returns the alerts that fire.
func (s *SLOStatus) Firing() []AlertState {
	var out []AlertState
	for _, a := range s.Alerts {
		if a.Firing {
			out = append(out, a)
		}
	}
	return out
}

// Budget is an SLO's error budget over its period so far.
type Budget struct {
	// Allowed is the number of bad events the budget allows among the
	// period's requests: (1 − objective)·total.
	Allowed float64 `json:"allowed"`
	Spent   uint64  `json:"spent"`
	// ConsumedPercent is Spent/Allowed in percent; above 100 when overspent.
	ConsumedPercent  float64 `json:"consumedPercent"`
	RemainingPercent float64 `json:"remainingPercent"` // 100 − consumed; negative when overspent
	Exhausted        bool    `json:"exhausted"`
	// TimeToExhaustion is how long the budget lasts if the traffic keeps
	// the rate and the error ratio of the last BurnBasis (see Outlook);
	// absent when it never runs out so, zero when it is gone.
	TimeToExhaustion *spec.Duration `json:"timeToExhaustion,omitempty"`
	BurnBasis        spec.Duration  `json:"burnBasis"`

	events    Events // over the period
	objective spec.Ratio
}

// Consumed returns the exact share of the budget spent (1 = all of it).
func (b *Budget) Consumed() *big.Rat {
	if c := BurnRate(b.events, b.objective); c != nil {
		return c
	}
	return new(big.Rat)
}

// WindowState is an SLO's burn over one window ending at the status instant.
type WindowState struct {
	Window spec.Duration `json:"window"`
	// Covered is how much of the window the source holds: less than Window
	// while its history is younger than the window.
	Covered  spec.Duration `json:"covered"`
	Events   Events        `json:"events"`
	BurnRate *float64      `json:"burnRate"` // nil without requests
	// TooFewToJudge: the window holds fewer than MinBadEvents bad events
	// and too few requests to expect that many at the objective
	// (Total·(1 − objective) < MinBadEvents), so its burn rate is noise.
	// No alert fires on such a window (see Judged).
	TooFewToJudge bool `json:"tooFewToJudge,omitempty"`
}

// AlertState is one multiwindow burn-rate alert of an SLO.
type AlertState struct {
	Severity  string        `json:"severity"`
	Long      spec.Duration `json:"long"`
	Short     spec.Duration `json:"short"`
	Factor    string        `json:"burnRate"` // the threshold, e.g. "14.4"
	LongBurn  *float64      `json:"longBurnRate"`
	ShortBurn *float64      `json:"shortBurnRate"`
	LongBad   uint64        `json:"longBad"`
	ShortBad  uint64        `json:"shortBad"`
	Firing    bool          `json:"firing"`
	// Guarded: both windows burn fast enough, but one of them holds fewer
	// than MinBadEvents bad events, so the low-traffic guard holds it back.
	Guarded bool `json:"guarded,omitempty"`

	rule spec.BurnRateAlert
}

// Pair names the windows: "1h/5m".
func (a *AlertState) Pair() string {
	return spec.FormatDuration(time.Duration(a.Long)) + "/" + spec.FormatDuration(time.Duration(a.Short))
}

// Rule returns the alert rule evaluated.
func (a *AlertState) Rule() spec.BurnRateAlert { return a.rule }

func (a *AlertState) String() string {
	return fmt.Sprintf("%s: %s ≥ %s", a.Severity, a.Pair(), a.Factor)
}

// PolicyHit is an error-budget policy rule whose condition holds.
type PolicyHit struct {
	When   string `json:"when"`
	Action string `json:"action"`
}

// Evaluate judges every SLO of svc at the instant at, reading events from
// src: one call per distinct window.
func Evaluate(ctx context.Context, svc *spec.Service, src Source, at time.Time) (*Status, error) {
	slos := SLOs(svc)
	cache := map[Range]map[Key]Events{}
	lookup := func(r Range) (map[Key]Events, error) {
		if m, ok := cache[r]; ok {
			return m, nil
		}
		m, err := src.Events(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("reading events over %s..%s: %w", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), err)
		}
		cache[r] = m
		return m, nil
	}
	st := &Status{Service: svc.Name, At: at.UTC(), SLOs: make([]SLOStatus, 0, len(slos))}
	var span Span
	if sp, ok := src.(Spanner); ok {
		longest := time.Duration(0)
		for i := range slos {
			longest = max(longest, Period(slos[i].Window, at).Duration(), slos[i].Windows()[len(slos[i].Windows())-1])
		}
		var err error
		if span, err = sp.Span(ctx, Last(longest, at)); err != nil {
			return nil, fmt.Errorf("reading what the source holds: %w", err)
		}
		st.Span = &span
	}
	if h, ok := src.(*History); ok { // prefix sums: read each SLO's windows directly
		for i := range slos {
			st.SLOs = append(st.SLOs, judge(&slos[i], at, span, h.Lookup(slos[i].Key)))
		}
		return st, nil
	}
	for i := range slos {
		var failed error
		events := func(r Range) Events {
			m, err := lookup(r)
			if err != nil {
				failed = err
				return Events{}
			}
			return m[slos[i].Key]
		}
		s := judge(&slos[i], at, span, events)
		if failed != nil {
			return nil, failed
		}
		st.SLOs = append(st.SLOs, s)
	}
	return st, nil
}

// Judge evaluates one SLO at the instant at; events returns its events over
// a range. It is the pure heart of status, backtests and reviews. It takes
// the source to cover every window; Evaluate tells it otherwise.
func Judge(s *SLO, at time.Time, events func(Range) Events) SLOStatus {
	return judge(s, at, Span{}, events)
}

// judge is Judge over a source holding span.
func judge(s *SLO, at time.Time, span Span, events func(Range) Events) SLOStatus {
	period := Period(s.Window, at)
	ev := events(period)
	st := SLOStatus{
		CUJ: s.CUJ, Owner: s.Owner, Kind: s.Kind, Objective: s.Objective, Threshold: spec.Duration(s.Threshold),
		Window: s.Window.String(), Period: period, Covered: spec.Duration(span.Covered(period)), Events: ev, Met: Met(ev, s.Objective),
		MinBadEvents: s.MinBadEvents, at: at, slo: *s,
	}
	windows := s.Windows()
	// One allocation for every float the status points to.
	floats := make([]float64, 1+len(windows)+2*len(s.Alerts))
	if ev.Total > 0 {
		floats[0] = float64(ev.Good()) / float64(ev.Total) * 100
		st.SLIPercent = &floats[0]
	}
	st.Windows = make([]WindowState, len(windows))
	for i, w := range windows {
		r := Last(w, at)
		e := events(r)
		ws := WindowState{Window: spec.Duration(w), Covered: spec.Duration(span.Covered(r)), Events: e, TooFewToJudge: tooFew(e, s.Objective, s.MinBadEvents)}
		if e.Total > 0 {
			floats[1+i] = burnFloat(e, s.Objective)
			ws.BurnRate = &floats[1+i]
		}
		st.Windows[i] = ws
	}
	of := func(d time.Duration) Events {
		for i, w := range windows {
			if w == d {
				return st.Windows[i].Events
			}
		}
		return events(Last(d, at))
	}
	st.Budget = budget(ev, s.Objective)
	st.Alerts = make([]AlertState, len(s.Alerts))
	for i, a := range s.Alerts {
		as := judgeAlert(a, of(a.Long), of(a.Short), s.Objective, s.MinBadEvents, floats[1+len(windows)+2*i:][:2])
		if i < len(s.factors) {
			as.Factor = s.factors[i]
		} else {
			as.Factor = a.Factor.Decimal()
		}
		st.Alerts[i] = as
	}
	for _, p := range s.Policy {
		if policyHolds(p.When, ev, s.Objective) {
			st.Policy = append(st.Policy, PolicyHit{When: p.When.String(), Action: p.Action})
		}
	}
	switch {
	case st.Budget.Exhausted:
		zero := spec.Duration(0)
		st.Budget.TimeToExhaustion = &zero
	default:
		// The current burn: the last BurnBasis's error ratio, if it has any.
		if basis, ok := st.window(BurnBasis); ok && basis.Events.Bad > 0 {
			if o, ok := st.outlook(ratioOf(basis.Events), false); ok && o.BudgetLasts != nil {
				d := spec.Duration(o.BudgetLasts.Round(time.Second))
				st.Budget.TimeToExhaustion = &d
			}
		}
	}
	return st
}

// window returns the state of the window of length d.
func (s *SLOStatus) window(d time.Duration) (WindowState, bool) {
	for _, w := range s.Windows {
		if time.Duration(w.Window) == d {
			return w, true
		}
	}
	return WindowState{}, false
}

// tooFew reports whether e is too little to judge: fewer than minBad bad
// events, and too few requests to expect minBad of them when burning at
// exactly the budget: Bad < minBad and Total·(1 − objective) < minBad.
func tooFew(e Events, objective spec.Ratio, minBad int64) bool {
	if e.Bad >= uint64(max(minBad, 0)) {
		return false
	}
	n, d := budgetParts(objective)
	// Total·(d − n) < minBad·d
	return mul3(e.Total, d-n, 1).cmp(mul3(uint64(max(minBad, 0)), d, 1)) < 0
}

func budget(ev Events, objective spec.Ratio) Budget {
	b := Budget{Spent: ev.Bad, BurnBasis: spec.Duration(BurnBasis), events: ev, objective: objective}
	allowedShare := objective.OneMinus().Float()
	b.Allowed = float64(ev.Total) * allowedShare
	consumed := burnFloat(ev, objective) // the period's burn rate is the share of its budget spent
	b.ConsumedPercent = consumed * 100
	b.RemainingPercent = 100 - b.ConsumedPercent
	b.Exhausted = ev.Bad > 0 && BurnRateAtLeast(ev, objective, spec.One)
	return b
}

// roundRat rounds a non-negative rational to the nearest integer, saturating.
func roundRat(r *big.Rat) int64 {
	q := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	if !q.IsInt64() {
		return 1<<63 - 1
	}
	return q.Int64()
}

// judgeAlert evaluates one alert rule; floats (two) hold its burn rates.
// Factor is left for the caller to fill in.
//
// The rule, the one place it is decided: an alert fires when both of its
// windows burn at least its factor and each holds at least minBad bad
// events (the low-traffic guard). Counts are what the windows hold, never
// extrapolated, so a young history alerts on no fewer failures than an old
// one. A window with fewer than minBad bad events cannot fire an alert, and
// is marked too few to judge unless it holds enough requests to expect
// minBad at the objective (tooFew), so a firing alert never rests on a
// window marked too few.
func judgeAlert(a spec.BurnRateAlert, long, short Events, objective spec.Ratio, minBad int64, floats []float64) AlertState {
	st := AlertState{Severity: a.Severity, Long: spec.Duration(a.Long), Short: spec.Duration(a.Short), LongBad: long.Bad, ShortBad: short.Bad, rule: a}
	if long.Total > 0 {
		floats[0] = burnFloat(long, objective)
		st.LongBurn = &floats[0]
	}
	if short.Total > 0 {
		floats[1] = burnFloat(short, objective)
		st.ShortBurn = &floats[1]
	}
	burning := BurnRateAtLeast(long, objective, a.Factor) && BurnRateAtLeast(short, objective, a.Factor)
	enough := long.Bad >= uint64(max(minBad, 0)) && short.Bad >= uint64(max(minBad, 0))
	st.Firing = burning && enough
	st.Guarded = burning && !enough
	return st
}

// policyHolds evaluates a budget condition exactly: the share of the budget
// consumed, c = Bad·d/(Total·(d − n)) for objective n/d, or what remains,
// 1 − c, against a threshold t, compared in integers.
func policyHolds(cond spec.BudgetCondition, ev Events, objective spec.Ratio) bool {
	n, d := budgetParts(objective)
	t := cond.Threshold
	op := cond.Op
	if cond.Measure == "remaining" {
		if t.Cmp(spec.One) > 0 { // remaining is at most 100%
			return op == "<" || op == "<="
		}
		// 1 − c <op> t  ⇔  c <flipped op> 1 − t
		t = t.OneMinus()
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
	}
	// c <op> t.num/t.den  ⇔  Bad·d·t.den <op> t.num·Total·(d − n); with no
	// requests nothing is consumed: 0 <op> t.
	var cmp int
	if ev.Total == 0 {
		cmp = -1
		if t.IsZero() {
			cmp = 0
		}
	} else {
		cmp = mul3(ev.Bad, d, t.Den()).cmp(mul3(t.Num(), ev.Total, d-n))
	}
	switch op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// DetectionTime returns how long after an error ratio e starts (from a
// clean history and under steady traffic) the alert fires: both windows
// must reach the burn rate factor, and a window of length w holding
// e for a time x has ratio e·x/w, so each needs x = w·factor·(1 − objective)/e.
// It reports false when e is too low to ever fire the alert.
func DetectionTime(a spec.BurnRateAlert, objective, e spec.Ratio) (time.Duration, bool) {
	need, ok := a.Factor.Mul(objective.OneMinus()) // the error ratio the alert needs
	if !ok || e.IsZero() || e.Cmp(need) < 0 {
		return 0, false
	}
	long := new(big.Rat).Mul(new(big.Rat).SetInt64(int64(a.Long)), ratioRat(need))
	long.Quo(long, ratioRat(e))
	// The short window is shorter, so the long one decides; it still must be reached.
	short := new(big.Rat).Mul(new(big.Rat).SetInt64(int64(a.Short)), ratioRat(need))
	short.Quo(short, ratioRat(e))
	if long.Cmp(short) < 0 {
		long = short
	}
	// Round up to a whole nanosecond: the alert has not fired before then.
	q, m := new(big.Int).QuoRem(long.Num(), long.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return time.Duration(q.Int64()), true
}

func ratioRat(r spec.Ratio) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Num()), new(big.Int).SetUint64(r.Den()))
}
