package admin

import (
	"net/http"
	"slices"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// LiveWindows are the windows GET /api/v1/cujs reports.
var LiveWindows = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// CUJsResponse is the body of GET /api/v1/cujs.
type CUJsResponse struct {
	Service string      `json:"service"`
	Now     time.Time   `json:"now"`
	CUJs    []CUJStatus `json:"cujs"`
}

// CUJStatus is one CUJ's declaration, live SLIs and the faults touching it.
type CUJStatus struct {
	Name         string          `json:"name"`
	Owner        string          `json:"owner,omitempty"`
	Description  string          `json:"description,omitempty"`
	Routes       []string        `json:"routes"`
	Availability *AvailabilityOf `json:"availability,omitempty"`
	Latency      *LatencyOf      `json:"latency,omitempty"`
	Windows      []WindowSLI     `json:"windows"`
	Groups       []GroupSLI      `json:"groups,omitempty"`
	Revisions    []RevisionSLI   `json:"revisions,omitempty"`
	Faults       []FaultRef      `json:"faults"`
}

// AvailabilityOf is an availability SLO as declared.
type AvailabilityOf struct {
	Objective spec.Ratio `json:"objective"`
	Window    string     `json:"window"`
}

// LatencyOf is a latency SLO as declared.
type LatencyOf struct {
	Threshold spec.Duration `json:"threshold"`
	Objective spec.Ratio    `json:"objective"`
	Window    string        `json:"window"`
}

// WindowSLI is what a CUJ saw over a recent window.
type WindowSLI struct {
	Window spec.Duration `json:"window"`
	Span   spec.Duration `json:"span"` // the time actually covered
	Total  uint64        `json:"total"`
	Bad    uint64        `json:"bad"`
	Slow   uint64        `json:"slow"`
	// Availability and LatencyGood are percentages, absent without requests
	// (LatencyGood also without a latency SLO).
	Availability *float64      `json:"availability,omitempty"`
	LatencyGood  *float64      `json:"latencyGood,omitempty"`
	P50          spec.Duration `json:"p50,omitempty"`
	P90          spec.Duration `json:"p90,omitempty"`
	P99          spec.Duration `json:"p99,omitempty"`
}

// RequestsPerMinute estimates the CUJ's traffic from its live 5-minute
// window (what it covers so far), or 0 without requests.
func (c *CUJStatus) RequestsPerMinute() uint64 {
	for _, w := range c.Windows {
		if time.Duration(w.Window) == 5*time.Minute && w.Span > 0 && w.Total > 0 {
			return uint64(float64(w.Total) / time.Duration(w.Span).Minutes())
		}
	}
	return 0
}

// GroupSLI is one client group's windows while a grouping is active.
type GroupSLI struct {
	Group   string      `json:"group"`
	Windows []WindowSLI `json:"windows"`
}

// RevisionSLI is one revision's windows while the proxy splits traffic
// between stable and canary.
type RevisionSLI struct {
	Revision string      `json:"revision"`
	Windows  []WindowSLI `json:"windows"`
}

// FaultRef is a fault rule that can touch the CUJ.
type FaultRef struct {
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Rate     spec.Ratio `json:"rate"`
	Actions  string     `json:"actions"`
	Matched  uint64     `json:"matched"`
	Injected uint64     `json:"injected"`
}

func (h *handler) cujs(*http.Request, identity) (int, any, error) {
	return http.StatusOK, SnapshotSplit(h.cfg.Service, h.cfg.Routes, h.cfg.Faults, h.cfg.Recorder, h.cfg.Split, h.cfg.Now()), nil
}

// Snapshot builds the live view of every CUJ, _other last.
func Snapshot(svc *spec.Service, routes *match.Table, faults Faults, rec *sli.Recorder, now time.Time) CUJsResponse {
	return SnapshotSplit(svc, routes, faults, rec, nil, now)
}

// SnapshotSplit is Snapshot for a proxy with a stable/canary split (sp may
// be nil): every CUJ also lists the windows of each revision.
func SnapshotSplit(svc *spec.Service, routes *match.Table, faults Faults, rec *sli.Recorder, sp *split.Split, now time.Time) CUJsResponse {
	resp := CUJsResponse{Service: svc.Name, Now: now.UTC()}
	statuses := faults.List()
	grouped := slices.ContainsFunc(faults.Groupings(), func(g fault.GroupingStatus) bool { return g.Active && g.Grouping.Splits() })
	names := append(svc.CUJNames(), spec.OtherCUJ)
	for _, name := range names {
		idx := routes.CUJIndex(name)
		c := svc.CUJ(name)
		st := CUJStatus{Name: name, Routes: []string{}, Faults: []FaultRef{}}
		var threshold time.Duration
		if c != nil {
			st.Owner, st.Description = c.Owner, c.Description
			for _, r := range c.Routes {
				st.Routes = append(st.Routes, r.Pattern)
			}
			if a := c.Availability; a != nil {
				st.Availability = &AvailabilityOf{Objective: a.Objective, Window: a.Window.String()}
			}
			if l := c.Latency; l != nil {
				st.Latency = &LatencyOf{Threshold: spec.Duration(l.Threshold), Objective: l.Objective, Window: l.Window.String()}
				threshold = l.Threshold
			}
		}
		st.Windows = windows(rec, idx, sli.AllGroups, sli.AllRevisions, threshold > 0)
		if grouped {
			for _, g := range []match.Group{match.GroupExperiment, match.GroupControl} {
				st.Groups = append(st.Groups, GroupSLI{Group: g.String(), Windows: windows(rec, idx, int(g), sli.AllRevisions, threshold > 0)})
			}
		}
		if sp != nil {
			for _, r := range []match.Revision{match.RevisionStable, match.RevisionCanary} {
				st.Revisions = append(st.Revisions, RevisionSLI{Revision: r.String(), Windows: windows(rec, idx, sli.AllGroups, int(r), threshold > 0)})
			}
		}
		for _, f := range statuses {
			if !f.Rule.IsTCP() && (f.Rule.Match.CUJ == "" || f.Rule.Match.CUJ == name) {
				st.Faults = append(st.Faults, FaultRef{Name: f.Rule.Name, State: f.State, Rate: f.Rule.Rate, Actions: f.Rule.Actions(), Matched: f.Matched, Injected: f.Injected})
			}
		}
		resp.CUJs = append(resp.CUJs, st)
	}
	return resp
}

func windows(rec *sli.Recorder, cuj, group, revision int, hasLatency bool) []WindowSLI {
	out := make([]WindowSLI, 0, len(LiveWindows))
	for _, d := range LiveWindows {
		c := rec.WindowOf(cuj, group, revision, d)
		w := WindowSLI{Window: spec.Duration(d), Span: spec.Duration(c.Span.Round(time.Second)), Total: c.Total, Bad: c.Bad, Slow: c.Slow}
		if c.Total > 0 {
			a := 100 * float64(c.Total-c.Bad) / float64(c.Total)
			w.Availability = &a
			if hasLatency {
				l := 100 * float64(c.Total-c.Slow) / float64(c.Total)
				w.LatencyGood = &l
			}
			w.P50 = spec.Duration(sli.Quantile(rec.Bounds(), c.Hist, 0.5))
			w.P90 = spec.Duration(sli.Quantile(rec.Bounds(), c.Hist, 0.9))
			w.P99 = spec.Duration(sli.Quantile(rec.Bounds(), c.Hist, 0.99))
		}
		out = append(out, w)
	}
	return out
}
