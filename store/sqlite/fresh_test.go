package sqlite_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/store/sqlite"
)

// TestFreshEventsCountEveryRequestOnceWhateverHasBeenFlushed: the flusher's
// Events reads the store and the recorder together. Over every range of
// whole recorder intervals, before any flush, after a flush in the middle of
// a minute and with an unflushed tail, it counts exactly the requests served
// in that range; and a reused store's earlier minutes are read from the
// store. The proxy starts in the middle of a minute, so that minute is
// partly flushed before it ends.
func TestFreshEventsCountEveryRequestOnceWhateverHasBeenFlushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now() // midnight: a whole minute
		s := open(t, filepath.Join(t.TempDir(), "slolab.db"), time.Now)
		defer s.Close()
		bounds := newProxy(t).rec.Bounds()
		// An earlier proxy stored ten minutes of update requests: 100 a
		// minute, 3 failing, none slow.
		var earlier []sli.Bucket
		for m := t0.Add(-10 * time.Minute); m.Before(t0); m = m.Add(time.Minute) {
			hist := make([]uint64, len(bounds)+1)
			hist[0] = 100
			earlier = append(earlier, sli.Bucket{Start: m, CUJ: "update", Group: "none", Counts: sli.Counts{Total: 100, Bad: 3, Hist: hist}})
		}
		if err := s.Add(context.Background(), bounds, earlier, t0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second) // this proxy starts in the middle of a minute
		p := newProxy(t)
		fl := sqlite.NewFlusher(s, p.rec, sqlite.FlusherConfig{})

		served := map[time.Time][]int{} // interval start → requests
		n := 0
		serveFor := func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				n++
				p.serve(n)
				at := slo.Align(time.Now(), p.rec.Interval())
				served[at] = append(served[at], n)
				time.Sleep(700 * time.Millisecond)
				p.rec.Close(time.Now())
			}
		}
		truth := func(from, to time.Time) map[slo.Key]slo.Events {
			out := map[slo.Key]slo.Events{}
			for at, reqs := range served {
				if at.Before(from) || !at.Before(to) {
					continue
				}
				for _, i := range reqs {
					for k, e := range expected(i, i) {
						out[k] = out[k].Add(e)
					}
				}
			}
			return out
		}
		check := func(when string) {
			t.Helper()
			held, end := p.rec.Held()
			if got := fl.Instant(); !got.Equal(end) {
				t.Fatalf("%s: instant %v, want the end of the last closed interval %v", when, got, end)
			}
			ranges := 0
			for a := held; a.Before(end); a = a.Add(p.rec.Interval()) {
				for b := a.Add(p.rec.Interval()); !b.After(end); b = b.Add(p.rec.Interval()) {
					ranges++
					got, err := fl.Events(context.Background(), slo.Range{From: a, To: b})
					if err != nil {
						t.Fatal(err)
					}
					if want := truth(a, b); !reflect.DeepEqual(nonZero(got), want) {
						t.Fatalf("%s: events over [%v, %v) = %v, want %v", when, a.Sub(t0), b.Sub(t0), nonZero(got), want)
					}
				}
			}
			// Ranges reaching back into the earlier proxy's minutes.
			for back := 1; back <= 10; back++ {
				from := t0.Add(-time.Duration(back) * time.Minute)
				got, err := fl.Events(context.Background(), slo.Range{From: from, To: end})
				if err != nil {
					t.Fatal(err)
				}
				want := truth(t0, end)
				for _, k := range []slo.Key{{CUJ: "update", Kind: slo.Availability}, {CUJ: "update", Kind: slo.Latency}} {
					e := slo.Events{Total: uint64(100 * back)}
					if k.Kind == slo.Availability {
						e.Bad = uint64(3 * back)
					}
					want[k] = want[k].Add(e)
				}
				if !reflect.DeepEqual(nonZero(got), want) {
					t.Fatalf("%s: events over the last %d minutes before the start and since = %v, want %v", when, back, nonZero(got), want)
				}
			}
			t.Logf("%s: %d ranges exact", when, ranges)
		}

		serveFor(12 * time.Second)
		check("before any flush")
		serveFor(12 * time.Second) // t0+49s
		if err := fl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		check("flushed within the first minute")
		serveFor(36 * time.Second) // 1m25s
		if err := fl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		check("flushed in the middle of the second minute")
		serveFor(95 * time.Second) // 3m
		if err := fl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		serveFor(25 * time.Second)
		check("with 25s not flushed")
	})
}

// nonZero drops SLOs without events: the store reports every kind of every
// CUJ it has rows for.
func nonZero(m map[slo.Key]slo.Events) map[slo.Key]slo.Events {
	out := map[slo.Key]slo.Events{}
	for k, e := range m {
		if e.Total > 0 {
			out[k] = e
		}
	}
	return out
}

// TestAFreshProxyIsJudgedFromItsFirstClosedInterval: the SLO engine over the
// flusher sees a new proxy's failures ten seconds in, with nothing flushed.
func TestAFreshProxyIsJudgedFromItsFirstClosedInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "slolab.db"), time.Now)
		defer s.Close()
		p := newProxy(t)
		fl := sqlite.NewFlusher(s, p.rec, sqlite.FlusherConfig{})
		for i := 1; i <= 20; i++ {
			p.serve(i)
			time.Sleep(500 * time.Millisecond)
		}
		p.rec.Close(time.Now())
		st, err := slo.Evaluate(context.Background(), p.svc, fl, fl.Instant())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]slo.Events{}
		for _, x := range st.SLOs {
			got[x.Key().String()] = x.Events
		}
		// serve: odd requests read, even update; 7 and 14 fail; 10 and 20 (update) are slow.
		want := map[string]slo.Events{
			"update/availability": {Total: 10, Bad: 1}, "update/latency": {Total: 10, Bad: 2},
			"read/availability": {Total: 10, Bad: 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("judged at %v: %v, want %v", st.At, got, want)
		}
	})
}
