package sqlite_test

import (
	"context"
	"errors"
	"iter"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// steadyMinutes yields perMinute good requests a minute for every CUJ over
// [from, until), in the fastest histogram bucket.
func steadyMinutes(cujs []string, from, until time.Time, perMinute uint64, buckets int) iter.Seq[sli.Bucket] {
	return func(yield func(sli.Bucket) bool) {
		for m := from; m.Before(until); m = m.Add(time.Minute) {
			for _, c := range cujs {
				hist := make([]uint64, buckets)
				hist[0] = perMinute
				if !yield(sli.Bucket{Start: m, CUJ: c, Group: "none", Counts: sli.Counts{Total: perMinute, Hist: hist}}) {
					return
				}
			}
		}
	}
}

func TestASyntheticHistoryIsMarkedAndNeverMixedWithMeasuredMinutes(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	now := time.Date(2026, 3, 6, 9, 30, 0, 0, time.UTC)
	s := open(t, filepath.Join(t.TempDir(), "s.db"), func() time.Time { return now })
	defer s.Close()
	syn := slo.Synthetic{From: now.Add(-3 * 24 * time.Hour), Until: now, Description: "steady 2/s, no failures, seed 1"}
	n, err := s.AddSynthetic(ctx, p.rec.Bounds(), syn, steadyMinutes([]string{"update", "read"}, syn.From, syn.Until, 60, len(p.rec.Bounds())+1))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*3*1440 {
		t.Errorf("wrote %d buckets, want %d", n, 2*3*1440)
	}
	span, err := s.Span(ctx, slo.Last(30*spec.Day, now))
	if err != nil {
		t.Fatal(err)
	}
	if !span.Start.Equal(syn.From) || span.Synthetic == nil || *span.Synthetic != syn {
		t.Errorf("span %+v, want the history from %v marked synthetic", span, syn.From)
	}
	ev, err := s.Events(ctx, slo.Last(24*time.Hour, now))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev[slo.Key{CUJ: "update", Kind: slo.Availability}]; got != (slo.Events{Total: 86_400}) {
		t.Errorf("the last day holds %+v, want 86,400 good requests", got)
	}
	// A second history over the same minutes is refused, and changes nothing.
	_, err = s.AddSynthetic(ctx, p.rec.Bounds(), syn, steadyMinutes([]string{"update"}, syn.From, syn.Until, 1, len(p.rec.Bounds())+1))
	if slolab.KindOf(err) != slolab.Conflict {
		t.Errorf("a history over stored minutes: %v, want a conflict", err)
	}
	if again, _ := s.Events(ctx, slo.Last(24*time.Hour, now)); again[slo.Key{CUJ: "update", Kind: slo.Availability}].Total != 86_400 {
		t.Error("the refused history changed the counts")
	}
}

func TestTheStoreRemembersItsSpec(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, time.Now)
	if _, _, err := s.Spec(ctx); slolab.KindOf(err) != slolab.NotFound {
		t.Errorf("an empty store's spec: %v, want not found", err)
	}
	for range 2 { // the same spec twice is one revision
		if err := s.SetSpec(ctx, p.svc); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, path, time.Now)
	defer s.Close()
	svc, _, err := s.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(spec.FormatYAML(svc)) != string(spec.FormatYAML(p.svc)) {
		t.Errorf("the spec read back differs:\n%s\nwant:\n%s", spec.FormatYAML(svc), spec.FormatYAML(p.svc))
	}
}

func TestACleanStopIsRecordedUntilTheNextStart(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), time.Now)
	defer s.Close()
	t0 := time.Date(2026, 3, 6, 9, 30, 0, 0, time.UTC)
	check := func(want time.Time) {
		t.Helper()
		ext, err := s.Extent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ext.Stopped.Equal(want) {
			t.Errorf("stopped %v, want %v", ext.Stopped, want)
		}
	}
	check(time.Time{})
	if err := errors.Join(s.Started(ctx, t0), s.Stopped(ctx, t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	check(t0.Add(time.Minute))
	if err := s.Started(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	check(time.Time{})
}

// BenchmarkSyntheticMonth writes what the lab writes at its start: 30 days
// of minutes for six CUJs (259,200 buckets).
func BenchmarkSyntheticMonth(b *testing.B) {
	ctx := context.Background()
	bounds := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
		250 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond, 800 * time.Millisecond, time.Second, 2 * time.Second}
	until := time.Date(2026, 3, 6, 9, 30, 0, 0, time.UTC)
	for b.Loop() {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "s.db")})
		if err != nil {
			b.Fatal(err)
		}
		syn := slo.Synthetic{From: until.Add(-30 * spec.Day), Until: until}
		if _, err := s.AddSynthetic(ctx, bounds, syn, steadyMinutes([]string{"login", "send", "update", "read", "upload", "task"}, syn.From, syn.Until, 180, len(bounds)+1)); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
