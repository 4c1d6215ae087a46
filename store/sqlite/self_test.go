package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"path/filepath"
	"strings"
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

// BenchmarkStatusOverAMonth judges the six SLO pairs of a chat-like service
// over a store holding the lab's synthetic month: what the lab's dashboard
// does each time the store's instant moves.
func BenchmarkStatusOverAMonth(b *testing.B) {
	ctx := context.Background()
	bounds := []time.Duration{5 * time.Millisecond, 300 * time.Millisecond, time.Second}
	until := time.Date(2026, 3, 6, 9, 30, 0, 0, time.UTC)
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "s.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cujs := []string{"login", "send", "update", "read", "upload", "task"}
	syn := slo.Synthetic{From: until.Add(-30 * spec.Day), Until: until}
	if _, err := s.AddSynthetic(ctx, bounds, syn, steadyMinutes(cujs, syn.From, syn.Until, 180, len(bounds)+1)); err != nil {
		b.Fatal(err)
	}
	var text strings.Builder
	text.WriteString("apiVersion: slolab.dev/v1\nkind: Service\nmetadata: {name: chat}\nspec:\n  cujs:\n")
	for _, c := range cujs {
		fmt.Fprintf(&text, "    - {name: %s, owner: o, routes: [\"GET /%s\"], availability: {objective: 99.9%%}, latency: {threshold: 300ms, objective: 99%%}}\n", c, c)
	}
	f, err := spec.Parse("chat.yaml", []byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := slo.Evaluate(ctx, f.Services[0], s, until); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEventsSumWholeHoursAndEdgeMinutesExactly: a window's events come from
// the hourly sums of its whole hours and the minute buckets at its ends;
// over random windows, after minutes are added to twice (the flusher's
// merge) and after a synthetic history, they equal the plain sum of the
// minutes.
func TestEventsSumWholeHoursAndEdgeMinutesExactly(t *testing.T) {
	ctx := context.Background()
	p := newProxy(t)
	t0 := time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)
	s := open(t, filepath.Join(t.TempDir(), "s.db"), func() time.Time { return t0.Add(4 * 24 * time.Hour) })
	defer s.Close()
	nb := len(p.rec.Bounds()) + 1
	naive := map[int64]uint64{} // minute → total of update
	syn := slo.Synthetic{From: t0, Until: t0.Add(24*time.Hour + 17*time.Minute)}
	if _, err := s.AddSynthetic(ctx, p.rec.Bounds(), syn, steadyMinutes([]string{"update"}, syn.From, syn.Until, 7, nb)); err != nil {
		t.Fatal(err)
	}
	for m := syn.From; m.Before(syn.Until); m = m.Add(time.Minute) {
		naive[m.Unix()/60] += 7
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for pass := range 2 {
		var bs []sli.Bucket
		for m := syn.Until; m.Before(t0.Add(3 * 24 * time.Hour)); m = m.Add(time.Minute) {
			n := rng.Uint64N(20)
			hist := make([]uint64, nb)
			hist[0] = n
			bs = append(bs, sli.Bucket{Start: m, CUJ: "update", Group: "none", Counts: sli.Counts{Total: n, Bad: n / 3, Hist: hist}})
			naive[m.Unix()/60] += n
		}
		if err := s.Add(ctx, p.rec.Bounds(), bs, t0.Add(3*24*time.Hour)); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
	}
	for range 300 {
		from := t0.Add(time.Duration(rng.Int64N(3*24*60)) * time.Minute)
		to := from.Add(time.Duration(rng.Int64N(2*24*60)) * time.Minute)
		var want uint64
		for m := from.Unix() / 60; m < to.Unix()/60; m++ {
			want += naive[m]
		}
		got, err := s.Events(ctx, slo.Range{From: from, To: to})
		if err != nil {
			t.Fatal(err)
		}
		if g := got[slo.Key{CUJ: "update", Kind: slo.Availability}].Total; g != want {
			t.Fatalf("%v..%v: %d requests, want %d", from, to, g, want)
		}
	}
}
