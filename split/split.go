// Package split decides which release serves each request while a canary is
// out: the stable or the canary revision. Either the proxy splits traffic
// itself at an exact weight — per CUJ, request n of a CUJ goes to the canary
// iff floor(n·w) > floor((n−1)·w), the rule fault rates follow — or a mesh in
// front of or behind the proxy splits it and marks the canary's requests or
// responses with a header. The weight is an immutable state swapped with an
// atomic pointer, so changing it never drops a connection.
package split

import (
	"net/http"
	"net/textproto"
	"net/url"
	"sync/atomic"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// Modes of a Split.
const (
	// ModeWeight: the proxy sends an exact share of every CUJ to the canary upstream.
	ModeWeight = "weight"
	// ModeHeader: a mesh decides; a header names the revision.
	ModeHeader = "header"
)

// Config configures a Split. Exactly one of Canary (weight mode) and Header
// (header mode) is set.
type Config struct {
	// Stable and Canary are the two upstreams in weight mode. Stable is for
	// display; the proxy forwards to its own upstream for stable requests.
	Stable, Canary *url.URL
	// Weight is the canary's initial share of every CUJ's requests.
	Weight spec.Ratio
	// Header names the request or response header a mesh sets to mark the
	// canary's traffic (match.RevisionOf gives the value mapping).
	Header string
	// CUJs is the number of dense CUJ indices (match.Table.CUJs), _other included.
	CUJs int
	// Seed shifts each CUJ's pattern so that it does not alias with periodic
	// traffic (0: the canary first gets request ceil(1/w)).
	Seed uint64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Split picks a request's revision. It is safe for concurrent use; Pick
// takes no lock and allocates nothing.
type Split struct {
	cfg    Config
	header string // canonical form of cfg.Header
	state  atomic.Pointer[state]
}

// state is one weight, with the counters that realise it exactly per CUJ.
type state struct {
	weight   spec.Ratio
	since    time.Time
	counters []*fault.Counter // per dense CUJ index
}

// New returns a Split.
func New(cfg Config) (*Split, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Canary == nil && cfg.Header == "":
		return nil, slolab.Errorf(slolab.Invalid, "split: a canary upstream or a revision header is required")
	case cfg.Canary != nil && cfg.Header != "":
		return nil, slolab.Errorf(slolab.Invalid, "split: a canary upstream and a revision header exclude each other: either the proxy splits traffic or a mesh does")
	case cfg.CUJs < 1:
		return nil, slolab.Errorf(slolab.Invalid, "split: the route table's CUJ count is required")
	}
	if cfg.Weight.Cmp(spec.One) > 0 {
		return nil, slolab.Errorf(slolab.Invalid, "split: weight %s is above 100%%", cfg.Weight)
	}
	s := &Split{cfg: cfg}
	if cfg.Header != "" {
		s.header = textproto.CanonicalMIMEHeaderKey(cfg.Header)
		return s, nil
	}
	s.state.Store(s.newState(cfg.Weight))
	return s, nil
}

func (s *Split) newState(w spec.Ratio) *state {
	st := &state{weight: w, since: s.cfg.Now(), counters: make([]*fault.Counter, s.cfg.CUJs)}
	for i := range st.counters {
		seed := s.cfg.Seed
		if seed != 0 {
			seed += uint64(i) // each CUJ its own offset
		}
		st.counters[i] = fault.NewCounter(w, seed)
	}
	return st
}

// Mode returns ModeWeight or ModeHeader.
func (s *Split) Mode() string {
	if s.header != "" {
		return ModeHeader
	}
	return ModeWeight
}

// Canary returns the canary upstream (nil in header mode).
func (s *Split) Canary() *url.URL { return s.cfg.Canary }

// Header returns the revision header's canonical name ("" in weight mode).
func (s *Split) Header() string { return s.header }

// Pick returns the revision that serves a request of the given route in
// weight mode. In header mode it returns the revision the request header
// names, or RevisionNone when the request carries no such header and the
// response must tell (see FromResponse).
func (s *Split) Pick(r *http.Request, route *match.Route) match.Revision {
	if s.header != "" {
		if v, ok := r.Header[s.header]; ok && len(v) > 0 {
			return match.RevisionOf(v[0])
		}
		return match.RevisionNone
	}
	if inject, _ := s.state.Load().counters[route.CUJ].Next(); inject {
		return match.RevisionCanary
	}
	return match.RevisionStable
}

// FromResponse returns the revision a response's header names in header
// mode; a response without it (the stable route, or an answer the proxy made
// itself) is stable's.
func (s *Split) FromResponse(h http.Header) match.Revision {
	if v, ok := h[s.header]; ok && len(v) > 0 {
		return match.RevisionOf(v[0])
	}
	return match.RevisionStable
}

// SetWeight changes the canary's share at once, for requests that start
// after it returns; in-flight requests and connections are untouched. Each
// CUJ's exact pattern starts afresh at the new weight.
func (s *Split) SetWeight(w spec.Ratio) (Status, error) {
	if s.header != "" {
		return Status{}, slolab.Errorf(slolab.Conflict, "the proxy reads the revision from the %s header: the mesh that sets it decides the weight", s.header)
	}
	if w.Cmp(spec.One) > 0 {
		return Status{}, slolab.Errorf(slolab.Invalid, "weight: must be at most 100%%, got %s", w)
	}
	s.state.Store(s.newState(w))
	return s.Status(), nil
}

// Status is what GET /api/v1/canary reports.
type Status struct {
	Mode   string `json:"mode"`
	Stable string `json:"stable,omitempty"`
	Canary string `json:"canary,omitempty"`
	// Weight is the canary's share of every CUJ (weight mode only).
	Weight *spec.Ratio `json:"weight,omitempty"`
	// Since is when the weight was set.
	Since  *time.Time `json:"since,omitempty"`
	Header string     `json:"header,omitempty"`
	// Routed counts the requests sent to the canary and to stable since the
	// weight was set (weight mode only).
	Routed *Routed `json:"routed,omitempty"`
}

// Routed counts requests by revision.
type Routed struct {
	Stable uint64 `json:"stable"`
	Canary uint64 `json:"canary"`
}

// Weight returns the canary's current share (0 in header mode).
func (s *Split) Weight() spec.Ratio {
	if st := s.state.Load(); st != nil {
		return st.weight
	}
	return spec.Ratio{}
}

// Status reports the split.
func (s *Split) Status() Status {
	if s.header != "" {
		return Status{Mode: ModeHeader, Header: s.header}
	}
	st := s.state.Load()
	w, since := st.weight, st.since.UTC()
	out := Status{Mode: ModeWeight, Canary: s.cfg.Canary.String(), Weight: &w, Since: &since, Routed: &Routed{}}
	if s.cfg.Stable != nil {
		out.Stable = s.cfg.Stable.String()
	}
	for _, c := range st.counters {
		inj := c.Injected()
		out.Routed.Canary += inj
		out.Routed.Stable += c.Matched() - inj
	}
	return out
}
