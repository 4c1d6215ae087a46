package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
)

var _ slo.Source = (*Store)(nil)

// row is one stored bucket.
type row struct {
	total, bad, slow uint64
	bounds           []time.Duration
	hist             []uint64 // len(bounds)+1
}

// add merges o into r, remapping histograms when their bounds differ (the
// newer bounds win).
func (r *row) add(o row) {
	r.total += o.total
	r.bad += o.bad
	r.slow += o.slow
	switch {
	case r.hist == nil:
		r.bounds, r.hist = o.bounds, slices.Clone(o.hist)
	case slices.Equal(r.bounds, o.bounds):
		for i, c := range o.hist {
			r.hist[i] += c
		}
	default:
		r.hist = remap(r.hist, r.bounds, o.bounds)
		r.bounds = o.bounds
		for i, c := range o.hist {
			r.hist[i] += c
		}
	}
}

// seriesKey names a series: a CUJ, a client group and a revision ("" unless
// the proxy split traffic between stable and canary).
type seriesKey struct {
	cuj, grp, rev string
}

type rowKey struct {
	t int64 // Unix minutes or hours
	seriesKey
}

// Add writes closed recorder intervals into their minute buckets, adding to
// what the buckets already hold, and records that everything before until
// has been written — all in one transaction, so a crash leaves either all of
// it or none. bounds are the recorder's histogram bounds.
func (s *Store) Add(ctx context.Context, bounds []time.Duration, buckets []sli.Bucket, until time.Time) error {
	rows := map[rowKey]row{}
	for _, b := range buckets {
		k := rowKey{b.Start.Unix() / 60, seriesKey{b.CUJ, b.Group, b.Revision}}
		r := rows[k]
		r.add(row{total: b.Total, bad: b.Bad, slow: b.Slow, bounds: bounds, hist: b.Hist})
		rows[k] = r
	}
	keys := make([]rowKey, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].t < keys[j].t })
	err := s.tx(ctx, func(tx *sql.Tx) error {
		w := newWriter(ctx, tx)
		for _, k := range keys {
			if err := w.merge("minute", k.t, k.seriesKey, rows[k]); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('flushed_until', ?)
			ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, until.UnixNano())
		return err
	})
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: writing %d buckets: %w", s.cfg.Path, len(keys), err)
	}
	return nil
}

// writer merges rows inside one transaction.
type writer struct {
	ctx    context.Context
	tx     *sql.Tx
	series map[seriesKey]int64
	bounds map[string]int64
	parsed map[int64][]time.Duration
}

func newWriter(ctx context.Context, tx *sql.Tx) *writer {
	return &writer{ctx: ctx, tx: tx, series: map[seriesKey]int64{}, bounds: map[string]int64{}, parsed: map[int64][]time.Duration{}}
}

func (w *writer) seriesID(k seriesKey) (int64, error) {
	if id, ok := w.series[k]; ok {
		return id, nil
	}
	var id int64
	err := w.tx.QueryRowContext(w.ctx, `INSERT INTO series (cuj, grp, rev) VALUES (?, ?, ?)
		ON CONFLICT (cuj, grp, rev) DO UPDATE SET cuj = cuj RETURNING id`, k.cuj, k.grp, k.rev).Scan(&id)
	w.series[k] = id
	return id, err
}

func (w *writer) boundsID(b []time.Duration) (int64, error) {
	text := formatBounds(b)
	if id, ok := w.bounds[text]; ok {
		return id, nil
	}
	var id int64
	err := w.tx.QueryRowContext(w.ctx, `INSERT INTO bounds (bounds) VALUES (?)
		ON CONFLICT (bounds) DO UPDATE SET bounds = bounds RETURNING id`, text).Scan(&id)
	w.bounds[text], w.parsed[id] = id, b
	return id, err
}

