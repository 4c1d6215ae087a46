package web

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/report"
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
	Error string `json:"error,omitempty"`
	// Source says where the SLO view comes from; Judged is the instant the
	// SLO engine judged (absent without an engine, or before its first
	// status); EngineError why the last judgement failed (the view is then
	// the one before).
	Source      string     `json:"source"`
	Judged      *time.Time `json:"judged,omitempty"`
	EngineError string     `json:"engineError,omitempty"`
	// History says what the engine's source holds, when it is not simply a
	// long measured history: which part is synthetic (the lab's), and
	// whether it is younger than the SLO windows.
	History []string `json:"history"`
	// Windows are the engine's burn-rate windows, in the order of every
	// SLOView.Burn.
	Windows       []string         `json:"windows"`
	TokenRequired bool             `json:"tokenRequired"`
	Links         []Link           `json:"links"`
	States        []string         `json:"states"`
	CUJs          []CUJView        `json:"cujs"`
	Faults        []FaultView      `json:"faults"`
	Simulations   []SimulationView `json:"simulations"`
	Audit         []AuditView      `json:"audit"` // newest first
}

// NoEngine is State.Source when the dashboard has no SLO engine.
const NoEngine = "no SLO source: SLOs and live traffic only"

// CUJView is one row of the CUJ table.
type CUJView struct {
	Name         string      `json:"name"`
	Owner        string      `json:"owner,omitempty"`
	Description  string      `json:"description,omitempty"`
	Routes       []string    `json:"routes"`
	Availability *SLOView    `json:"availability,omitempty"`
	Latency      *SLOView    `json:"latency,omitempty"`
	Alerts       []AlertView `json:"alerts"`
	// Requests, Rate and the percentiles are the proxy's live last minute.
	Requests   uint64        `json:"requests"`
	Rate       float64       `json:"rate"` // per second
	P50        spec.Duration `json:"p50,omitempty"`
	P90        spec.Duration `json:"p90,omitempty"`
	P99        spec.Duration `json:"p99,omitempty"`
	Faults     []string      `json:"faults"`
	Simulation string        `json:"simulation,omitempty"` // the active simulation's id
}

// SLOView is one SLO of a CUJ as the SLO engine judged it.
type SLOView struct {
	Objective spec.Ratio    `json:"objective"`
	Window    string        `json:"window"`
	Threshold spec.Duration `json:"threshold,omitempty"`
	// Judged is false without an engine status: the fields below are then empty.
	Judged bool `json:"judged"`
	// SLI is the share of good requests over the SLO window in percent;
	// absent without requests. Met compares it with the objective exactly.
	SLI    *float64   `json:"sli"`
	Met    bool       `json:"met"`
	Events slo.Events `json:"events"`
	// BudgetRemaining is the share of the window's error budget left, in
	// percent (negative when overspent); absent without requests.
	BudgetRemaining *float64 `json:"budgetRemaining"`
	Exhausted       bool     `json:"exhausted"`
	// ExhaustedIn is how long the budget left lasts at the last hour's burn
	// rate; absent when nothing burns.
	ExhaustedIn *spec.Duration `json:"exhaustedIn,omitempty"`
	Burn        []BurnView     `json:"burn"`
}

// BurnView is the burn rate over one of the engine's windows: the bad share
// over the share the SLO allows.
type BurnView struct {
	Window string   `json:"window"`
	Rate   *float64 `json:"rate"` // absent without requests
	Total  uint64   `json:"total"`
	Bad    uint64   `json:"bad"`
	// TooFew: the window holds fewer bad requests than an alert needs and
	// too few requests to expect that many at the objective, so its rate
	// is noise; no alert fires on it (slo.WindowState.TooFewToJudge).
	TooFew bool `json:"tooFew,omitempty"`
	// Covered is how much of the window the source holds, when less than
	// all of it ("3m" of a 1d window): its rate counts only that.
	Covered string `json:"covered,omitempty"`
}

