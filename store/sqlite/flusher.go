package sqlite

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/sli"
)

// Recorder is what a Flusher reads: closed intervals of the proxy's
// recorder. *sli.Recorder implements it.
type Recorder interface {
	// Buckets returns closed intervals starting at or after since.
	Buckets(since time.Time) []sli.Bucket
	// Closed returns the end of the last closed interval.
	Closed() time.Time
	// Close closes every interval that ends by now.
	Close(now time.Time)
	Interval() time.Duration
	Bounds() []time.Duration
	// Held and Between read the closed intervals still in memory, for
	// Flusher.Events.
	Held() (from, to time.Time)
	Between(from, to time.Time) map[string]sli.Counts
}

var _ Recorder = (*sli.Recorder)(nil)

// ErrorClasses is what a Flusher reads of a proxy's error classes.
// *errclass.Classifier implements it.
type ErrorClasses interface {
	// Changes returns the classes seen since the last call, with their
	// counts since then.
	Changes() []errclass.Class
	// Restore gives back changes that could not be written.
	Restore([]errclass.Class)
}

var _ ErrorClasses = (*errclass.Classifier)(nil)

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	// Every is how often closed intervals are written (default: every
	// interval of the recorder, 10s). It is rounded up to whole intervals,
	// and each flush runs as the intervals close, on the boundaries of
	// Every since the Unix epoch: a crash loses the interval still open,
	// plus the one being written if it strikes during the flush.
	Every time.Duration
	// CompactEvery is how often old minutes are rolled up (default 1h).
	CompactEvery time.Duration
	// Classes, when set, are the error classes written with every flush.
	Classes ErrorClasses
	Now     func() time.Time
	Logger  *slog.Logger
}

func (c *FlusherConfig) defaults(interval time.Duration) {
	if c.Every <= interval {
		c.Every = interval
	}
	c.Every = (c.Every + interval - 1) / interval * interval
	if c.CompactEvery == 0 {
		c.CompactEvery = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Flusher writes a recorder's closed intervals into a Store.
//
// Each flush takes the intervals closed since the previous one, so nothing
// is written twice; an interval is only written once closed, so nothing is
// written half. A flush that fails is retried with the same intervals at
// the next tick (the recorder keeps hours of them). A restarted proxy has a
// new, empty recorder: its flusher starts from nothing and adds to the
// minutes already stored, so a restart continues where it stopped and
// never counts a request twice.
type Flusher struct {
	cfg   FlusherConfig
	store *Store
	rec   Recorder

	mu    sync.Mutex // serialises flushes: two at once would write the same intervals twice
	since time.Time  // everything before this has been written
}

// NewFlusher returns a flusher of rec into s.
func NewFlusher(s *Store, rec Recorder, cfg FlusherConfig) *Flusher {
	cfg.defaults(rec.Interval())
	return &Flusher{cfg: cfg, store: s, rec: rec}
}

// Flush writes the intervals closed since the last flush. It is safe to
// call while Run is flushing too.
func (f *Flusher) Flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flush(ctx)
}

func (f *Flusher) flush(ctx context.Context) error {
	if f.cfg.Classes != nil {
		changes := f.cfg.Classes.Changes()
		if err := f.store.AddErrorClasses(ctx, changes); err != nil {
			f.cfg.Classes.Restore(changes) // written with the next flush
			return err
		}
	}
	until := f.rec.Closed()
	if !until.After(f.since) {
		return nil
	}
	var keep []sli.Bucket
	for _, b := range f.rec.Buckets(f.since) {
		if b.Start.Before(until) { // intervals closed after Closed() wait for the next flush
			keep = append(keep, b)
		}
	}
	start := f.cfg.Now()
	if err := f.store.Add(ctx, f.rec.Bounds(), keep, until); err != nil {
		return err
	}
	f.cfg.Logger.Debug("store flushed", "until", until, "buckets", len(keep), "took", f.cfg.Now().Sub(start))
	f.since = until
	return nil
}

// Final closes the interval still open and writes it with everything not yet
// written. Call it once the proxy has stopped serving: requests observed
// afterwards are not stored.
func (f *Flusher) Final(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rec.Close(f.cfg.Now().Add(f.rec.Interval()))
	return f.flush(ctx)
}

// Run flushes as the intervals close, every cfg.Every on its boundaries
// (closing them itself rather than waiting for the recorder's own timer),
// and compacts every cfg.CompactEvery, until ctx ends. It does not flush at
// the end: call Final after the proxy stopped.
func (f *Flusher) Run(ctx context.Context) {
	compact := time.NewTicker(f.cfg.CompactEvery)
	defer compact.Stop()
	if err := f.store.Compact(ctx); err != nil {
		f.cfg.Logger.Warn("store compaction failed", "err", err)
	}
	every := int64(f.cfg.Every)
	for {
		now := f.cfg.Now()
		next := time.Unix(0, (now.UnixNano()/every+1)*every)
		flush := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			flush.Stop()
			return
		case <-flush.C:
			f.rec.Close(f.cfg.Now())
			if err := f.Flush(ctx); err != nil && ctx.Err() == nil {
				f.cfg.Logger.Warn("store flush failed; retrying at the next boundary", "err", err)
			}
		case <-compact.C:
			flush.Stop()
			if err := f.store.Compact(ctx); err != nil && ctx.Err() == nil {
				f.cfg.Logger.Warn("store compaction failed", "err", err)
			}
		}
	}
}