func (w *writer) boundsOf(id int64) ([]time.Duration, error) {
	if b, ok := w.parsed[id]; ok {
		return b, nil
	}
	var text string
	if err := w.tx.QueryRowContext(w.ctx, `SELECT bounds FROM bounds WHERE id = ?`, id).Scan(&text); err != nil {
		return nil, err
	}
	b, err := parseBounds(text)
	w.parsed[id] = b
	return b, err
}

// merge adds r to the bucket (table, t, series), creating it if needed;
// a minute's counts go to its hour's sum in minute_hour too.
func (w *writer) merge(table string, t int64, k seriesKey, r row) error {
	sid, err := w.seriesID(k)
	if err != nil {
		return err
	}
	if table == "minute" {
		if _, err := w.tx.ExecContext(w.ctx, addToHour, floorDiv(t, 60), sid, r.total, r.bad, r.slow); err != nil {
			return err
		}
	}
	var old row
	var oldBounds int64
	var blob []byte
	err = w.tx.QueryRowContext(w.ctx, `SELECT total, bad, slow, bounds, hist FROM `+table+` WHERE t = ? AND series = ?`, t, sid).
		Scan(&old.total, &old.bad, &old.slow, &oldBounds, &blob)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		if old.bounds, err = w.boundsOf(oldBounds); err != nil {
			return err
		}
		if old.hist, err = decodeHist(blob, len(old.bounds)+1); err != nil {
			return fmt.Errorf("%s bucket %d of %s/%s/%s: %w", table, t, k.cuj, k.grp, k.rev, err)
		}
		old.add(r)
		r = old
	}
	bid, err := w.boundsID(r.bounds)
	if err != nil {
		return err
	}
	_, err = w.tx.ExecContext(w.ctx, `INSERT OR REPLACE INTO `+table+` (t, series, total, bad, slow, bounds, hist) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t, sid, r.total, r.bad, r.slow, bid, encodeHist(r.hist))
	return err
}

// addToHour adds a minute's counts to its hour's sum.
const addToHour = `INSERT INTO minute_hour (t, series, total, bad, slow) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (t, series) DO UPDATE SET total = total + excluded.total, bad = bad + excluded.bad, slow = slow + excluded.slow`

// minutes returns the Unix minutes of a range, both ends rounded down.
func minutes(r slo.Range) (from, to int64) {
	return floorDiv(r.From.Unix(), 60), floorDiv(r.To.Unix(), 60)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilDiv returns ⌈a/b⌉ for b > 0.
func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// Events implements slo.Source: every CUJ's events over r, summed over its
// client groups, in whole minutes (both ends rounded down). Where only
// hourly rollups remain, an hour counts when it starts inside r.
func (s *Store) Events(ctx context.Context, r slo.Range) (map[slo.Key]slo.Events, error) {
	a, b := minutes(r)
	out := map[slo.Key]slo.Events{}
	err := each(ctx, s.db, func(rows *sql.Rows) error {
		var cuj string
		var c slo.Counts
		if err := rows.Scan(&cuj, &c.Total, &c.Bad, &c.Slow); err != nil {
			return err
		}
		for _, k := range slo.Kinds {
			out[slo.Key{CUJ: cuj, Kind: k}] = c.Events(k)
		}
		return nil
	}, eventsQuery, args(a, b)...)
	if err != nil {
		return nil, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	return out, nil
}

// eventsQuery sums a range of minutes [?1, ?2): the whole hours in it
// [?5, ?6) from the hourly sums of the minutes, the minutes before and after
// them from the minute buckets, and, where only hourly rollups remain, the
// hours starting in it [?3, ?4).
const eventsQuery = `SELECT s.cuj, SUM(x.total), SUM(x.bad), SUM(x.slow) FROM (
		SELECT series, SUM(total) AS total, SUM(bad) AS bad, SUM(slow) AS slow FROM minute
			WHERE t >= ?1 AND t < min(?2, ?5 * 60) GROUP BY series
		UNION ALL
		SELECT series, SUM(total), SUM(bad), SUM(slow) FROM minute
			WHERE t >= max(?1, ?6 * 60) AND t < ?2 GROUP BY series
		UNION ALL
		SELECT series, SUM(total), SUM(bad), SUM(slow) FROM minute_hour WHERE t >= ?5 AND t < ?6 GROUP BY series
		UNION ALL
		SELECT series, SUM(total), SUM(bad), SUM(slow) FROM hour WHERE t >= ?3 AND t < ?4 GROUP BY series
	) x JOIN series s ON s.id = x.series
	GROUP BY s.cuj`

// args are eventsQuery's arguments for the minutes [a, b).
func args(a, b int64) []any {
	ha, hb := ceilDiv(a, 60), floorDiv(b, 60) // the whole hours inside
	if hb < ha {
		hb = ha
	}
	return []any{a, b, ceilDiv(a, 60), ceilDiv(b, 60), ha, hb}
}

// Revisions returns every CUJ's counts per revision over r — "stable" and
// "canary" while the proxy split traffic, "" otherwise — summed over client
// groups, in whole minutes (both ends rounded down) as Events reads them.
// The canary judge reads it.
func (s *Store) Revisions(ctx context.Context, r slo.Range) (map[string]map[string]slo.Counts, error) {
	a, b := minutes(r)
	out := map[string]map[string]slo.Counts{}
	err := each(ctx, s.db, func(rows *sql.Rows) error {
		var cuj, rev string
		var c slo.Counts
		if err := rows.Scan(&cuj, &rev, &c.Total, &c.Bad, &c.Slow); err != nil {
			return err
		}
		if out[cuj] == nil {
			out[cuj] = map[string]slo.Counts{}
		}
		out[cuj][rev] = c
		return nil
	}, `SELECT s.cuj, s.rev, SUM(x.total), SUM(x.bad), SUM(x.slow) FROM (
			SELECT series, total, bad, slow FROM minute WHERE t >= ?1 AND t < ?2
			UNION ALL
			SELECT series, total, bad, slow FROM hour WHERE t >= ?3 AND t < ?4
		) x JOIN series s ON s.id = x.series
		GROUP BY s.cuj, s.rev`, a, b, ceilDiv(a, 60), ceilDiv(b, 60))
	if err != nil {
		return nil, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	return out, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs a query and calls f for every row.
func each(ctx context.Context, q querier, f func(*sql.Rows) error, query string, args ...any) (err error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// History loads the buckets of [from, to) as prefix sums for backtests and
// reviews. Where only hourly rollups remain, an hour's counts sit in its
// first minute, so windows shorter than an hour mean little there.
func (s *Store) History(ctx context.Context, from, to time.Time) (*slo.History, error) {
	b := slo.NewHistoryBuilder(from, to)
	span, err := s.Span(ctx, slo.Range{From: from, To: to})
	if err != nil {
		return nil, err
	}
	b.SetSpan(span)
	a, z := minutes(slo.Range{From: from, To: to})
	for _, q := range []struct {
		table    string
		lo, hi   int64
		unitSecs int64
	}{
		{"minute", a, z, 60},
		{"hour", ceilDiv(a, 60), ceilDiv(z, 60), 3600},
	} {
		err := each(ctx, s.db, func(rows *sql.Rows) error {
			var t int64
			var cuj string
			var c slo.Counts
			if err := rows.Scan(&t, &cuj, &c.Total, &c.Bad, &c.Slow); err != nil {
				return err
			}
			b.AddCounts(cuj, time.Unix(t*q.unitSecs, 0), c)
			return nil
		}, `SELECT x.t, s.cuj, x.total, x.bad, x.slow FROM `+q.table+` x
			JOIN series s ON s.id = x.series WHERE x.t >= ? AND x.t < ?`, q.lo, q.hi)
		if err != nil {
			return nil, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
		}
	}
	return b.Build()
}

// Extent is the span of stored data.
type Extent struct {
	// First and Last are the start of the oldest and the end of the newest
	// bucket; both zero in an empty store.
	First, Last time.Time
	// MinuteFrom is where minute buckets begin: older data is hourly.
	MinuteFrom time.Time
	// FlushedUntil is the end of the last interval a flusher wrote.
	FlushedUntil time.Time
	// Stopped is when the last proxy that wrote the store stopped cleanly,
	// having written everything it counted; zero while one runs, or if it
	// crashed.
	Stopped time.Time
}

// Extent reports what the store holds.
func (s *Store) Extent(ctx context.Context) (Extent, error) {
	var e Extent
	var mMin, mMax, hMin, hMax, flushed, started, stopped sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT min(t) FROM minute), (SELECT max(t) FROM minute),
		(SELECT min(t) FROM hour), (SELECT max(t) FROM hour),
		(SELECT value FROM meta WHERE key = 'flushed_until'),
		(SELECT value FROM meta WHERE key = 'started'), (SELECT value FROM meta WHERE key = 'stopped')`).
		Scan(&mMin, &mMax, &hMin, &hMax, &flushed, &started, &stopped)
	if err != nil {
		return e, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	unix := func(v int64, secs int64) time.Time { return time.Unix(v*secs, 0).UTC() }
	if mMin.Valid {
		e.First, e.Last, e.MinuteFrom = unix(mMin.Int64, 60), unix(mMax.Int64+1, 60), unix(mMin.Int64, 60)
	}
	if hMin.Valid {
		e.First = unix(hMin.Int64, 3600)
		if !mMax.Valid {
			e.Last = unix(hMax.Int64+1, 3600)
		}
	}
	if flushed.Valid {
		e.FlushedUntil = time.Unix(0, flushed.Int64).UTC()
	}
	if stopped.Valid && (!started.Valid || stopped.Int64 >= started.Int64) {
		e.Stopped = time.Unix(0, stopped.Int64).UTC()
	}
	return e, nil
}

