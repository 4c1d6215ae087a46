package slo

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// Want is one SLO state to simulate on a CUJ. Exactly one of Availability,
// BurnRate, Latency and Alert is set.
type Want struct {
	// Availability: this share of the CUJ's requests succeed ("99.9%").
	Availability *spec.Ratio
	// BurnRate: the CUJ's availability budget burns this many times as fast
	// as its SLO allows (14.4).
	BurnRate *spec.Ratio
	// Latency: exactly 1 − Objective of the CUJ's requests end above Threshold.
	Latency *LatencyTarget
	// Alert: the state that just trips an alert of the CUJ's availability
	// SLO: "page", "ticket" (the severity's first rule, the quickest to
	// fire at its own threshold) or a window pair such as "6h/30m".
	Alert string

	// Baseline, when set, delays every request of every other CUJ, to mimic
	// production latency. It must have a known maximum (fixed, uniform or a
	// percentile table); for each CUJ it is capped at BaselineShare of that
	// CUJ's latency threshold so that it never makes a request slow by itself.
	Baseline *spec.Delay

	// RequestsPerMinute is the CUJ's measured traffic, if known. With it, an
	// Alert state adds one bad request per short window over the exact
	// threshold, so every window trips the alert instead of half of them
	// (at exactly the threshold, a window holds p·n bad requests rounded
	// either way).
	RequestsPerMinute uint64

	// Seed offsets the exact-rate pattern (see fault.Counter); TTL is each
	// rule's lease.
	Seed uint64
	TTL  time.Duration
}

// LatencyTarget is "Objective of requests complete within Threshold".
type LatencyTarget struct {
	Threshold time.Duration
	Objective spec.Ratio
}

func (l LatencyTarget) String() string {
	return spec.FormatDuration(l.Threshold) + "@" + l.Objective.String()
}

// ParseLatencyTarget reads "1s@99%": 99% of requests complete within 1s.
func ParseLatencyTarget(s string) (LatencyTarget, error) {
	d, o, ok := strings.Cut(s, "@")
	if !ok {
		return LatencyTarget{}, fmt.Errorf("want THRESHOLD@OBJECTIVE such as 1s@99%%, got %q", s)
	}
	thr, err := spec.ParseDuration(d)
	if err != nil {
		return LatencyTarget{}, fmt.Errorf("%q: %w", s, err)
	}
	if thr <= 0 {
		return LatencyTarget{}, fmt.Errorf("%q: the threshold must be positive", s)
	}
	obj, err := spec.ParsePercent(o)
	if err != nil {
		return LatencyTarget{}, fmt.Errorf("%q: %w", s, err)
	}
	if obj.IsZero() || obj.Cmp(spec.One) >= 0 {
		return LatencyTarget{}, fmt.Errorf("%q: the objective must be between 0%% and 100%%, exclusive", s)
	}
	return LatencyTarget{thr, obj}, nil
}

// BaselineShare is the largest share of a CUJ's latency threshold a
// baseline delay may take: the rest is left for the app's own time.
var BaselineShare = spec.NewRatio(4, 5)

// LatencyMargin returns how far past the threshold a simulated slow request
// is delayed: a tenth of the threshold, at least a millisecond. Any positive
// margin makes the count exact, because a request's latency is its delay
// plus the upstream's and the proxy's time; without one, a request answered
// instantly would end exactly at the threshold, which counts as good. The
// tenth makes the slow requests visibly slow to the people clicking through,
// and keeps them clear of the threshold in pipelines that round latencies
// (float seconds, whole milliseconds).
func LatencyMargin(threshold time.Duration) time.Duration {
	return max(threshold/10, time.Millisecond)
}

// Plan is the exact fault rules that put a CUJ in a wanted state, with what
// they are meant to achieve.
type Plan struct {
	CUJ         string            `json:"cuj"`
	Rules       []*spec.FaultRule `json:"rules"`
	Intended    Intended          `json:"intended"`
	Explanation string            `json:"explanation"`
	// Notes say what the plan changed or cannot promise (a baseline capped
	// for a fast CUJ, an alert state exactly at the threshold).
	Notes []string `json:"notes,omitempty"`

	lead   string      // the explanation's first part: what fails
	window spec.Window // of the SLO the state burns; zero when it burns none
	what   string      // "" or "latency "
}

