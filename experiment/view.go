package experiment

import (
	"context"
	"time"

	"slolab.dev/slolab/spec"
)

// Client groups as expressions name them: spec's names.
const (
	GroupAll        = spec.GroupAll
	GroupExperiment = spec.GroupExperiment
	GroupControl    = spec.GroupControl
)

// Query asks what a CUJ's clients (all, or one group) saw over the last
// Window, or, when Since is set, since that instant.
type Query struct {
	CUJ    string
	Group  string
	Window time.Duration
	Since  time.Time
	// Run leaves out every request the proxy counted under another
	// experiment run ("" for every request).
	Run string
}

// SLI is what a CUJ saw over a window: request counts and the latency
// histogram they come from.
type SLI struct {
	Total uint64 // requests
	Bad   uint64 // availability-bad: 5xx or no response
	Slow  uint64 // slower than the CUJ's latency threshold (0 without a latency SLO)
	// Bounds are the histogram's upper bounds; Hist has one more count, for +Inf.
	Bounds []time.Duration
	Hist   []uint64
	// Span is the time the counts actually cover (windows are whole
	// intervals of the source, plus the live part of the current one).
	Span time.Duration
}

// View is what hypotheses, guardrails and expectations read. The proxy's
// admin API is one (AdminView); the SLO engine's sources are another.
type View interface {
	SLI(ctx context.Context, q Query) (SLI, error)
}