// Compact rolls minute buckets older than the minute retention up into
// hours and drops hours older than the hour retention, in one transaction.
func (s *Store) Compact(ctx context.Context) error {
	now := s.cfg.Now()
	cutoff := floorDiv(now.Add(-s.cfg.MinuteRetention).Unix(), 3600) * 60 // whole hours only
	drop := floorDiv(now.Add(-s.cfg.HourRetention).Unix(), 3600)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		w := newWriter(ctx, tx)
		type raw struct {
			key    rowKey
			r      row
			bounds int64
			blob   []byte
		}
		var all []raw
		err := each(ctx, tx, func(rows *sql.Rows) error {
			var x raw
			err := rows.Scan(&x.key.t, &x.key.cuj, &x.key.grp, &x.key.rev, &x.r.total, &x.r.bad, &x.r.slow, &x.bounds, &x.blob)
			all = append(all, x)
			return err
		}, `SELECT m.t, s.cuj, s.grp, s.rev, m.total, m.bad, m.slow, m.bounds, m.hist
			FROM minute m JOIN series s ON s.id = m.series WHERE m.t < ?`, cutoff)
		if err != nil {
			return err
		}
		hours := map[rowKey]row{}
		var order []rowKey
		for _, x := range all {
			b, err := w.boundsOf(x.bounds)
			if err != nil {
				return err
			}
			x.r.bounds = b
			if x.r.hist, err = decodeHist(x.blob, len(b)+1); err != nil {
				return err
			}
			k := rowKey{floorDiv(x.key.t, 60), x.key.seriesKey}
			h, seen := hours[k]
			if !seen {
				order = append(order, k)
			}
			h.add(x.r)
			hours[k] = h
		}
		for _, k := range order {
			if err := w.merge("hour", k.t, k.seriesKey, hours[k]); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM minute WHERE t < ?`, cutoff); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM minute_hour WHERE t < ?`, cutoff/60); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM hour WHERE t < ?`, drop); err != nil {
			return err
		}
		return dropErrorClasses(ctx, tx, drop)
	})
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: compacting: %w", s.cfg.Path, err)
	}
	return nil
}
