package sli_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

const small = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: update, owner: o, routes: ["POST /update", "PUT /messages/{id}"], availability: {objective: 99.9%}, latency: {threshold: 800ms, objective: 99%}}
    - {name: read, owner: o, routes: ["GET /messages"], availability: {objective: 99%}}
`

func setup(t *testing.T) (*sli.Recorder, *match.Table) {
	t.Helper()
	f, err := spec.Parse("s.yaml", []byte(small))
	if err != nil {
		t.Fatal(err)
	}
	routes, err := match.Compile(f.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	return sli.New(sli.Config{Service: f.Services[0], Routes: routes}), routes
}

func route(routes *match.Table, method, path string) *match.Route {
	return routes.Match(httptest.NewRequest(method, path, nil))
}

func TestWindowsCountExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, routes := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		upd, put := route(routes, "POST", "/update"), route(routes, "PUT", "/messages/1")
		// One request a second for 10 minutes; every 100th fails, every 50th is slow.
		for i := 1; i <= 600; i++ {
			code, lat := 200, 100*time.Millisecond
			if i%100 == 0 {
				code = 503
			}
			if i%50 == 0 {
				lat = 900 * time.Millisecond
			}
			rt := upd
			if i%2 == 0 {
				rt = put
			}
			rec.Observe(sli.Observation{Route: rt, Method: rt.Pattern[:strings.Index(rt.Pattern, " ")], Code: code, Latency: lat})
			time.Sleep(time.Second)
		}
		cuj := routes.CUJIndex("update")
		w := rec.Window(cuj, sli.AllGroups, 5*time.Minute)
		// The window is 29 closed intervals plus the open one.
		if w.Total != w.Hist[len(w.Hist)-1]+sum(w.Hist[:len(w.Hist)-1]) {
			t.Fatal("total is not the histogram's sum")
		}
		if w.Span < 290*time.Second || w.Span > 300*time.Second {
			t.Errorf("span %v, want within (290s, 300s]", w.Span)
		}
		all := rec.Window(cuj, sli.AllGroups, 6*time.Hour)
		if all.Total != 600 || all.Bad != 6 || all.Slow != 12 {
			t.Errorf("whole run: total %d bad %d slow %d, want 600 6 12", all.Total, all.Bad, all.Slow)
		}
		if other := rec.Window(routes.CUJIndex("read"), sli.AllGroups, time.Hour); other.Total != 0 {
			t.Errorf("read saw %d requests", other.Total)
		}
		cancel()
		<-done
		// Buckets give the same totals, interval by interval.
		var total, bad, slow uint64
		for _, b := range rec.Buckets(time.Time{}) {
			if b.CUJ != "update" || b.Group != "none" || b.Span != 10*time.Second {
				t.Fatalf("bucket %+v", b)
			}
			total, bad, slow = total+b.Total, bad+b.Bad, slow+b.Slow
		}
		if total != 600 || bad != 6 || slow != 12 {
			t.Errorf("buckets: total %d bad %d slow %d, want 600 6 12", total, bad, slow)
		}
	})
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

func TestTheRingKeepsSixHours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, routes := setup(t)
		rt := route(routes, "GET", "/messages")
		for range 7 * 60 { // one request a minute for seven hours
			rec.Observe(sli.Observation{Route: rt, Method: "GET", Code: 200, Latency: time.Millisecond})
			for range 6 { // close every interval, as Run does
				time.Sleep(10 * time.Second)
				rec.Close(time.Now())
			}
		}
		w := rec.Window(routes.CUJIndex("read"), sli.AllGroups, 24*time.Hour)
		if w.Total != 360 {
			t.Errorf("a 24h window holds %d requests, want the last 6h: 360", w.Total)
		}
	})
}

func TestGroupsAreMeasuredSeparately(t *testing.T) {
	rec, routes := setup(t)
	rt := route(routes, "POST", "/update")
	for i := range 100 {
		g, code := match.GroupControl, 200
		if i < 10 {
			g, code = match.GroupExperiment, 500
		}
		rec.Observe(sli.Observation{Route: rt, Group: g, Method: "POST", Code: code, Latency: time.Millisecond})
	}
	cuj := routes.CUJIndex("update")
	exp := rec.Window(cuj, int(match.GroupExperiment), time.Minute)
	ctl := rec.Window(cuj, int(match.GroupControl), time.Minute)
	if exp.Total != 10 || exp.Bad != 10 || ctl.Total != 90 || ctl.Bad != 0 {
		t.Errorf("experiment %d/%d, control %d/%d", exp.Bad, exp.Total, ctl.Bad, ctl.Total)
	}
}

func TestRevisionsAreMeasuredSeparately(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, routes := setup(t)
		upd, put := route(routes, "POST", "/update"), route(routes, "PUT", "/messages/1")
		// 40 requests over 20s: every 4th goes to the canary, and half of the
		// canary's fail; stable never fails.
		for i := range 40 {
			rev, code, rt := match.RevisionStable, 200, upd
			if i%4 == 0 {
				rev, rt = match.RevisionCanary, put
				if i%8 == 0 {
					code = 500
				}
			}
			rec.Observe(sli.Observation{Route: rt, Revision: rev, Group: match.Group(i % 2), Method: "POST", Code: code, Latency: time.Millisecond})
			time.Sleep(500 * time.Millisecond)
		}
		rec.Close(time.Now())
		cuj := routes.CUJIndex("update")
		canary := rec.RevisionWindow(cuj, match.RevisionCanary, time.Minute)
		stable := rec.RevisionWindow(cuj, match.RevisionStable, time.Minute)
		none := rec.RevisionWindow(cuj, match.RevisionNone, time.Minute)
		all := rec.Window(cuj, sli.AllGroups, time.Minute)
		got := [][3]uint64{{canary.Total, canary.Bad, canary.Slow}, {stable.Total, stable.Bad, stable.Slow}, {none.Total, none.Bad, none.Slow}, {all.Total, all.Bad, all.Slow}}
		want := [][3]uint64{{10, 5, 0}, {30, 0, 0}, {0, 0, 0}, {40, 5, 0}}
		if !slices.Equal(got, want) {
			t.Errorf("canary, stable, none, all = %v, want %v", got, want)
		}
		var perRevision [match.NumRevisions]uint64
		for _, b := range rec.Buckets(time.Time{}) {
			r, ok := match.ParseRevision(b.Revision)
			if !ok || b.CUJ != "update" {
				t.Fatalf("bucket %+v", b)
			}
			perRevision[r] += b.Total
		}
		if perRevision != [match.NumRevisions]uint64{0, 30, 10} {
			t.Errorf("buckets per revision (none, stable, canary) = %v, want [0 30 10]", perRevision)
		}
	})
}

func TestPrometheusExposition(t *testing.T) {
	rec, routes := setup(t)
	rt := route(routes, "POST", "/update")
	rec.Observe(sli.Observation{Route: rt, Method: "POST", Code: 200, Latency: 800 * time.Millisecond})
	rec.Observe(sli.Observation{Route: rt, Method: "POST", Code: 0, Latency: 801 * time.Millisecond})
	rec.Observe(sli.Observation{Route: route(routes, "GET", "/nowhere"), Method: "GET", Code: 404, Latency: time.Millisecond})
	rec.Observe(sli.Observation{Route: rt, Revision: match.RevisionCanary, Method: "POST", Code: 503, Latency: time.Millisecond})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(rec)
	// Without a split the revision label is empty, which Prometheus stores as
	// no label at all: queries written before the label existed still match.
	want := `
