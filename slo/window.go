package slo

import (
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
