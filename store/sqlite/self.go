package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// What a store knows about itself: the spec it was written under, the
// minutes that were generated rather than measured, and whether the last
// proxy that wrote it stopped cleanly.

var _ slo.Spanner = (*Store)(nil)

// SetSpec records the spec a proxy (or the lab) writes the store under, as
// YAML, unless it is the one recorded last; Spec reads it back, so the SLO
// commands need --store alone.
func (s *Store) SetSpec(ctx context.Context, svc *spec.Service) error {
	doc := spec.FormatYAML(svc)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var last []byte
		err := tx.QueryRowContext(ctx, `SELECT document FROM spec_revision ORDER BY id DESC LIMIT 1`).Scan(&last)
		if err == nil && bytes.Equal(last, doc) {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO spec_revision (written, service, document) VALUES (?, ?, ?)`,
			s.cfg.Now().UnixNano(), svc.Name, doc)
		return err
	})
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: recording the spec: %w", s.cfg.Path, err)
	}
	return nil
}

// Spec returns the spec recorded last and when it was written. A store no
// proxy wrote under a spec (an older slolab's, or an empty one) gives a
// NotFound error that says so.
func (s *Store) Spec(ctx context.Context) (*spec.Service, time.Time, error) {
	var written int64
	var doc []byte
	err := s.db.QueryRowContext(ctx, `SELECT written, document FROM spec_revision ORDER BY id DESC LIMIT 1`).Scan(&written, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, slolab.Errorf(slolab.NotFound, "store %s records no spec (a proxy of slolab before 0.x, or none, wrote it): give --spec", s.cfg.Path)
	}
	if err != nil {
		return nil, time.Time{}, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	f, err := spec.Parse(s.cfg.Path+"#spec", doc)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store %s: the recorded spec does not read back: %w", s.cfg.Path, err)
	}
	svc, err := f.Service()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("store %s: the recorded spec: %w", s.cfg.Path, err)
	}
	return svc, time.Unix(0, written).UTC(), nil
}

// AddSynthetic writes generated minutes, marked as such: buckets (at most
// one per minute and series, every one starting in [syn.From, syn.Until),
// the minute syn.From falls in included) go
// into the minute table in one transaction, and syn into the synthetic
// table. The minutes must be empty: the store refuses to mix generated
// counts into measured ones. bounds are the buckets' histogram bounds.
func (s *Store) AddSynthetic(ctx context.Context, bounds []time.Duration, syn slo.Synthetic, buckets iter.Seq[sli.Bucket]) (int, error) {
	a, z := minutes(slo.Range{From: syn.From, To: syn.Until})
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM minute WHERE t >= ? AND t <= ?`, a, z).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return slolab.Errorf(slolab.Conflict, "it already holds %d measured minutes between %s and %s", taken,
				syn.From.UTC().Format(time.RFC3339), syn.Until.UTC().Format(time.RFC3339))
		}
		w := newWriter(ctx, tx)
		bid, err := w.boundsID(bounds)
		if err != nil {
			return err
		}
		ins := newBatch(ctx, tx, `INSERT INTO minute (t, series, total, bad, slow, bounds, hist) VALUES `, 7)
		type hourKey struct{ t, series int64 }
		hours := map[hourKey]*row{}
		var order []hourKey
		for b := range buckets {
			if b.Start.Before(slo.Align(syn.From, time.Minute)) || !b.Start.Before(syn.Until) {
				return fmt.Errorf("a synthetic bucket at %s lies outside %s..%s", b.Start, syn.From, syn.Until)
			}
			sid, err := w.seriesID(seriesKey{b.CUJ, b.Group, b.Revision})
			if err != nil {
				return err
			}
			t := floorDiv(b.Start.Unix(), 60)
			if err := ins.add(t, sid, b.Total, b.Bad, b.Slow, bid, encodeHist(b.Hist)); err != nil {
				return err
			}
			hk := hourKey{floorDiv(t, 60), sid}
			h := hours[hk]
			if h == nil {
				h = &row{}
				hours[hk] = h
				order = append(order, hk)
			}
			h.total, h.bad, h.slow = h.total+b.Total, h.bad+b.Bad, h.slow+b.Slow
			n++
		}
		if err := ins.flush(); err != nil {
			return err
		}
		// The hours' sums: the first and last hour may hold measured
		// minutes already, so add rather than insert.
		for _, hk := range order {
			h := hours[hk]
			if _, err := tx.ExecContext(ctx, addToHour, hk.t, hk.series, h.total, h.bad, h.slow); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO synthetic (from_t, until_t, description) VALUES (?, ?, ?)`,
			syn.From.UnixNano(), syn.Until.UnixNano(), syn.Description)
		return err
	})
	if err != nil {
		return 0, slolab.Errorf(slolab.KindOf(err), "store %s: writing a synthetic history: %w", s.cfg.Path, err)
	}
	return n, nil
}

// batch inserts rows many at a time: one statement per batchRows rows
// instead of one per row, which is most of the cost of writing a long
// synthetic history.
type batch struct {
	ctx    context.Context
	tx     *sql.Tx
	prefix string
	cols   int
	args   []any
	stmt   *sql.Stmt // for full batches
}

const batchRows = 256

func newBatch(ctx context.Context, tx *sql.Tx, prefix string, cols int) *batch {
	return &batch{ctx: ctx, tx: tx, prefix: prefix, cols: cols}
}

func (b *batch) query(rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", b.cols), ", ") + ")"
	return b.prefix + strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

func (b *batch) add(values ...any) error {
	b.args = append(b.args, values...)
	if len(b.args) < batchRows*b.cols {
		return nil
	}
	if b.stmt == nil {
		var err error
		if b.stmt, err = b.tx.PrepareContext(b.ctx, b.query(batchRows)); err != nil {
			return err
		}
	}
	_, err := b.stmt.ExecContext(b.ctx, b.args...)
	b.args = b.args[:0]
	return err
}

// flush writes the rows left and releases the statement.
func (b *batch) flush() error {
	var err error
	if len(b.args) > 0 {
		_, err = b.tx.ExecContext(b.ctx, b.query(len(b.args)/b.cols), b.args...)
		b.args = b.args[:0]
	}
	if b.stmt != nil {
		err = errors.Join(err, b.stmt.Close())
		b.stmt = nil
	}
	return err
}

// Synthetic lists the synthetic stretches of history, oldest first.
func (s *Store) Synthetic(ctx context.Context) ([]slo.Synthetic, error) {
	var out []slo.Synthetic
	err := each(ctx, s.db, func(rows *sql.Rows) error {
		var from, until int64
		var x slo.Synthetic
		if err := rows.Scan(&from, &until, &x.Description); err != nil {
			return err
		}
		x.From, x.Until = time.Unix(0, from).UTC(), time.Unix(0, until).UTC()
		out = append(out, x)
		return nil
	}, `SELECT from_t, until_t, description FROM synthetic ORDER BY from_t, id`)
	if err != nil {
		return nil, slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	return out, nil
}

// Span implements slo.Spanner: the store holds events from its oldest
// bucket on; the synthetic part is the newest synthetic stretch.
func (s *Store) Span(ctx context.Context, _ slo.Range) (slo.Span, error) {
	ext, err := s.Extent(ctx)
	if err != nil {
		return slo.Span{}, err
	}
	syn, err := s.Synthetic(ctx)
	if err != nil {
		return slo.Span{}, err
	}
	sp := slo.Span{Start: ext.First}
	if len(syn) > 0 {
		sp.Synthetic = &syn[len(syn)-1]
	}
	return sp, nil
}

// Started records that a proxy began writing the store; Stopped that it
// stopped cleanly after writing everything it counted up to at (its last
// interval included). Extent.Stopped reports the clean stop until the next
// start.
func (s *Store) Started(ctx context.Context, at time.Time) error {
	return s.setMeta(ctx, "started", at.UnixNano())
}

// Stopped records a clean stop at at; see Started.
func (s *Store) Stopped(ctx context.Context, at time.Time) error {
	return s.setMeta(ctx, "stopped", at.UnixNano())
}

func (s *Store) setMeta(ctx context.Context, key string, v int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, v)
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	return nil
}