# HELP slolab_requests_total Requests through the slolab proxy by CUJ, route, method, status code (0: no response), client group and revision (stable or canary while the proxy splits traffic, else empty).
# TYPE slolab_requests_total counter
slolab_requests_total{code="0",cuj="update",group="none",method="POST",revision="",route="POST /update"} 1
slolab_requests_total{code="200",cuj="update",group="none",method="POST",revision="",route="POST /update"} 1
slolab_requests_total{code="404",cuj="_other",group="none",method="GET",revision="",route="_other"} 1
slolab_requests_total{code="503",cuj="update",group="none",method="POST",revision="canary",route="POST /update"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), sli.MetricRequests); err != nil {
		t.Error(err)
	}
	// The 800ms threshold is a bucket bound: exactly one request is at or under it.
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		if mf.GetName() != sli.MetricDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			// Labels come sorted: cuj, group, revision.
			if l := m.GetLabel(); l[0].GetValue() != "update" || l[2].GetValue() != "" {
				continue
			}
			for _, b := range m.GetHistogram().GetBucket() {
				if b.GetUpperBound() == 0.8 && b.GetCumulativeCount() != 1 {
					t.Errorf("le=0.8 holds %d, want 1", b.GetCumulativeCount())
				}
			}
			if m.GetHistogram().GetSampleCount() != 2 {
				t.Errorf("count %d", m.GetHistogram().GetSampleCount())
			}
		}
	}
}

func TestQuantileInterpolatesLikePrometheus(t *testing.T) {
	bounds := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second}
	hist := []uint64{50, 40, 9, 1}
	if got := sli.Quantile(bounds, hist, 0.5); got != 100*time.Millisecond {
		t.Errorf("p50 = %v", got)
	}
	if got := sli.Quantile(bounds, hist, 0.7); got != 150*time.Millisecond {
		t.Errorf("p70 = %v", got)
	}
	if got := sli.Quantile(bounds, hist, 0.999); got != time.Second {
		t.Errorf("p99.9 = %v (in +Inf: the highest bound)", got)
	}
}

