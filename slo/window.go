package slo

import (
	"context"
	"time"

	"slolab.dev/slolab/spec"
)

// Range is the half-open interval [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Last returns the range of length d that ends at at: [at − d, at).
func Last(d time.Duration, at time.Time) Range { return Range{at.Add(-d), at} }

// Duration returns To − From.
func (r Range) Duration() time.Duration { return r.To.Sub(r.From) }

// Period returns an SLO window's compliance period at the instant at: the
// rolling window [at − W, at), or the calendar month (UTC) so far.
func Period(w spec.Window, at time.Time) Range {
	if w.Calendar == "month" {
		return Range{MonthStart(at), at}
	}
	return Last(w.Rolling, at)
}

// PeriodLength returns the full length of the window that holds at: W for a
// rolling window, the month's length for a calendar month. A budget is spent
// over this length at burn rate 1.
func PeriodLength(w spec.Window, at time.Time) time.Duration {
	if w.Calendar == "month" {
		start := MonthStart(at)
		return start.AddDate(0, 1, 0).Sub(start)
	}
	return w.Rolling
}

// MonthStart returns the first instant of at's calendar month in UTC.
func MonthStart(at time.Time) time.Time {
	u := at.UTC()
	return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Align returns at rounded down to a multiple of step (since the Unix epoch).
// Sources that count in whole minutes are evaluated at aligned instants, so
// every window holds whole buckets.
func Align(at time.Time, step time.Duration) time.Time {
	return time.Unix(0, at.UnixNano()-at.UnixNano()%int64(step)).UTC()
}

// Span is what a source holds: events from Start on (zero when the source
// cannot tell, or holds nothing), of which those before Synthetic.Until, if
// set, were made up rather than measured.
type Span struct {
	Start     time.Time  `json:"start,omitzero"`
	Synthetic *Synthetic `json:"synthetic,omitempty"`
}

// Synthetic is a stretch of history that was generated, not measured: the
// lab writes one so that every window is full from its first minute.
type Synthetic struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Description says how it was made: the traffic, the baseline, the seed.
	Description string `json:"description"`
}

// Spanner is a Source that can say what it holds. Status uses it to tell how
// much of each window the source covers and which part of it is synthetic;
// a source that is not one is taken to cover every window.
type Spanner interface {
	// Span says what the source holds within r: Start is r.From, or
	// earlier, when it holds events from before r.
	Span(ctx context.Context, r Range) (Span, error)
}

// Covered returns how much of the range r the span covers: the part of r
// from Start on.
func (s Span) Covered(r Range) time.Duration {
	if s.Start.IsZero() || !s.Start.After(r.From) {
		return r.Duration()
	}
	return max(r.To.Sub(s.Start), 0)
}
