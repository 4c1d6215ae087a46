package slo

import (
	"context"
	"fmt"
	"math"
	"time"
)

// History holds minute buckets of every SLO as prefix sums, so the events of
// any window are two lookups and a subtraction: status over 10,000 SLOs
// reads a few values per SLO whatever the windows' lengths.
//
// Layout: a column of counts (requests or bad requests) keeps a cumulative
// uint64 at every hour boundary and, for every minute, the uint32 count
// since its hour began: 4 bytes a minute instead of 8. A column whose hour
// holds 2^32 events or more (over a million a second) keeps plain uint64
// prefix sums instead. A CUJ's two SLOs share their requests column.
type History struct {
	start   time.Time // minute-aligned
	minutes int
	series  map[Key]histSeries
	span    Span // what the source held, as its loader said
}

type histSeries struct{ total, bad *column }

type column struct {
	hours []uint64 // hours[h]: events in minutes [0, 60h)
	offs  []uint32 // offs[i]: events in minutes [60·⌊i/60⌋, i); during building, the count of minute i−1
	wide  []uint64 // wide[i]: events in minutes [0, i), when offs would overflow
}

const minutesPerHour = 60

// at returns the events in minutes [0, i).
func (c *column) at(i int) uint64 {
	if c.wide != nil {
		return c.wide[i]
	}
	return c.hours[i/minutesPerHour] + uint64(c.offs[i])
}

var (
	_ Source  = (*History)(nil)
	_ Spanner = (*History)(nil)
)

// Span implements Spanner: what the source the history was loaded from
// holds, as its loader set it (HistoryBuilder.SetSpan).
func (h *History) Span(context.Context, Range) (Span, error) { return h.span, nil }

// Start and End return the span the history covers.
func (h *History) Start() time.Time { return h.start }

// End returns the end of the last minute the history covers.
func (h *History) End() time.Time { return h.start.Add(time.Duration(h.minutes) * time.Minute) }

// Keys lists the SLOs the history holds.
func (h *History) Keys() []Key {
	out := make([]Key, 0, len(h.series))
	for k := range h.series {
		out = append(out, k)
	}
	return out
}

// index maps an instant to a minute boundary index, rounding down and
// clamping to the history.
func (h *History) index(t time.Time) int {
	d := t.Sub(h.start)
	if d <= 0 {
		return 0
	}
	return min(int(d/time.Minute), h.minutes)
}

// Between returns an SLO's events over r, read in whole minutes (both ends
// rounded down). The parts of r outside the history count as no events.
func (h *History) Between(k Key, r Range) Events {
	s, ok := h.series[k]
	if !ok {
		return Events{}
	}
	i, j := h.index(r.From), h.index(r.To)
	if j <= i {
		return Events{}
	}
	return Events{Total: s.total.at(j) - s.total.at(i), Bad: s.bad.at(j) - s.bad.at(i)}
}

// Events implements Source.
func (h *History) Events(_ context.Context, r Range) (map[Key]Events, error) {
	out := make(map[Key]Events, len(h.series))
	for k := range h.series {
		out[k] = h.Between(k, r)
	}
	return out, nil
}

// Lookup returns a function giving one SLO's events over a range, for Judge.
func (h *History) Lookup(k Key) func(Range) Events {
	return func(r Range) Events { return h.Between(k, r) }
}

// SetSpan records what the source the history comes from holds: since when,
// and which part is synthetic.
func (b *HistoryBuilder) SetSpan(s Span) { b.h.span = s }

// HistoryBuilder collects minute buckets into a History.
type HistoryBuilder struct {
	h     *History
	cujs  map[string]*[3]*column // requests, bad, slow
	other map[Key]*[2]*column
}

// NewHistoryBuilder starts a history of the minutes in [from, to); both are
// rounded down to whole minutes.
func NewHistoryBuilder(from, to time.Time) *HistoryBuilder {
	from, to = Align(from, time.Minute), Align(to, time.Minute)
	n := max(int(to.Sub(from)/time.Minute), 0)
	return &HistoryBuilder{
		h:     &History{start: from, minutes: n, series: map[Key]histSeries{}},
		cujs:  map[string]*[3]*column{},
		other: map[Key]*[2]*column{},
	}
}

func (b *HistoryBuilder) newColumn() *column {
	return &column{offs: make([]uint32, b.h.minutes+1)}
}

func (b *HistoryBuilder) minute(t time.Time) (int, bool) {
	d := t.Sub(b.h.start)
	if d < 0 {
		return 0, false
	}
	i := int(d / time.Minute)
	return i, i < b.h.minutes
}