// Intended is what the simulation means to realise on the CUJ.
type Intended struct {
	Kind Kind `json:"kind"`
	// Share of the CUJ's requests made bad (failed, or slower than Threshold).
	Share     spec.Ratio    `json:"share"`
	Threshold spec.Duration `json:"threshold,omitempty"`
	// SLO and BurnRate: the CUJ's SLO of this kind and the burn rate the
	// state causes on it; absent when the CUJ has no such SLO.
	SLO      string `json:"slo,omitempty"`
	BurnRate string `json:"burnRate,omitempty"`
	// BudgetLasts: how long the budget lasts at this burn rate: a full one
	// from a clean history, or, once measured, what is left of it.
	BudgetLasts *spec.Duration `json:"budgetLasts,omitempty"`
	Alerts      []PlannedAlert `json:"alerts,omitempty"`
	// Measured says what the figures were computed from: absent, they
	// assume a clean, full history under steady traffic; present, they come
	// from what the source holds (Plan.Measure).
	Measured *Measured `json:"measured,omitempty"`

	burn    *big.Rat
	nominal *spec.Duration // BudgetLasts from a clean, full history
}

// Measured is the state a plan's figures were computed from.
type Measured struct {
	At time.Time `json:"at"`
	// Covered is how much of the SLO window the source held.
	Covered spec.Duration `json:"covered"`
	// Rate is the CUJ's traffic over the last hour, in requests a second.
	Rate float64 `json:"rate"`
	// Baseline is the SLO's error ratio over its window before the
	// simulation, in percent: the share of requests that would be bad anyway.
	Baseline float64 `json:"baselinePercent"`
}

// PlannedAlert says when an alert of the SLO fires in this state (from a
// clean history, under steady traffic), if ever.
type PlannedAlert struct {
	Severity   string         `json:"severity"`
	Pair       string         `json:"pair"`
	Factor     string         `json:"burnRate"`
	FiresAfter *spec.Duration `json:"firesAfter"`
}

