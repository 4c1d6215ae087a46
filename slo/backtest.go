package slo

import (
	"sort"
	"time"

	"slolab.dev/slolab/spec"
)

// Episode is one stretch of time during which an alert fired.
type Episode struct {
	CUJ      string        `json:"cuj"`
	Kind     Kind          `json:"kind"`
	Severity string        `json:"severity"`
	Long     spec.Duration `json:"long"`
	Short    spec.Duration `json:"short"`
	Factor   string        `json:"burnRate"`
	Fired    time.Time     `json:"fired"`
	// Resolved is when the alert stopped firing; nil if it still fired at
	// the end of the replay.
	Resolved *time.Time `json:"resolved"`
	// PeakBurn is the highest long-window burn rate seen while it fired.
	PeakBurn float64 `json:"peakBurnRate"`
}

// Pair names the windows: "1h/5m".
func (e *Episode) Pair() string {
	return spec.FormatDuration(time.Duration(e.Long)) + "/" + spec.FormatDuration(time.Duration(e.Short))
}

// Duration returns how long the alert fired, up to end when unresolved.
func (e *Episode) Duration(end time.Time) time.Duration {
	if e.Resolved != nil {
		return e.Resolved.Sub(e.Fired)
	}
	return end.Sub(e.Fired)
}

// Backtest is the replay of stored history through the alert rules.
type Backtest struct {
	Service string        `json:"service"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Step    spec.Duration `json:"step"`
	// Span is what the source held: since when, and which part of it is
	// synthetic (the lab's generated history).
	Span     Span      `json:"span,omitzero"`
	Episodes []Episode `json:"episodes"`
	// Summary counts episodes and firing time per SLO and severity.
	Summary []BacktestSummary `json:"summary"`
}

// BacktestSummary is what one SLO's alerts of one severity did.
type BacktestSummary struct {
	CUJ      string        `json:"cuj"`
	Kind     Kind          `json:"kind"`
	Severity string        `json:"severity"`
	Episodes int           `json:"episodes"`
	Firing   spec.Duration `json:"firing"`
}

// Replay evaluates every alert of svc at each step in [from, to] on h, as
// status would have at those instants, and lists when each alert fired and
// resolved. The history must start a long window before from for the first
// evaluations to see full windows; missing history counts as no events.
func Replay(svc *spec.Service, h *History, from, to time.Time, step time.Duration) *Backtest {
	bt := &Backtest{Service: svc.Name, From: from.UTC(), To: to.UTC(), Step: spec.Duration(step), Span: h.span, Episodes: []Episode{}}
	slos := SLOs(svc)
	type track struct {
		slo   *SLO
		alert spec.BurnRateAlert
		open  *Episode
	}
	var tracks []*track
	for i := range slos {
		for _, a := range slos[i].Alerts {
			tracks = append(tracks, &track{slo: &slos[i], alert: a})
		}
	}
	closeEp := func(tr *track, at *time.Time) {
		ep := *tr.open
		ep.Resolved = at
		bt.Episodes = append(bt.Episodes, ep)
		tr.open = nil
	}
	floats := make([]float64, 2)
	for at := from; !at.After(to); at = at.Add(step) {
		for _, tr := range tracks {
			s := tr.slo
			long := h.Between(s.Key, Last(tr.alert.Long, at))
			short := h.Between(s.Key, Last(tr.alert.Short, at))
			st := judgeAlert(tr.alert, long, short, s.Objective, s.MinBadEvents, floats)
			switch {
			case st.Firing && tr.open == nil:
				tr.open = &Episode{
					CUJ: s.CUJ, Kind: s.Kind, Severity: st.Severity, Long: st.Long, Short: st.Short, Factor: tr.alert.Factor.Decimal(),
					Fired: at.UTC(), PeakBurn: *st.LongBurn,
				}
			case st.Firing:
				tr.open.PeakBurn = max(tr.open.PeakBurn, *st.LongBurn)
			case tr.open != nil:
				t := at.UTC()
				closeEp(tr, &t)
			}
		}
	}
	for _, tr := range tracks {
		if tr.open != nil {
			closeEp(tr, nil)
		}
	}
	sort.SliceStable(bt.Episodes, func(i, j int) bool { return bt.Episodes[i].Fired.Before(bt.Episodes[j].Fired) })
	bt.Summary = summarise(slos, bt.Episodes, bt.To)
	return bt
}

func summarise(slos []SLO, eps []Episode, end time.Time) []BacktestSummary {
	var out []BacktestSummary
	for _, s := range slos {
		for _, sev := range []string{"page", "ticket"} {
			sum := BacktestSummary{CUJ: s.CUJ, Kind: s.Kind, Severity: sev}
			for i := range eps {
				if eps[i].CUJ == s.CUJ && eps[i].Kind == s.Kind && eps[i].Severity == sev {
					sum.Episodes++
					sum.Firing += spec.Duration(eps[i].Duration(end))
				}
			}
			out = append(out, sum)
		}
	}
	return out
}

// Transition is an alert starting or stopping to fire between two statuses.
type Transition struct {
	Key    Key        `json:"slo"`
	Owner  string     `json:"owner"`
	Alert  AlertState `json:"alert"`
	Firing bool       `json:"firing"` // false: resolved
	At     time.Time  `json:"at"`
	Since  time.Time  `json:"since"` // when it started firing (for resolutions: the matching fire)
}

// AlertID identifies an alert of an SLO across evaluations.
func AlertID(k Key, a *AlertState) string {
	return k.String() + "/" + a.Severity + "/" + a.Pair() + "/" + a.Factor
}

// Tracker turns successive statuses into fire and resolve transitions.
type Tracker struct {
	firing map[string]Transition // by AlertID: the fire transition
}

// NewTracker returns a tracker that has seen nothing fire.
func NewTracker() *Tracker { return &Tracker{firing: map[string]Transition{}} }

// Observe returns the alerts that started or stopped firing since the last
// status it saw.
func (t *Tracker) Observe(st *Status) []Transition {
	var out []Transition
	current := map[string]AlertState{}
	for i := range st.SLOs {
		s := &st.SLOs[i]
		for _, a := range s.Alerts {
			id := AlertID(s.Key(), &a)
			current[id] = a
			if !a.Firing {
				continue
			}
			if _, ok := t.firing[id]; ok {
				continue
			}
			tr := Transition{Key: s.Key(), Owner: s.Owner, Alert: a, Firing: true, At: st.At, Since: st.At}
			t.firing[id] = tr
			out = append(out, tr)
		}
	}
	ids := make([]string, 0, len(t.firing))
	for id := range t.firing {
		if a, ok := current[id]; !ok || !a.Firing {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		tr := t.firing[id]
		delete(t.firing, id)
		tr.Firing, tr.At = false, st.At
		if a, ok := current[id]; ok {
			tr.Alert = a // the burn rates it resolved at
		}
		out = append(out, tr)
	}
	return out
}

// Firing returns the fire transitions of the alerts firing now, for
// receivers that want firing alerts repeated (Alertmanager).
func (t *Tracker) Firing() []Transition {
	ids := make([]string, 0, len(t.firing))
	for id := range t.firing {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Transition, len(ids))
	for i, id := range ids {
		out[i] = t.firing[id]
	}
	return out
}
