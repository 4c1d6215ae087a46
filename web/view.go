package web

import (
	"math"
	"slices"
	"strconv"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// State is the body of GET /api/state: everything the dashboard shows but
// the charts.
type State struct {
	Service string    `json:"service"`
	Now     time.Time `json:"now"`
	Polled  time.Time `json:"polled"`
	// Error says why the last read of the proxy failed; the rest is then
	// what the read before it saw.
	Error         string           `json:"error,omitempty"`
	Source        string           `json:"source"`
	TokenRequired bool             `json:"tokenRequired"`
	Links         []Link           `json:"links"`
	States        []string         `json:"states"`
	CUJs          []CUJView        `json:"cujs"`
	Faults        []FaultView      `json:"faults"`
	Simulations   []SimulationView `json:"simulations"`
	Audit         []AuditView      `json:"audit"` // newest first
}

// Source describes where the dashboard's SLIs come from until the SLO engine
// judges them over their whole windows.
const Source = "the proxy's live windows (1m, 5m, 1h): SLIs and budgets over the last hour"

// CUJView is one row of the CUJ table.
type CUJView struct {
	Name         string        `json:"name"`
	Owner        string        `json:"owner,omitempty"`
	Description  string        `json:"description,omitempty"`
	Routes       []string      `json:"routes"`
	Availability *SLOView      `json:"availability,omitempty"`
	Latency      *SLOView      `json:"latency,omitempty"`
	Alerts       []AlertView   `json:"alerts"`
	Requests     uint64        `json:"requests"` // over the last minute
	Rate         float64       `json:"rate"`     // per second over the last minute
	P50          spec.Duration `json:"p50,omitempty"`
	P90          spec.Duration `json:"p90,omitempty"`
	P99          spec.Duration `json:"p99,omitempty"`
	Faults       []string      `json:"faults"`
	Simulation   string        `json:"simulation,omitempty"` // the active simulation's id
}

// SLOView is one SLO of a CUJ as the live windows show it.
type SLOView struct {
	Objective spec.Ratio    `json:"objective"`
	Window    string        `json:"window"`
	Threshold spec.Duration `json:"threshold,omitempty"`
	// SLI is the share of good requests in percent over SLIWindow; absent
	// without requests.
	SLI       *float64 `json:"sli"`
	SLIWindow string   `json:"sliWindow"`
	// BudgetRemaining is the share of the error budget left over SLIWindow's
	// requests, in percent (negative when overspent).
	BudgetRemaining *float64   `json:"budgetRemaining"`
	Burn            []BurnView `json:"burn"`
}

// BurnView is the burn rate over one window: the bad share over the share
// the SLO allows.
type BurnView struct {
	Window string   `json:"window"`
	Rate   *float64 `json:"rate"`
	Total  uint64   `json:"total"`
	Bad    uint64   `json:"bad"`
}

// AlertView is one multiwindow burn-rate alert of an SLO.
type AlertView struct {
	SLO      string `json:"slo"` // availability or latency
	Severity string `json:"severity"`
	Pair     string `json:"pair"`     // "1h/5m"
	Factor   string `json:"burnRate"` // "14.4"
	// State: "firing", "ok", or "unknown" when a window is longer than the
	// live windows (the SLO engine judges those).
	State string `json:"state"`
}

// FaultView is an active fault with its lease.
type FaultView struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	CUJ         string     `json:"cuj"`
	Actions     string     `json:"actions"`
	Rate        spec.Ratio `json:"rate"`
	State       string     `json:"state"`
	Matched     uint64     `json:"matched"`
	Injected    uint64     `json:"injected"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	// ExpiresIn is the lease left, in seconds, at the time of State.Now.
	ExpiresIn float64 `json:"expiresIn"`
}

// AuditView is one audit entry.
type AuditView struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Fault  string    `json:"fault,omitempty"`
}

func buildState(cfg Config, s *snapshot, sims []SimulationView) State {
	st := State{
		Service: cfg.Service.Name, Now: cfg.Now().UTC(), Polled: s.at.UTC(), Source: Source,
		TokenRequired: cfg.Token != "", Links: orEmpty(cfg.Links), States: States,
		CUJs: []CUJView{}, Faults: []FaultView{}, Simulations: orEmpty(sims), Audit: []AuditView{},
	}
	if s.err != nil {
		st.Error = s.err.Error()
	}
	active := map[string]string{}
	for _, sim := range sims {
		if sim.Active {
			active[sim.CUJ] = sim.ID
		}
	}
	for _, c := range s.cujs.CUJs {
		sc := cfg.Service.CUJ(c.Name)
		if sc == nil {
			continue // _other, and CUJs of a spec the dashboard was not given
		}
		st.CUJs = append(st.CUJs, cujView(cfg.Service, sc, c, active[c.Name]))
	}
	for _, f := range s.faults {
		if f.State != "active" && f.State != "pending" {
			continue
		}
		st.Faults = append(st.Faults, FaultView{
			Name: f.Rule.Name, Description: f.Rule.Description, CUJ: f.Rule.Match.CUJ, Actions: f.Rule.Actions(),
			Rate: f.Rule.Rate, State: f.State, Matched: f.Matched, Injected: f.Injected,
			ExpiresAt: f.ExpiresAt.UTC(), ExpiresIn: max(f.ExpiresAt.Sub(st.Now).Seconds(), 0),
		})
	}
	for _, e := range slices.Backward(s.audit) {
		who := e.Identity
		if e.Actor != "" {
			who = e.Actor + " (" + e.Identity + ")"
		}
		st.Audit = append(st.Audit, AuditView{Time: e.Time.UTC(), Who: who, Action: e.Action, Fault: e.Fault})
	}
	return st
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func window(ws []admin.WindowSLI, d time.Duration) (admin.WindowSLI, bool) {
	for _, w := range ws {
		if time.Duration(w.Window) == d {
			return w, true
		}
	}
	return admin.WindowSLI{}, false
}

// longest is the live window SLIs and budgets are read over.
func longest(ws []admin.WindowSLI) admin.WindowSLI {
	var out admin.WindowSLI
	for _, w := range ws {
		if w.Window > out.Window {
			out = w
		}
	}
	return out
}

func cujView(svc *spec.Service, c *spec.CUJ, live admin.CUJStatus, sim string) CUJView {
	v := CUJView{
		Name: c.Name, Owner: c.Owner, Description: c.Description, Routes: orEmpty(live.Routes),
		Alerts: []AlertView{}, Faults: []string{}, Simulation: sim,
	}
	if m, ok := window(live.Windows, time.Minute); ok {
		v.Requests, v.P50, v.P90, v.P99 = m.Total, roundLatency(m.P50), roundLatency(m.P90), roundLatency(m.P99)
		if m.Span > 0 {
			v.Rate = float64(m.Total) / time.Duration(m.Span).Seconds()
		}
	}
	for _, f := range live.Faults {
		if f.State == "active" || f.State == "pending" {
			v.Faults = append(v.Faults, f.Name)
		}
	}
	alerts := slo.AlertsFor(svc, c)
	minBad := slo.MinBadEventsFor(svc, c)
	if a := c.Availability; a != nil {
		v.Availability = sloView(a.Objective, a.Window, 0, live.Windows, badOf)
		v.Alerts = append(v.Alerts, alertViews("availability", a.Objective, alerts, minBad, live.Windows, badOf)...)
	}
	if l := c.Latency; l != nil {
		v.Latency = sloView(l.Objective, l.Window, l.Threshold, live.Windows, slowOf)
		v.Alerts = append(v.Alerts, alertViews("latency", l.Objective, alerts, minBad, live.Windows, slowOf)...)
	}
	return v
}

// roundLatency rounds an estimated percentile for display: to 0.1ms below
// 10ms, else to the millisecond (the histogram interpolates anyway).
func roundLatency(d spec.Duration) spec.Duration {
	if time.Duration(d) < 10*time.Millisecond {
		return spec.Duration(time.Duration(d).Round(100 * time.Microsecond))
	}
	return spec.Duration(time.Duration(d).Round(time.Millisecond))
}

func badOf(w admin.WindowSLI) uint64  { return w.Bad }
func slowOf(w admin.WindowSLI) uint64 { return w.Slow }

func sloView(objective spec.Ratio, win spec.Window, threshold time.Duration, ws []admin.WindowSLI, bad func(admin.WindowSLI) uint64) *SLOView {
	v := &SLOView{Objective: objective, Window: win.String(), Threshold: spec.Duration(threshold), Burn: []BurnView{}}
	long := longest(ws)
	v.SLIWindow = long.Window.String()
	if long.Span < long.Window {
		v.SLIWindow = "last " + time.Duration(long.Span).Round(time.Second).String()
	}
	if long.Total > 0 {
		sli := 100 * float64(long.Total-bad(long)) / float64(long.Total)
		v.SLI = &sli
		allowed := objective.OneMinus().Float() * float64(long.Total)
		rem := 100 * (1 - float64(bad(long))/allowed)
		v.BudgetRemaining = &rem
	}
	for _, w := range ws {
		b := BurnView{Window: w.Window.String(), Total: w.Total, Bad: bad(w)}
		b.Rate = burnRate(b.Bad, b.Total, objective)
		v.Burn = append(v.Burn, b)
	}
	return v
}

func burnRate(bad, total uint64, objective spec.Ratio) *float64 {
	if total == 0 {
		return nil
	}
	r := float64(bad) / float64(total) / objective.OneMinus().Float()
	return &r
}

// alertViews judges the alerts whose two windows are live windows: both
// burn at least the factor, with at least minBad bad requests in the long
// window. The comparison is exact.
func alertViews(kind string, objective spec.Ratio, alerts []spec.BurnRateAlert, minBad int64, ws []admin.WindowSLI, bad func(admin.WindowSLI) uint64) []AlertView {
	var out []AlertView
	budget := objective.OneMinus()
	for _, a := range alerts {
		v := AlertView{SLO: kind, Severity: a.Severity, Pair: spec.FormatDuration(a.Long) + "/" + spec.FormatDuration(a.Short), Factor: a.Factor.Decimal(), State: "unknown"}
		long, okL := window(ws, a.Long)
		short, okS := window(ws, a.Short)
		if okL && okS {
			v.State = "ok"
			limit, ok := a.Factor.Mul(budget)
			if ok && long.Total > 0 && short.Total > 0 && bad(long) >= uint64(max(minBad, 0)) &&
				spec.AtLeast(bad(long), long.Total, limit) && spec.AtLeast(bad(short), short.Total, limit) {
				v.State = "firing"
			}
		}
		out = append(out, v)
	}
	return out
}

// simulation is a simulation started from the dashboard.
type simulation struct {
	ID        string
	Request   SimulationRequest
	Plan      *Plan
	Started   time.Time
	Rules     []string
	Stopped   time.Time
	StoppedBy string
	seen      bool         // its rules were seen on the proxy
	last      fault.Status // the CUJ rule as last seen
}

// SimulationView is a simulation: what it intends and what it realised.
type SimulationView struct {
	ID          string     `json:"id"`
	CUJ         string     `json:"cuj"`
	State       string     `json:"state"`
	Value       string     `json:"value,omitempty"`
	Explanation string     `json:"explanation"`
	Kind        string     `json:"kind"`
	Intended    spec.Ratio `json:"intended"` // share of the CUJ's requests made bad
	// IntendedPercent and RealisedPercent are Intended and Injected/Matched
	// in percent, for display.
	IntendedPercent float64    `json:"intendedPercent"`
	Matched         uint64     `json:"matched"`
	Injected        uint64     `json:"injected"`
	RealisedPercent *float64   `json:"realisedPercent"`
	Started         time.Time  `json:"started"`
	Stopped         *time.Time `json:"stopped,omitempty"`
	StoppedBy       string     `json:"stoppedBy,omitempty"`
	Active          bool       `json:"active"`
	Rules           []string   `json:"rules"`
}

func (s *simulation) view() SimulationView {
	v := SimulationView{
		ID: s.ID, CUJ: s.Plan.CUJ, State: s.Request.State, Value: s.Request.Value, Explanation: s.Plan.Explanation,
		Kind: s.Plan.Intended.Kind, Intended: s.Plan.Intended.Share, IntendedPercent: 100 * s.Plan.Intended.Share.Float(),
		Matched: s.last.Matched, Injected: s.last.Injected, Started: s.Started.UTC(), Rules: s.Rules,
		Active: s.Stopped.IsZero(), StoppedBy: s.StoppedBy,
	}
	if !s.Stopped.IsZero() {
		t := s.Stopped.UTC()
		v.Stopped = &t
	}
	if v.Matched > 0 {
		r := 100 * float64(v.Injected) / float64(v.Matched)
		v.RealisedPercent = &r
	}
	return v
}

// track updates the simulations from the proxy's fault list: counts, and
// the end of those whose rules are gone (stopped elsewhere, or lapsed).
func (d *Dashboard) track(faults []fault.Status) {
	byName := map[string]fault.Status{}
	for _, f := range faults {
		byName[f.Rule.Name] = f
	}
	now := d.cfg.Now()
	for _, s := range d.sims {
		if !s.Stopped.IsZero() {
			continue
		}
		live := false
		for i, n := range s.Rules {
			f, ok := byName[n]
			if ok && i == 0 {
				s.last = f
			}
			if ok && (f.State == "active" || f.State == "pending") {
				live = true
			}
		}
		switch {
		case live:
			s.seen = true
		case s.seen:
			s.Stopped, s.StoppedBy = now, "its lease ended or its rules were removed"
		}
	}
}

func (d *Dashboard) simulations(faults []fault.Status) []SimulationView {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track(faults)
	out := make([]SimulationView, 0, len(d.sims))
	for _, s := range slices.Backward(d.sims) {
		out = append(out, s.view())
	}
	return out
}

// activeSims returns the active simulation of each CUJ.
func (d *Dashboard) activeSims(faults []fault.Status) map[string]*Intended {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track(faults)
	out := map[string]*Intended{}
	for _, s := range d.sims {
		if s.Stopped.IsZero() {
			out[s.Plan.CUJ] = &s.Plan.Intended
		}
	}
	return out
}

// num is a chart value: NaN (no data) is written as null.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', 6, 64), nil
}

var nan = num(math.NaN())