// PlanFor returns the plan that puts CUJ cuj of svc in the wanted state.
func PlanFor(svc *spec.Service, cuj string, w Want) (*Plan, error) {
	c := svc.CUJ(cuj)
	if c == nil {
		return nil, fmt.Errorf("service %s has no CUJ %q (it has %s)", svc.Name, cuj, strings.Join(svc.CUJNames(), ", "))
	}
	set := 0
	for _, b := range []bool{w.Availability != nil, w.BurnRate != nil, w.Latency != nil, w.Alert != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("give exactly one state: an availability, a burn rate, a latency target or an alert")
	}
	if w.TTL == 0 {
		w.TTL = spec.DefaultTTL
	}
	p := &Plan{CUJ: cuj}
	var err error
	switch {
	case w.Latency != nil:
		err = p.latency(svc, c, w)
	default:
		err = p.availability(svc, c, w)
	}
	if err != nil {
		return nil, err
	}
	if w.Baseline != nil {
		if err := p.baseline(svc, c, w); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// PlanFrom is PlanFor with the figures measured from st, the SLO engine's
// status of the service just before the plan starts, as 'slolab simulate'
// and the dashboard's panel both explain a plan. An alert state counts the
// CUJ's traffic over st's last hour (w.RequestsPerMinute, the proxy's live
// estimate, only when that hour holds no request); the budget's life and
// the alerts' timings come from Measure. With st nil, or st holding no
// request of the CUJ in its last hour, the figures assume a clean, full
// history and Intended.Measured stays nil.
func PlanFrom(svc *spec.Service, cuj string, w Want, st *Status) (*Plan, error) {
	if st != nil && w.Alert != "" {
		if x := st.find(cuj, Availability); x != nil {
			if n := x.RequestsPerMinute(); n > 0 {
				w.RequestsPerMinute = n
			}
		}
	}
	p, err := PlanFor(svc, cuj, w)
	if err != nil || st == nil {
		return p, err
	}
	if x := st.find(cuj, p.Intended.Kind); x != nil {
		p.Measure(x)
	}
	return p, nil
}

// find returns the status of CUJ cuj's SLO of kind k, or nil.
func (st *Status) find(cuj string, k Kind) *SLOStatus {
	for i := range st.SLOs {
		if st.SLOs[i].CUJ == cuj && st.SLOs[i].Kind == k {
			return &st.SLOs[i]
		}
	}
	return nil
}

// SimulationRule is the name of the rule a plan puts on CUJ cuj itself
// (its baselines for other CUJs are named sim-baseline-CUJ): whoever sees
// the proxy's rules (the dashboard) can tell a running simulation by it.
func SimulationRule(cuj string) string { return ruleName(cuj) }

func ruleName(parts ...string) string {
	n := strings.Join(append([]string{"sim"}, parts...), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-_")
	}
	return n
}

// availability plans failures: Availability, BurnRate or Alert.
func (p *Plan) availability(svc *spec.Service, c *spec.CUJ, w Want) error {
	var share spec.Ratio
	slo := c.Availability
	switch {
	case w.Availability != nil:
		if w.Availability.Cmp(spec.One) > 0 {
			return fmt.Errorf("availability %s is above 100%%", w.Availability)
		}
		share = w.Availability.OneMinus()
	case slo == nil:
		return fmt.Errorf("CUJ %s has no availability SLO: a burn rate or an alert state needs one (or give --availability)", c.Name)
	case w.BurnRate != nil:
		s, ok := w.BurnRate.Mul(slo.Objective.OneMinus())
		if !ok || s.Cmp(spec.One) > 0 {
			return fmt.Errorf("burn rate %s of a %s SLO would fail more than every request (at most %s)",
				w.BurnRate.Decimal(), slo.Objective, maxBurn(slo.Objective))
		}
		share = s
	default:
		a, err := pickAlert(AlertsFor(svc, c), w.Alert)
		if err != nil {
			return err
		}
		s, _ := a.Factor.Mul(slo.Objective.OneMinus())
		share = s
		label := fmt.Sprintf("%s alert (%s/%s ≥ %s)", a.Severity, spec.FormatDuration(a.Long), spec.FormatDuration(a.Short), a.Factor.Decimal())
		if n := w.RequestsPerMinute * uint64(a.Short/time.Minute); n > 0 {
			share = addOne(share, n)
			p.Notes = append(p.Notes, fmt.Sprintf("at about %s requests a minute, one extra failure per %s window keeps every window over the threshold of the %s",
				thousands(w.RequestsPerMinute), spec.FormatDuration(a.Short), label))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("exactly at the threshold of the %s: a window holds its share of failures rounded either way, so the alert may flap; measured traffic lets the plan add one failure per short window", label))
		}
	}
	if share.IsZero() {
		return fmt.Errorf("that state fails no request; nothing to simulate")
	}
	if share.Cmp(spec.MinRate) < 0 {
		return fmt.Errorf("that state fails %s of requests, below the smallest rate a fault rule injects (%s)", share, spec.MinRate)
	}
	p.Rules = append(p.Rules, &spec.FaultRule{
		Name:        ruleName(c.Name),
		Description: fmt.Sprintf("slolab simulate: %s of %s requests fail", percentText(share), c.Name),
		Match:       spec.Selector{CUJ: c.Name},
		Rate:        share,
		Seed:        w.Seed,
		Status:      &spec.StatusAction{Code: 503, Body: "slolab simulate: injected failure\n"},
		TTL:         w.TTL,
	})
	p.Intended = Intended{Kind: Availability, Share: share}
	sentence := fmt.Sprintf("%s %s requests %s", shareText(share), c.Name, verb(share, "fails", "fail"))
	p.lead = sentence
	if slo != nil {
		p.Intended.judge(svc, c, slo.Objective, slo.Window)
		p.window = slo.Window
		sentence += "; " + p.Intended.consequence(slo.Window, "")
	}
	p.Explanation = sentence + "."
	return nil
}

func maxBurn(objective spec.Ratio) string {
	r := new(big.Rat).Inv(ratioRat(objective.OneMinus()))
	return r.FloatString(1)
}

// addOne returns share + 1/n.
func addOne(share spec.Ratio, n uint64) spec.Ratio {
	r := new(big.Rat).Add(ratioRat(share), big.NewRat(1, int64(n)))
	if r.Cmp(big.NewRat(1, 1)) > 0 || !r.Denom().IsUint64() || r.Denom().Uint64() > 1_000_000_000_000 {
		return share
	}
	return spec.NewRatio(r.Num().Uint64(), r.Denom().Uint64())
}

func pickAlert(alerts []spec.BurnRateAlert, which string) (spec.BurnRateAlert, error) {
	var names []string
	for _, a := range alerts {
		pair := spec.FormatDuration(a.Long) + "/" + spec.FormatDuration(a.Short)
		names = append(names, pair)
		if a.Severity == which || pair == which {
			return a, nil
		}
	}
	return spec.BurnRateAlert{}, fmt.Errorf("no %q alert: want page, ticket or one of the window pairs %s", which, strings.Join(names, ", "))
}

// latency plans delays: exactly 1 − Objective of the CUJ's requests end above Threshold.
func (p *Plan) latency(svc *spec.Service, c *spec.CUJ, w Want) error {
	t := *w.Latency
	share := t.Objective.OneMinus()
	if share.Cmp(spec.MinRate) < 0 {
		return fmt.Errorf("%s leaves %s of requests slow, below the smallest rate a fault rule injects (%s)", t, share, spec.MinRate)
	}
	delay := t.Threshold + LatencyMargin(t.Threshold)
	p.Rules = append(p.Rules, &spec.FaultRule{
		Name:        ruleName(c.Name),
		Description: fmt.Sprintf("slolab simulate: %s of %s requests take %s", percentText(share), c.Name, spec.FormatDuration(delay)),
		Match:       spec.Selector{CUJ: c.Name},
		Rate:        share,
		Seed:        w.Seed,
		Delay:       &spec.Delay{Kind: spec.DelayFixed, Fixed: delay},
		TTL:         w.TTL,
	})
	p.Intended = Intended{Kind: Latency, Share: share, Threshold: spec.Duration(t.Threshold)}
	sentence := fmt.Sprintf("%s %s requests %s %s, above %s", shareText(share), c.Name, verb(share, "takes", "take"),
		spec.FormatDuration(delay), spec.FormatDuration(t.Threshold))
	switch slo := c.Latency; {
	case slo == nil:
		sentence += fmt.Sprintf("; %s has no latency SLO to burn", c.Name)
	case delay < slo.Threshold:
		sentence += fmt.Sprintf("; they stay within the latency SLO's %s threshold, so its budget does not burn", spec.FormatDuration(slo.Threshold))
		p.Intended.SLO = fmt.Sprintf("%s under %s", slo.Objective, spec.FormatDuration(slo.Threshold))
		p.Intended.BurnRate = "0"
	default:
		p.Intended.judge(svc, c, slo.Objective, slo.Window)
		p.Intended.SLO = fmt.Sprintf("%s under %s", slo.Objective, spec.FormatDuration(slo.Threshold))
		p.lead, p.window, p.what = sentence, slo.Window, "latency "
		sentence += "; " + p.Intended.consequence(slo.Window, "latency ")
	}
	p.Explanation = sentence + "."
	return nil
}

// judge fills in the burn rate, the budget's life and the alerts.
func (in *Intended) judge(svc *spec.Service, c *spec.CUJ, objective spec.Ratio, w spec.Window) {
	in.SLO = objective.String()
	in.burn = new(big.Rat).Quo(ratioRat(in.Share), ratioRat(objective.OneMinus()))
	in.BurnRate = ratDecimal(in.burn)
	length := nominalLength(w)
	lasts := spec.Duration(roundRat(new(big.Rat).Quo(new(big.Rat).SetInt64(int64(length)), in.burn)))
	in.BudgetLasts, in.nominal = &lasts, &lasts
	for _, a := range AlertsFor(svc, c) {
		pa := PlannedAlert{Severity: a.Severity, Pair: spec.FormatDuration(a.Long) + "/" + spec.FormatDuration(a.Short), Factor: a.Factor.Decimal()}
		if d, ok := DetectionTime(a, objective, in.Share); ok {
			sd := spec.Duration(d)
			pa.FiresAfter = &sd
		}
		in.Alerts = append(in.Alerts, pa)
	}
}

// Measure recomputes the plan's figures — how long the budget lasts, when
// each alert fires — from the state of the SLO it burns, as a source holds
// it (st, judged just before the plan starts): how much of each window the
// history covers, what the windows hold, the CUJ's traffic over the last
// hour. The requests the plan makes bad add to those that are bad anyway
// (the SLO window's error ratio). It reports false, changing nothing, when
// st is not that SLO's or the last hour holds no request to go by.
func (p *Plan) Measure(st *SLOStatus) bool {
	in := &p.Intended
	if in.burn == nil || st.CUJ != p.CUJ || st.Kind != in.Kind {
		return false
	}
	base := ratioOf(st.Events)
	e := new(big.Rat).Add(ratioRat(in.Share), new(big.Rat).Mul(base, ratioRat(in.Share.OneMinus())))
	o, ok := st.Outlook(e)
	if !ok || len(o.FiresAfter) != len(in.Alerts) {
		return false
	}
	in.BudgetLasts = nil
	if o.BudgetLasts != nil {
		d := spec.Duration(*o.BudgetLasts)
		in.BudgetLasts = &d
	}
	for i, f := range o.FiresAfter {
		in.Alerts[i].FiresAfter = nil
		if f != nil {
			d := spec.Duration(*f)
			in.Alerts[i].FiresAfter = &d
		}
	}
	bf, _ := base.Float64()
	in.Measured = &Measured{At: st.at.UTC(), Covered: st.Covered, Rate: o.Rate, Baseline: 100 * bf}
	p.Explanation = p.lead + "; " + in.consequence(p.window, p.what) + "."
	if held := time.Duration(st.Covered); held < st.Period.Duration() {
		p.Notes = append(p.Notes, fmt.Sprintf("the source holds only %s of history: every window longer than that counts only those minutes, so the budget and the alerts react to them alone",
			spanText(held.Round(time.Second))))
	}
	return true
}

// consequence says what the burn means for the budget, and which alert fires first.
func (in *Intended) consequence(w spec.Window, what string) string {
	length := nominalLength(w)
	name := fmt.Sprintf("the %s %sbudget", spec.FormatDuration(length), what)
	if length%spec.Day == 0 {
		name = fmt.Sprintf("the %d-day %sbudget", length/spec.Day, what)
	}
	if w.Calendar != "" {
		name = fmt.Sprintf("a calendar month's %sbudget", what)
	}
	var s string
	switch cmp := in.burn.Cmp(big.NewRat(1, 1)); {
	case cmp == 0:
		s = fmt.Sprintf("at this rate %s lasts exactly %s", name, spanText(length))
	case cmp > 0 && in.BudgetLasts == nil:
		s = fmt.Sprintf("at this rate (burn rate %s) %s does not run out", in.BurnRate, name)
	case cmp > 0 && *in.BudgetLasts == 0:
		s = fmt.Sprintf("at this rate (burn rate %s) %s is spent already", in.BurnRate, name)
	case cmp > 0:
		exact := new(big.Rat).Quo(new(big.Rat).SetInt64(int64(length)), in.burn).IsInt() && *in.BudgetLasts == *in.nominal
		how := "about "
		if exact {
			how = "exactly "
		}
		s = fmt.Sprintf("at this rate (burn rate %s) %s lasts %s%s", in.BurnRate, name, how, spanText(time.Duration(*in.BudgetLasts)))
	default:
		pct := new(big.Rat).Mul(in.burn, big.NewRat(100, 1))
		s = fmt.Sprintf("at this rate (burn rate %s) a window spends %s%% of %s", in.BurnRate, ratDecimal(pct), name)
	}
	var first *PlannedAlert
	for i := range in.Alerts {
		a := &in.Alerts[i]
		if a.FiresAfter != nil && (first == nil || *a.FiresAfter < *first.FiresAfter) {
			first = a
		}
	}
	switch {
	case first != nil && *first.FiresAfter == 0:
		s += fmt.Sprintf(", and the %s alert (%s ≥ %s) fires at once", first.Severity, first.Pair, first.Factor)
	case first != nil:
		s += fmt.Sprintf(", and the %s alert (%s ≥ %s) fires after %s", first.Severity, first.Pair, first.Factor, spanText(time.Duration(*first.FiresAfter)))
	case len(in.Alerts) > 0:
		s += ", and no alert fires"
	}
	return s
}

// nominalLength is a window's length for explanations: a calendar month counts as 30 days.
func nominalLength(w spec.Window) time.Duration {
	if w.Calendar != "" {
		return 30 * spec.Day
	}
	return w.Rolling
}

// spanText writes a duration for people: "30 days", "2d2h", "51.84s";
// beyond a minute it rounds to the second, beyond an hour to the minute.
func spanText(d time.Duration) string {
	if d >= spec.Day && d%spec.Day == 0 {
		n := d / spec.Day
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Millisecond)
	}
	return spec.FormatDuration(d)
}

