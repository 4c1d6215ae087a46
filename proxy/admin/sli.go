package admin

import (
	"net/http"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// SLIResponse is the body of GET /api/v1/sli: what one CUJ (all clients or
// one group) saw over a window of the caller's choosing (window=5m), or since
// an instant (since=RFC 3339, rounded out to whole recorder intervals), with
// the latency histogram, so that experiments can compute any SLI and compare
// groups.
type SLIResponse struct {
	CUJ    string        `json:"cuj"`
	Group  string        `json:"group"`
	Window spec.Duration `json:"window"`
	// Run is the experiment run whose view was asked for: every request but
	// those another run counted.
	Run string `json:"run,omitempty"`
	// Span is the time the counts cover: the whole recorder intervals that
	// fit in the window plus the live part of the current one.
	Span  spec.Duration `json:"span"`
	Total uint64        `json:"total"`
	Bad   uint64        `json:"bad"`
	Slow  uint64        `json:"slow"`
	// Bounds are the histogram's upper bounds; Hist has one count more, for +Inf.
	Bounds []spec.Duration `json:"bounds"`
	Hist   []uint64        `json:"hist"`
}

// GroupAll selects every client in GET /api/v1/sli.
const GroupAll = spec.GroupAll

func (h *handler) sli(r *http.Request, _ identity) (int, any, error) {
	q := r.URL.Query()
	name := q.Get("cuj")
	if name == "" {
		return 0, nil, slolab.Errorf(slolab.Invalid, "cuj: required, e.g. /api/v1/sli?cuj=update&window=5m")
	}
	idx := h.cfg.Routes.CUJIndex(name)
	if idx < 0 {
		return 0, nil, slolab.Errorf(slolab.NotFound, "service %s has no CUJ %q (it has %s and %s)", h.cfg.Service.Name, name, strings.Join(h.cfg.Service.CUJNames(), ", "), spec.OtherCUJ)
	}
	window := time.Minute
	if s := q.Get("window"); s != "" {
		d, err := spec.ParseDuration(s)
		if err != nil {
			return 0, nil, slolab.Errorf(slolab.Invalid, "window: %v", err)
		}
		window = d
	}
	if s := q.Get("since"); s != "" {
		if q.Get("window") != "" {
			return 0, nil, slolab.Errorf(slolab.Invalid, "give window or since, not both")
		}
		since, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, nil, slolab.Errorf(slolab.Invalid, "since: want an RFC 3339 time such as 2026-11-17T12:00:00Z, got %q", s)
		}
		window = h.cfg.Recorder.Covering(since)
	}
	if keep := h.cfg.Recorder.Keep(); window < time.Second || window > keep {
		return 0, nil, slolab.Errorf(slolab.Invalid, "window: must be between 1s and %s (what the proxy keeps), got %s", spec.FormatDuration(keep), spec.FormatDuration(window))
	}
	group, groupName := sli.AllGroups, GroupAll
	if s := q.Get("group"); s != "" && s != GroupAll {
		g, ok := match.ParseGroup(s)
		if !ok {
			return 0, nil, slolab.Errorf(slolab.Invalid, "group: want %s, %s, %s or %s, got %q", GroupAll, spec.GroupExperiment, spec.GroupControl, spec.GroupNone, s)
		}
		group, groupName = int(g), s
	}
	c := h.cfg.Recorder.Window(idx, group, window)
	run := q.Get("run")
	if run != "" {
		// None of another run's requests, even in an interval both ran in.
		c = h.cfg.Recorder.RunWindow(run, idx, group, window)
	}
	resp := SLIResponse{CUJ: name, Group: groupName, Run: run, Window: spec.Duration(window), Span: spec.Duration(c.Span.Round(time.Millisecond)),
		Total: c.Total, Bad: c.Bad, Slow: c.Slow, Hist: c.Hist}
	for _, b := range h.cfg.Recorder.Bounds() {
		resp.Bounds = append(resp.Bounds, spec.Duration(b))
	}
	return http.StatusOK, resp, nil
}