// AddCounts adds a CUJ's counts to the minute holding t. Its availability
// and latency SLOs share the requests column. Minutes outside the history
// are ignored.
func (b *HistoryBuilder) AddCounts(cuj string, t time.Time, c Counts) {
	i, ok := b.minute(t)
	if !ok {
		return
	}
	cols := b.cujs[cuj]
	if cols == nil {
		cols = &[3]*column{b.newColumn(), b.newColumn(), b.newColumn()}
		b.cujs[cuj] = cols
	}
	for n, v := range [3]uint64{c.Total, c.Bad, c.Slow} {
		b.add(cols[n], i, v)
	}
}

// AddMinutes adds a CUJ's counts for consecutive minutes starting with the
// one holding first: counts[i] goes to minute first + i. It is AddCounts for
// bulk loads.
func (b *HistoryBuilder) AddMinutes(cuj string, first time.Time, counts []Counts) {
	d := first.Sub(b.h.start)
	i0 := int(d / time.Minute)
	if d < 0 && d%time.Minute != 0 {
		i0-- // round down before the start too
	}
	cols := b.cujs[cuj]
	if cols == nil {
		cols = &[3]*column{b.newColumn(), b.newColumn(), b.newColumn()}
		b.cujs[cuj] = cols
	}
	for k, c := range counts {
		i := i0 + k
		if i < 0 {
			continue
		}
		if i >= b.h.minutes {
			return
		}
		b.add(cols[0], i, c.Total)
		b.add(cols[1], i, c.Bad)
		b.add(cols[2], i, c.Slow)
	}
}

// AddEvents adds one SLO's events to the minute holding t, for sources
// whose SLOs do not share their requests (user-supplied queries).
func (b *HistoryBuilder) AddEvents(k Key, t time.Time, e Events) {
	i, ok := b.minute(t)
	if !ok {
		return
	}
	cols := b.other[k]
	if cols == nil {
		cols = &[2]*column{b.newColumn(), b.newColumn()}
		b.other[k] = cols
	}
	b.add(cols[0], i, e.Total)
	b.add(cols[1], i, e.Bad)
}

// add adds v to minute i of c; the count is kept at offs[i+1] until Build.
func (b *HistoryBuilder) add(c *column, i int, v uint64) {
	if c.wide != nil {
		c.wide[i+1] += v
		return
	}
	s := uint64(c.offs[i+1]) + v
	if s > math.MaxUint32 {
		c.widen()
		c.wide[i+1] += v
		return
	}
	c.offs[i+1] = uint32(s)
}

// widen switches a column being built to uint64 counts.
func (c *column) widen() {
	c.wide = make([]uint64, len(c.offs))
	for i, v := range c.offs {
		c.wide[i] = uint64(v)
	}
	c.offs = nil
}

// build turns per-minute counts into prefix sums in place.
func (c *column) build(minutes int) {
	if c.wide == nil && c.overflows(minutes) {
		c.widen()
	}
	if c.wide != nil {
		c.buildWide(minutes)
		return
	}
	c.hours = make([]uint64, minutes/minutesPerHour+1)
	var run uint64 // events since the hour began
	for i := 1; i <= minutes; i++ {
		run += uint64(c.offs[i]) // the count of minute i−1
		if i%minutesPerHour == 0 {
			c.hours[i/minutesPerHour] = c.hours[i/minutesPerHour-1] + run
			c.offs[i], run = 0, 0
			continue
		}
		c.offs[i] = uint32(run)
	}
}

// overflows reports whether some hour's running count would not fit in uint32.
func (c *column) overflows(minutes int) bool {
	var run uint64
	for i := 1; i <= minutes; i++ {
		run += uint64(c.offs[i])
		if i%minutesPerHour == 0 {
			run = 0
		} else if run > math.MaxUint32 {
			return true
		}
	}
	return false
}

func (c *column) buildWide(minutes int) {
	for i := 1; i <= minutes; i++ {
		c.wide[i] += c.wide[i-1]
	}
}

// Build finishes the history. The builder must not be used afterwards.
func (b *HistoryBuilder) Build() (*History, error) {
	n := b.h.minutes
	for cuj, cols := range b.cujs {
		for _, c := range cols {
			c.build(n)
		}
		b.h.series[Key{cuj, Availability}] = histSeries{cols[0], cols[1]}
		b.h.series[Key{cuj, Latency}] = histSeries{cols[0], cols[2]}
	}
	for k, cols := range b.other {
		if _, dup := b.cujs[k.CUJ]; dup {
			return nil, fmt.Errorf("history: CUJ %s has both counts and events for %s", k.CUJ, k.Kind)
		}
		cols[0].build(n)
		cols[1].build(n)
		b.h.series[k] = histSeries{cols[0], cols[1]}
	}
	h := b.h
	b.h = nil
	return h, nil
}
