package sqlite

import (
	"context"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
)

var (
	_ slo.Source  = (*Flusher)(nil)
	_ slo.Spanner = (*Flusher)(nil)
)

// Span implements slo.Spanner: what the store holds, from the recorder's
// oldest interval on when the store holds nothing older.
func (f *Flusher) Span(ctx context.Context, r slo.Range) (slo.Span, error) {
	sp, err := f.store.Span(ctx, r)
	if err != nil {
		return sp, err
	}
	if held, to := f.rec.Held(); held.Before(to) && (sp.Start.IsZero() || held.Before(sp.Start)) {
		sp.Start = held
	}
	return sp, nil
}

// Events implements slo.Source over the store and the recorder together, so
// the SLO engine judges requests seconds old instead of waiting for whole
// flushed minutes: a fresh proxy's SLOs are judged from its first closed
// interval on. Judge at Instant.
//
// Whole minutes that the store holds completely come from the store; the
// recorder's closed intervals cover the rest of the range: the minutes not
// yet flushed, and the partial minutes at either end of a range that starts
// or ends inside the recorder's ring, so a five-minute window is exact to the
// recorder's interval rather than rounded to whole minutes. A range older
// than the ring is read from the store alone, in whole minutes, as
// Store.Events reads it.
//
// One approximation, in a reused store only: requests an earlier proxy
// stored in the minute this recorder started in are left out until that
// minute is flushed and read back whole.
func (f *Flusher) Events(ctx context.Context, r slo.Range) (map[slo.Key]slo.Events, error) {
	f.mu.Lock()
	since := f.since
	f.mu.Unlock()
	held, _ := f.rec.Held()
	// The store holds every minute before m completely: minutes this
	// recorder has written in full, and minutes from before it started.
	m := slo.Align(since, time.Minute)
	if m.Before(held) {
		m = held
	}
	lo, hi := r.From, r.To
	if m.Before(hi) {
		hi = m
	}
	if !lo.Before(held) {
		lo = ceilMinute(lo)
	}
	if end := slo.Align(hi, time.Minute); !end.Before(held) {
		hi = end
	}
	out := map[slo.Key]slo.Events{}
	if lo.Before(hi) {
		stored, err := f.store.Events(ctx, slo.Range{From: lo, To: hi})
		if err != nil {
			return nil, err
		}
		out = stored
	} else {
		lo, hi = r.From, r.From
	}
	add := func(from, to time.Time) {
		if !from.Before(to) {
			return
		}
		for cuj, c := range f.rec.Between(from, to) {
			for _, k := range slo.Kinds {
				key := slo.Key{CUJ: cuj, Kind: k}
				out[key] = out[key].Add(countsOf(c).Events(k))
			}
		}
	}
	add(r.From, lo)
	add(hi, r.To)
	return out, nil
}

// Instant returns the end of the recorder's last closed interval: the
// instant at which Events holds every request, the one to judge at.
func (f *Flusher) Instant() time.Time { return f.rec.Closed() }

func countsOf(c sli.Counts) slo.Counts { return slo.Counts{Total: c.Total, Bad: c.Bad, Slow: c.Slow} }

// ceilMinute rounds t up to a whole minute.
func ceilMinute(t time.Time) time.Time {
	if a := slo.Align(t, time.Minute); a.Before(t) {
		return a.Add(time.Minute)
	}
	return t
}
