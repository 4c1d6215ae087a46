package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// MaxCountsWindow is the longest window GET /api/v1/counts answers: what
// the recorder's ring keeps.
const MaxCountsWindow = 6 * time.Hour

// CanaryRequest is the body of PUT /api/v1/canary.
type CanaryRequest struct {
	// Weight is the canary's share of every CUJ: "25%", "25" (a bare number
	// is a percentage, as in Argo Rollouts' setWeight) or the JSON number 25.
	Weight json.RawMessage `json:"weight"`
}

func (h *handler) noSplit() error {
	return slolab.Errorf(slolab.NotFound, "the proxy does not split traffic: start it with --upstream stable=URL --upstream canary=URL, or --revision-header NAME")
}

func (h *handler) getCanary(*http.Request, identity) (int, any, error) {
	if h.cfg.Split == nil {
		return 0, nil, h.noSplit()
	}
	return http.StatusOK, h.cfg.Split.Status(), nil
}

// ParseWeight reads a canary weight: a percentage, bare numbers included
// ("25%", "25", "0.5%"), at most 100%.
func ParseWeight(s string) (spec.Ratio, error) {
	w, err := spec.ParsePercent(s)
	if err != nil {
		return spec.Ratio{}, err
	}
	if w.Cmp(spec.One) > 0 {
		return spec.Ratio{}, slolab.Errorf(slolab.Invalid, "must be at most 100%%, got %s", w)
	}
	return w, nil
}

func (h *handler) putCanary(r *http.Request, who identity) (int, any, error) {
	if h.cfg.Split == nil {
		return 0, nil, h.noSplit()
	}
	data, err := httpapi.ReadBody(r)
	if err != nil {
		return 0, nil, err
	}
	var req CanaryRequest
	if err := httpapi.DecodeJSON(data, &req, `{"weight": "25%"}`); err != nil {
		return 0, nil, err
	}
	if len(req.Weight) == 0 {
		return 0, nil, slolab.Errorf(slolab.Invalid, "request body: want {\"weight\": \"25%%\"}")
	}
	text := strings.Trim(string(req.Weight), `"`)
	w, err := ParseWeight(text)
	if err != nil {
		return 0, nil, slolab.Errorf(slolab.Invalid, "request body: weight: %v", err)
	}
	var prev spec.Ratio
	var st split.Status
	err = h.change(who, func() (string, string, any, error) {
		prev = h.cfg.Split.Weight()
		st, err = h.cfg.Weights.SetWeight(w)
		return "canary.weight", "", map[string]spec.Ratio{"weight": w, "previous": prev}, err
	}, func() {
		h.cfg.Split.SetWeight(prev) //nolint:errcheck // it held this weight a moment ago
	})
	if err != nil {
		return 0, nil, err
	}
	h.cfg.Logger.Info("canary weight changed", "weight", w, "previous", prev, "identity", who.id, "actor", who.actor)
	return http.StatusOK, st, nil
}

// CountsResponse is the body of GET /api/v1/counts: what every CUJ saw per
// revision over a window of the caller's choosing.
type CountsResponse struct {
	Service string        `json:"service"`
	Now     time.Time     `json:"now"`
	Window  spec.Duration `json:"window"`
	// Span is the time the counts actually cover: whole 10-second intervals
	// plus the live part of the current one.
	Span spec.Duration `json:"span"`
	// Bounds are the latency histogram's upper bounds; every Hist has one
	// more bucket, +Inf.
	Bounds []spec.Duration `json:"bounds"`
	// Split is the traffic split, when the proxy has one.
	Split *split.Status `json:"split,omitempty"`
	CUJs  []CUJCounts   `json:"cujs"`
}

// CUJCounts are one CUJ's counts per revision, listing the revisions that
// saw requests in the window ("" when the proxy did not split them).
type CUJCounts struct {
	CUJ       string           `json:"cuj"`
	Revisions []RevisionCounts `json:"revisions"`
}

// RevisionCounts are one revision's counts.
type RevisionCounts struct {
	Revision string   `json:"revision"`
	Total    uint64   `json:"total"`
	Bad      uint64   `json:"bad"`
	Slow     uint64   `json:"slow"`
	Hist     []uint64 `json:"hist"`
}

func (h *handler) counts(r *http.Request, _ identity) (int, any, error) {
	q := r.URL.Query().Get("window")
	if q == "" {
		return 0, nil, slolab.Errorf(slolab.Invalid, "window: required, e.g. ?window=5m")
	}
	d, err := spec.ParseDuration(q)
	if err != nil {
		return 0, nil, slolab.Errorf(slolab.Invalid, "window: %v", err)
	}
	if d <= 0 || d > MaxCountsWindow {
		return 0, nil, slolab.Errorf(slolab.Invalid, "window: must be in (0, %s], the history the proxy keeps in memory, got %s", spec.FormatDuration(MaxCountsWindow), q)
	}
	return http.StatusOK, Counts(h.cfg.Service, h.cfg.Routes, h.cfg.Recorder, h.cfg.Split, d, h.cfg.Now()), nil
}

// Counts builds the counts per CUJ × revision over a window, _other last.
// The counts cover at least the window (Span ≥ d, up to one recorder
// interval more): a judge asked for the last 10s judges 10s or more, never
// the few hundred milliseconds of the live interval alone.
func Counts(svc *spec.Service, routes *match.Table, rec *sli.Recorder, sp *split.Split, d time.Duration, now time.Time) CountsResponse {
	resp := CountsResponse{Service: svc.Name, Now: now.UTC(), Window: spec.Duration(d), CUJs: []CUJCounts{}}
	for _, b := range rec.Bounds() {
		resp.Bounds = append(resp.Bounds, spec.Duration(b))
	}
	if sp != nil {
		st := sp.Status()
		resp.Split = &st
	}
	cover := rec.Covering(now.Add(-d))
	for _, name := range append(svc.CUJNames(), spec.OtherCUJ) {
		cc := CUJCounts{CUJ: name, Revisions: []RevisionCounts{}}
		for rev := range match.NumRevisions {
			c := rec.RevisionWindow(routes.CUJIndex(name), match.Revision(rev), cover)
			resp.Span = spec.Duration(c.Span)
			if c.Total == 0 {
				continue
			}
			cc.Revisions = append(cc.Revisions, RevisionCounts{Revision: match.Revision(rev).String(), Total: c.Total, Bad: c.Bad, Slow: c.Slow, Hist: c.Hist})
		}
		resp.CUJs = append(resp.CUJs, cc)
	}
	return resp
}