// shareText writes a share of requests: "1 in 1,000", "1.44% of", "about
// 1.4533% of".
func shareText(r spec.Ratio) string {
	if r.Cmp(spec.One) == 0 {
		return "every one of the"
	}
	if r.Num() == 1 {
		return "1 in " + thousands(r.Den())
	}
	return percentText(r) + " of"
}

// percentText writes a share as an exact percentage, or "about 1.4533%".
func percentText(r spec.Ratio) string {
	if s := r.String(); !strings.Contains(s, "/") {
		return s
	}
	return "about " + new(big.Rat).Mul(ratioRat(r), big.NewRat(100, 1)).FloatString(4) + "%"
}

func verb(r spec.Ratio, one, many string) string {
	if r.Num() == 1 && r.Cmp(spec.One) != 0 {
		return one
	}
	return many
}

// thousands writes n with comma separators: 1,000.
func thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ratDecimal writes r exactly when its decimal expansion ends within six
// places, else rounded to two.
func ratDecimal(r *big.Rat) string {
	for places := 0; places <= 6; places++ {
		s := r.FloatString(places)
		back, ok := new(big.Rat).SetString(s)
		if ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.FloatString(2)
}

// baseline delays every other CUJ's requests, capped below each CUJ's threshold.
func (p *Plan) baseline(svc *spec.Service, target *spec.CUJ, w Want) error {
	b := w.Baseline
	if b.Upper() == 0 && b.Kind != spec.DelayFixed {
		return fmt.Errorf("baseline latency %s has no maximum, so it could push any CUJ past its threshold: give a fixed delay, uniform(a, b) or a percentile table such as \"p50=120ms p99=400ms\"", b)
	}
	for _, c := range svc.CUJs {
		if c == target {
			continue
		}
		d := b
		if c.Latency != nil {
			limit := time.Duration(BaselineShare.FloorMul(uint64(c.Latency.Threshold)))
			if b.Upper() > limit {
				d = capDelay(b, limit)
				p.Notes = append(p.Notes, fmt.Sprintf("%s: baseline capped at %s (%s of its %s threshold), so the baseline alone never makes a %s request slow",
					c.Name, spec.FormatDuration(limit), BaselineShare, spec.FormatDuration(c.Latency.Threshold), c.Name))
			}
		}
		p.Rules = append(p.Rules, &spec.FaultRule{
			Name:        ruleName("baseline", c.Name),
			Description: fmt.Sprintf("slolab simulate: baseline latency %s for %s", d, c.Name),
			Match:       spec.Selector{CUJ: c.Name},
			Rate:        spec.One,
			Seed:        w.Seed,
			Delay:       d,
			TTL:         w.TTL,
		})
	}
	return nil
}

// capDelay returns d with no sample above limit.
func capDelay(d *spec.Delay, limit time.Duration) *spec.Delay {
	out := &spec.Delay{Kind: d.Kind}
	switch d.Kind {
	case spec.DelayFixed:
		out.Fixed = min(d.Fixed, limit)
	case spec.DelayUniform:
		out.Min, out.Max = min(d.Min, limit), min(d.Max, limit)
	case spec.DelayPercentiles:
		for _, pt := range d.Points {
			out.Points = append(out.Points, spec.PercentilePoint{P: pt.P, D: min(pt.D, limit)})
		}
	}
	return out
}