// Observers, the snapshotter and readers run together; nothing is lost.
func TestConcurrentObserversLoseNothing(t *testing.T) {
	rec, routes := setup(t)
	rt := route(routes, "POST", "/update")
	cuj := routes.CUJIndex("update")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				rec.Close(time.Now().Add(time.Hour))
				if w := rec.Window(cuj, sli.AllGroups, time.Hour); w.Bad > w.Total {
					t.Errorf("bad %d > total %d", w.Bad, w.Total)
				}
			}
		}
	})
	var obs sync.WaitGroup
	for range 8 {
		obs.Go(func() {
			for i := range 5000 {
				rec.Observe(sli.Observation{Route: rt, Method: "POST", Code: 200 + 300*(i%2), Latency: time.Millisecond})
			}
		})
	}
	obs.Wait()
	close(stop)
	wg.Wait()
	w := rec.Window(cuj, sli.AllGroups, 6*time.Hour)
	if w.Total != 40_000 || w.Bad != 20_000 {
		t.Errorf("total %d bad %d, want 40000 20000", w.Total, w.Bad)
	}
}

func BenchmarkObserve(b *testing.B) {
	f, _ := spec.Parse("s.yaml", []byte(small))
	routes, _ := match.Compile(f.Services[0])
	rec := sli.New(sli.Config{Service: f.Services[0], Routes: routes})
	rt := routes.Match(httptest.NewRequest("POST", "/update", nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec.Observe(sli.Observation{Route: rt, Method: "POST", Code: 200, Latency: 120 * time.Millisecond})
		}
	})
}

// A request of a run is counted twice (the CUJ's series and the run's),
// still without an allocation once the run's series exist.
func BenchmarkObserveForARun(b *testing.B) {
	svc, _ := spec.LoadService("../examples/chat.yaml")
	routes, _ := match.Compile(svc)
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	rt := routes.Route("update", "POST /update")
	run := match.NewGrouper(&spec.Grouping{Run: "edits-1", By: "header:X-User-ID", Experiment: spec.NewRatio(1, 5)})
	o := sli.Observation{Route: rt, Group: match.GroupExperiment, Run: run, Method: "POST", Code: 200, Latency: 20 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		rec.Observe(o)
	}
}

// A run's view of a CUJ leaves out every request another run counted, even
// inside an interval both runs' requests fell in; requests of no run stay.
func TestARunsWindowLeavesOutAnotherRunsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, _ := spec.LoadService("../examples/chat.yaml")
		routes, _ := match.Compile(svc)
		rec := sli.New(sli.Config{Service: svc, Routes: routes})
		rt := routes.Route("update", "POST /update")
		first := match.NewGrouper(&spec.Grouping{Run: "first", By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2)})
		second := match.NewGrouper(&spec.Grouping{Run: "second", By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2)})
		observe := func(run *match.Grouper, g match.Group, n, bad int) {
			for i := range n {
				code := 200
				if i < bad {
					code = 500
				}
				rec.Observe(sli.Observation{Route: rt, Group: g, Run: run, Method: "POST", Code: code, Latency: time.Millisecond})
			}
		}
		time.Sleep(10*time.Second - time.Duration(time.Now().UnixNano()%int64(10*time.Second)) + time.Second)
		observe(nil, match.GroupNone, 10, 0)          // no run
		observe(first, match.GroupExperiment, 45, 45) // the first run's failures
		observe(first, match.GroupControl, 5, 0)      //
		time.Sleep(4 * time.Second)                   // the first run ends; 4 s later, in the same interval,
		observe(second, match.GroupExperiment, 34, 0) // the second begins
		observe(second, match.GroupControl, 6, 0)     //
		cuj := routes.CUJIndex("update")
		exp := rec.RunWindow("second", cuj, int(match.GroupExperiment), time.Minute)
		all := rec.RunWindow("second", cuj, sli.AllGroups, time.Minute)
		every := rec.Window(cuj, sli.AllGroups, time.Minute)
		if exp.Total != 34 || exp.Bad != 0 || all.Total != 50 || all.Bad != 0 || every.Total != 100 || every.Bad != 45 {
			t.Errorf("second run: experiment %d/%d, all %d/%d; every request %d/%d", exp.Bad, exp.Total, all.Bad, all.Total, every.Bad, every.Total)
		}
		time.Sleep(10 * time.Second)
		rec.Close(time.Now()) // closed intervals subtract the same way
		if exp := rec.RunWindow("second", cuj, int(match.GroupExperiment), time.Minute); exp.Total != 34 || exp.Bad != 0 {
			t.Errorf("after the close: %d/%d", exp.Bad, exp.Total)
		}
	})
}
