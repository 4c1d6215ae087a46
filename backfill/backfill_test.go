package backfill_test

import (
	"math/big"
	"slices"
	"testing"
	"time"

	"slolab.dev/slolab/backfill"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

func delay(t *testing.T, s string) func(float64) time.Duration {
	t.Helper()
	d, err := spec.ParseDelay(s)
	if err != nil {
		t.Fatal(err)
	}
	return d.Quantile
}

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func collect(t *testing.T, cfg backfill.Config) map[string][]sli.Bucket {
	t.Helper()
	h, err := backfill.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]sli.Bucket{}
	for b := range h.Minutes() {
		out[b.CUJ] = append(out[b.CUJ], b)
	}
	return out
}

func sum(bs []sli.Bucket) (total, bad, slow uint64, hist []uint64) {
	for _, b := range bs {
		total, bad, slow = total+b.Total, bad+b.Bad, slow+b.Slow
		if hist == nil {
			hist = make([]uint64, len(b.Hist))
		}
		for i, n := range b.Hist {
			hist[i] += n
		}
	}
	return
}

// TestCountsAreExact: a day at 10.5 requests a minute holds exactly 15,120
// requests, every minute 10 or 11 of them; 0.1% failures are exactly 15 of
// them (the first n requests hold ⌊n/1000 + o⌋), spread out, never two in a
// minute; each minute's histogram adds up to its requests.
func TestCountsAreExact(t *testing.T) {
	bounds := []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond}
	got := collect(t, backfill.Config{
		CUJs: []backfill.CUJ{{
			Name: "read", PerMinute: big.NewRat(21, 2), Bad: big.NewRat(1, 1000),
			Latency:   []backfill.Part{{Quantile: delay(t, "p0=2ms p50=8ms p90=16ms p99=30ms p100=60ms"), Weight: 3}, {Quantile: delay(t, "p0=1ms p50=3ms p100=25ms"), Weight: 1}},
			Threshold: 300 * time.Millisecond,
		}},
		Bounds: bounds, From: start, Until: start.Add(24 * time.Hour), Seed: 7,
	})["read"]
	if len(got) != 1440 {
		t.Fatalf("%d minutes, want 1,440", len(got))
	}
	total, bad, slow, hist := sum(got)
	if total != 15120 || bad != 15 && bad != 16 || slow != 0 {
		t.Errorf("total %d bad %d slow %d, want 15,120, ⌊15.12 + o⌋ and 0 (the slowest request takes 60ms)", total, bad, slow)
	}
	for i, b := range got {
		if b.Total != 10 && b.Total != 11 {
			t.Errorf("minute %d holds %d requests, want 10 or 11", i, b.Total)
		}
		if b.Bad > 1 {
			t.Errorf("minute %d holds %d failures, want at most 1", i, b.Bad)
		}
		var n uint64
		for _, c := range b.Hist {
			n += c
		}
		if n != b.Total {
			t.Errorf("minute %d: histogram holds %d of %d requests", i, n, b.Total)
		}
		if !b.Start.Equal(start.Add(time.Duration(i) * time.Minute)) {
			t.Errorf("minute %d starts at %v", i, b.Start)
		}
	}
	// At or under 10ms: 50% + (2/8)·40% = 60% of the first route's
	// requests, 50% + (7/22)·50% = 65.91% of the second's, weighed 3 to 1:
	// 61.48%.
	if share := float64(hist[0]) / float64(total); share < 0.6143 || share > 0.6153 {
		t.Errorf("%.4f of requests at or under 10ms, want 0.6148", share)
	}
	if hist[3] != 0 {
		t.Errorf("%d requests above 300ms; no route reaches it", hist[3])
	}
}

// TestSlowRequestsAreThoseAboveTheThreshold: a CUJ whose latency tops out at
// 60ms with a 50ms threshold has its requests above 50ms counted slow, and
// a partial last minute holds its share of the minute.
func TestSlowRequestsAreThoseAboveTheThreshold(t *testing.T) {
	bounds := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	got := collect(t, backfill.Config{
		CUJs: []backfill.CUJ{{
			Name: "login", PerMinute: big.NewRat(600, 1),
			Latency:   []backfill.Part{{Quantile: delay(t, "uniform(40ms, 60ms)"), Weight: 1}},
			Threshold: 50 * time.Millisecond,
		}},
		Bounds: bounds, From: start, Until: start.Add(90 * time.Second),
	})["login"]
	if len(got) != 2 || got[1].Total != 300 {
		t.Fatalf("minutes %d, the last holding %d requests; want 2 and 300 (half a minute)", len(got), got[len(got)-1].Total)
	}
	for _, b := range got {
		if b.Slow*2 != b.Total || !slices.Equal(b.Hist, []uint64{b.Total / 2, b.Total / 2, 0}) {
			t.Errorf("%v: slow %d of %d, histogram %v; want half of them slow", b.Start, b.Slow, b.Total, b.Hist)
		}
	}
}

func TestRefusesNonsense(t *testing.T) {
	for name, cfg := range map[string]backfill.Config{
		"an empty span": {From: start, Until: start},
		"a negative traffic": {From: start, Until: start.Add(time.Hour),
			CUJs: []backfill.CUJ{{Name: "x", PerMinute: big.NewRat(-1, 1)}}},
		"a failure share above 1": {From: start, Until: start.Add(time.Hour),
			CUJs: []backfill.CUJ{{Name: "x", PerMinute: big.NewRat(1, 1), Bad: big.NewRat(2, 1)}}},
	} {
		if _, err := backfill.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