// AlertView is one multiwindow burn-rate alert of an SLO.
type AlertView struct {
	SLO      string `json:"slo"` // availability or latency
	Severity string `json:"severity"`
	Pair     string `json:"pair"`     // "1h/5m"
	Factor   string `json:"burnRate"` // "14.4"
	// State: "firing"; "held" when both windows burn fast enough but the
	// long one holds fewer than MinBad bad requests (the low-traffic guard);
	// "ok"; or "unknown" without an engine status.
	State     string   `json:"state"`
	LongBurn  *float64 `json:"longBurnRate,omitempty"`
	ShortBurn *float64 `json:"shortBurnRate,omitempty"`
	LongBad   uint64   `json:"longBad"`
	MinBad    int64    `json:"minBad"`
}

// FaultView is an active fault with its lease.
type FaultView struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	CUJ         string     `json:"cuj"`
	TCP         string     `json:"tcp,omitempty"` // the TCP listener a TCP rule degrades
	Actions     string     `json:"actions"`
	Rate        spec.Ratio `json:"rate"`
	State       string     `json:"state"`
	Matched     uint64     `json:"matched"`
	Injected    uint64     `json:"injected"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	// ExpiresIn is the lease left, in seconds, at the time of State.Now.
	ExpiresIn float64 `json:"expiresIn"`
}

// AuditView is one audit entry, or a run of lease renewals of one rule
// folded into one (Count of them, the last at Time).
type AuditView struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	Fault  string    `json:"fault,omitempty"`
	Count  int       `json:"count,omitempty"`
}

// auditReadFactor: the dashboard reads this many audit entries per line it
// shows, so that folded renewals leave room for other changes.
const auditReadFactor = 10

func buildState(cfg Config, s *snapshot, sims []SimulationView) State {
	st := State{
		Service: cfg.Service.Name, Now: cfg.Now().UTC(), Polled: s.at.UTC(), Source: NoEngine, Windows: []string{},
		TokenRequired: cfg.Token != "", Links: orEmpty(cfg.Links), States: States,
		CUJs: []CUJView{}, Faults: []FaultView{}, Simulations: orEmpty(sims), Audit: []AuditView{},
	}
	if s.err != nil {
		st.Error = s.err.Error()
	}
	if cfg.Engine != nil {
		st.Source = cfg.Engine.Name
	}
	if s.judgement.err != nil {
		st.EngineError = s.judgement.err.Error()
	}
	st.History = []string{}
	judged := map[slo.Key]*slo.SLOStatus{}
	if js := s.status; js != nil {
		at := js.At
		st.Judged = &at
		var longest time.Duration
		for i := range js.SLOs {
			longest = max(longest, js.SLOs[i].Period.Duration())
		}
		st.History = orEmpty(report.HistoryNotes(js.Span, js.At, longest))
		for i := range js.SLOs {
			x := &js.SLOs[i]
			judged[x.Key()] = x
			if len(st.Windows) == 0 {
				for _, w := range x.Windows {
					st.Windows = append(st.Windows, w.Window.String())
				}
			}
		}
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
		st.CUJs = append(st.CUJs, cujView(cfg.Service, sc, c, judged, active[c.Name]))
	}
	for _, f := range s.faults {
		if f.State != "active" && f.State != "pending" {
			continue
		}
		st.Faults = append(st.Faults, FaultView{
			Name: f.Rule.Name, Description: f.Rule.Description, CUJ: f.Rule.Match.CUJ, TCP: f.Rule.Match.TCP, Actions: f.Rule.Actions(),
			Rate: f.Rule.Rate, State: f.State, Matched: f.Matched, Injected: f.Injected,
			ExpiresAt: f.ExpiresAt.UTC(), ExpiresIn: max(f.ExpiresAt.Sub(st.Now).Seconds(), 0),
		})
	}
	st.Audit = foldAudit(s.audit, cfg.AuditEntries)
	return st
}

// foldAudit turns audit entries (oldest first) into at most n lines, newest
// first, each run of renewals of one rule by one client folded into one: a
// simulation renews its lease every few seconds, and those lines would
// bury every change a person made.
func foldAudit(entries []admin.AuditEntry, n int) []AuditView {
	out := []AuditView{}
	for _, e := range slices.Backward(entries) {
		who := e.Identity
		if e.Actor != "" {
			who = e.Actor + " (" + e.Identity + ")"
		}
		if last := len(out) - 1; e.Action == "renew" && last >= 0 && out[last].Action == "renew" && out[last].Fault == e.Fault && out[last].Who == who {
			out[last].Count++
			continue
		}
		if len(out) == n {
			break
		}
		v := AuditView{Time: e.Time.UTC(), Who: who, Action: e.Action, Fault: e.Fault}
		if e.Action == "renew" {
			v.Count = 1
		}
		out = append(out, v)
	}
	return out
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

func cujView(svc *spec.Service, c *spec.CUJ, live admin.CUJStatus, judged map[slo.Key]*slo.SLOStatus, sim string) CUJView {
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
	if a := c.Availability; a != nil {
		x := judged[slo.Key{CUJ: c.Name, Kind: slo.Availability}]
		v.Availability = sloView(a.Objective, a.Window, 0, x)
		v.Alerts = append(v.Alerts, alertViews(svc, c, slo.Availability, x)...)
	}
	if l := c.Latency; l != nil {
		x := judged[slo.Key{CUJ: c.Name, Kind: slo.Latency}]
		v.Latency = sloView(l.Objective, l.Window, l.Threshold, x)
		v.Alerts = append(v.Alerts, alertViews(svc, c, slo.Latency, x)...)
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

// sloView is an SLO as declared and, with a status x, as judged.
func sloView(objective spec.Ratio, win spec.Window, threshold time.Duration, x *slo.SLOStatus) *SLOView {
	v := &SLOView{Objective: objective, Window: win.String(), Threshold: spec.Duration(threshold), Burn: []BurnView{}}
	if x == nil {
		return v
	}
	v.Judged, v.SLI, v.Met, v.Events = true, x.SLIPercent, x.Met, x.Events
	if x.Events.Total > 0 {
		rem := x.Budget.RemainingPercent
		v.BudgetRemaining = &rem
	}
	v.Exhausted, v.ExhaustedIn = x.Budget.Exhausted, x.Budget.TimeToExhaustion
	for _, w := range x.Windows {
		b := BurnView{
			Window: w.Window.String(), Rate: w.BurnRate, Total: w.Events.Total, Bad: w.Events.Bad,
			TooFew: w.TooFewToJudge && w.BurnRate != nil,
		}
		if w.Covered < w.Window {
			b.Covered = report.Span(time.Duration(w.Covered))
		}
		v.Burn = append(v.Burn, b)
	}
	return v
}

// alertViews lists an SLO's alerts: as the engine judged them, or from the
// shared table as unknown when there is no status.
func alertViews(svc *spec.Service, c *spec.CUJ, kind slo.Kind, x *slo.SLOStatus) []AlertView {
	var out []AlertView
	if x == nil {
		for _, a := range slo.AlertsFor(svc, c) {
			out = append(out, AlertView{
				SLO: string(kind), Severity: a.Severity, Pair: spec.FormatDuration(a.Long) + "/" + spec.FormatDuration(a.Short),
				Factor: a.Factor.Decimal(), State: "unknown", MinBad: slo.MinBadEventsFor(svc, c),
			})
		}
		return out
	}
	for _, a := range x.Alerts {
		state := "ok"
		switch {
		case a.Firing:
			state = "firing"
		case a.Guarded:
			state = "held"
		}
		out = append(out, AlertView{
			SLO: string(kind), Severity: a.Severity, Pair: a.Pair(), Factor: a.Factor, State: state,
			LongBurn: a.LongBurn, ShortBurn: a.ShortBurn, LongBad: a.LongBad, MinBad: x.MinBadEvents,
		})
	}
	return out
}

// simulation is a simulation started from the dashboard, or one the
// dashboard found running on the proxy ('slolab simulate', another
// dashboard): a rule named as slo.PlanFor names the rule on a CUJ.
type simulation struct {
	ID        string
	Request   SimulationRequest
	Plan      *slo.Plan
	Started   time.Time
	Rules     []string
	Stopped   time.Time
	StoppedBy string
	seen      bool         // its rules were seen on the proxy
	last      fault.Status // the CUJ rule as last seen
	// elsewhere: started outside this dashboard, which stops it only by
	// its lease (the program that started it would put it back).
	elsewhere bool
}

// SimulationView is a simulation: what it intends and what it realised.
type SimulationView struct {
	ID          string     `json:"id"`
	CUJ         string     `json:"cuj"`
	State       string     `json:"state"`
	Value       string     `json:"value,omitempty"`
	Explanation string     `json:"explanation"`
	Notes       []string   `json:"notes"`
	Kind        slo.Kind   `json:"kind"`
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
	// StartedBy is "dashboard", or "elsewhere" for a simulation found
	// running on the proxy (slolab simulate), which only whoever started
	// it stops.
	StartedBy string `json:"startedBy"`
}

func (s *simulation) view() SimulationView {
	v := SimulationView{
		ID: s.ID, CUJ: s.Plan.CUJ, State: s.Request.State, Value: s.Request.Value, Explanation: s.Plan.Explanation, Notes: orEmpty(s.Plan.Notes),
		Kind: s.Plan.Intended.Kind, Intended: s.Plan.Intended.Share, IntendedPercent: 100 * s.Plan.Intended.Share.Float(),
		Matched: s.last.Matched, Injected: s.last.Injected, Started: s.Started.UTC(), Rules: s.Rules,
		Active: s.Stopped.IsZero(), StoppedBy: s.StoppedBy, StartedBy: "dashboard",
	}
	if s.elsewhere {
		v.StartedBy = "elsewhere"
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

// track updates the simulations from the proxy's fault list: counts, the
// end of those whose rules are gone (stopped elsewhere, or lapsed), and
// the simulations started elsewhere that it has not seen yet.
func (d *Dashboard) track(faults []fault.Status) {
	byName := map[string]fault.Status{}
	for _, f := range faults {
		byName[f.Rule.Name] = f
	}
	now := d.cfg.Now()
	d.adopt(faults)
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

// adopt lists as simulations the active rules that a simulation put on a
// CUJ and no simulation of this dashboard holds: 'slolab simulate' from a
// terminal. What they intend is the rule's own rate; what they realise, its
// injected of matched.
func (d *Dashboard) adopt(faults []fault.Status) {
	held := map[string]bool{}
	for _, s := range d.sims {
		if s.Stopped.IsZero() {
			for _, n := range s.Rules {
				held[n] = true
			}
		}
	}
	for _, f := range faults {
		r := f.Rule
		cuj := d.cfg.Service.CUJ(r.Match.CUJ)
		if held[r.Name] || cuj == nil || r.Name != slo.SimulationRule(cuj.Name) || f.State != fault.StateActive && f.State != fault.StatePending {
			continue
		}
		kind := slo.Availability
		if !r.Terminal() {
			kind = slo.Latency
		}
		explanation := strings.TrimPrefix(r.Description, "slolab simulate: ")
		d.seq++
		d.sims = append(d.sims, &simulation{
			ID: fmt.Sprintf("sim%d", d.seq), Request: SimulationRequest{CUJ: cuj.Name, State: "started elsewhere"},
			Plan:    &slo.Plan{CUJ: cuj.Name, Rules: []*spec.FaultRule{r}, Intended: slo.Intended{Kind: kind, Share: r.Rate}, Explanation: explanation},
			Started: f.Created, Rules: []string{r.Name}, elsewhere: true,
		})
		held[r.Name] = true
	}
	if len(d.sims) > maxSimulations {
		d.sims = slices.Delete(d.sims, 0, len(d.sims)-maxSimulations)
	}
}

// maxSimulations is how many simulations, running or ended, the dashboard lists.
const maxSimulations = 20

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
func (d *Dashboard) activeSims(faults []fault.Status) map[string]*slo.Intended {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track(faults)
	out := map[string]*slo.Intended{}
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
