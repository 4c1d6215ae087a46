package sli

import (
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// A request observed while an interval closes can have its histogram count
// on one side of the close and its bad count on the other (Observe is two
// atomic adds). Here that happens on purpose, with the 100% failure rate that
// made an experiment read "501 of 500 requests failed": no interval and no
// window may hold more bad requests than requests, and once a good request
// arrives the held-back bad count is there.
func TestABadCountSplitByACloseNeverExceedsTheRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := spec.LoadService("../examples/chat.yaml")
		if err != nil {
			t.Fatal(err)
		}
		routes, err := match.Compile(svc)
		if err != nil {
			t.Fatal(err)
		}
		rec := New(Config{Service: svc, Routes: routes})
		cuj := routes.CUJIndex("update")
		rt := routes.Routes()[rec.cujRoutes[cuj][0]]
		observe := func(code int) {
			rec.Observe(Observation{Route: rt, Method: "POST", Code: code, Latency: time.Millisecond})
		}
		closeAfter := func(d time.Duration) { time.Sleep(d); rec.Close(time.Now()) }
		check := func(when string, d time.Duration) Counts {
			t.Helper()
			w := rec.Window(cuj, AllGroups, d)
			if w.Bad > w.Total {
				t.Errorf("%s: the last %v hold %d bad of %d requests", when, d, w.Bad, w.Total)
			}
			return w
		}

		observe(500)
		s := rec.series[rt.ID][0][0].Load()
		s.hist[0].Add(1) // a failing request, half observed: its histogram count
		closeAfter(10 * time.Second)
		s.bad.Add(1) // the other half, after the close
		check("the open interval", 5*time.Second)
		observe(500)
		closeAfter(10 * time.Second)
		check("the second interval", 10*time.Second)
		check("both intervals", 20*time.Second)

		observe(200)
		closeAfter(10 * time.Second)
		if w := check("the whole run", time.Hour); w.Total != 4 || w.Bad != 3 {
			t.Errorf("the whole run: %d bad of %d, want 3 of 4", w.Bad, w.Total)
		}
		var total, bad uint64
		for _, b := range rec.Buckets(time.Time{}) {
			if b.Bad > b.Total {
				t.Errorf("bucket at %v: %d bad of %d", b.Start, b.Bad, b.Total)
			}
			total, bad = total+b.Total, bad+b.Bad
		}
		if total != 4 || bad != 3 {
			t.Errorf("buckets: %d bad of %d, want 3 of 4", bad, total)
		}
	})
}
