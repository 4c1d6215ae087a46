package slo_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// burst is four days of 1,000 update requests a minute at 99.9%, with a
// burn rate of 20 (20 failures a minute) for 90 minutes on the last day.
func burst(t *testing.T) (*slo.History, time.Time, time.Time) {
	t.Helper()
	end := base.Add(4 * spec.Day)
	start := base.Add(3*spec.Day + 6*time.Hour)
	b := slo.NewHistoryBuilder(base, end)
	for m := base; m.Before(end); m = m.Add(time.Minute) {
		c := slo.Counts{Total: 1000}
		if !m.Before(start) && m.Before(start.Add(90*time.Minute)) {
			c.Bad = 20
		}
		b.AddCounts("update", m, c)
	}
	h, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return h, start, end
}

// TestReplay: at burn rate 20 the hour reaches 14.4 once 44 of its minutes
// burn (44 × 20/60 ≥ 14.4 > 43 × 20/60); after the burst the five-minute
// window drops below 14.4 when only 3 of its minutes burn (3 × 20/5 = 12).
// The 6h window never reaches 6 (90 × 20/360 = 5), so nothing else fires.
func TestReplay(t *testing.T) {
	svc := service(t, chat)
	h, start, end := burst(t)
	bt := slo.Replay(svc, h, base.Add(3*spec.Day), end, time.Minute)
	resolved := start.Add(92 * time.Minute)
	want := []slo.Episode{{
		CUJ: "update", Kind: slo.Availability, Severity: "page", Long: spec.Duration(time.Hour), Short: spec.Duration(5 * time.Minute),
		Factor: "14.4", Fired: start.Add(44 * time.Minute), Resolved: &resolved, PeakBurn: 20,
	}}
	if !reflect.DeepEqual(bt.Episodes, want) {
		t.Errorf("episodes:\n%+v\nwant:\n%+v", bt.Episodes, want)
	}
	if s := bt.Summary[0]; s.Severity != "page" || s.Episodes != 1 || time.Duration(s.Firing) != 48*time.Minute {
		t.Errorf("summary %+v, want one page firing for 48m", s)
	}
}

func TestTrackerTransitions(t *testing.T) {
	svc := service(t, chat)
	h, start, _ := burst(t)
	tr := slo.NewTracker()
	var got []string
	for _, m := range []time.Duration{43, 44, 60, 91, 92, 93} {
		at := start.Add(m * time.Minute)
		st, err := slo.Evaluate(context.Background(), svc, h, at)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range tr.Observe(st) {
			verb := "resolved"
			if x.Firing {
				verb = "fired"
			}
			got = append(got, x.At.Sub(start).String()+" "+x.Key.String()+" "+x.Alert.String()+" "+verb)
		}
		if m == 60 && len(tr.Firing()) != 1 {
			t.Errorf("at 60m, %d alerts firing, want 1", len(tr.Firing()))
		}
	}
	want := []string{
		"44m0s update/availability page: 1h/5m ≥ 14.4 fired",
		"1h32m0s update/availability page: 1h/5m ≥ 14.4 resolved",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("transitions:\n%q\nwant:\n%q", got, want)
	}
}
