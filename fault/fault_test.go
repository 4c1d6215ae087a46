package fault_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// Every prefix of the matched stream holds floor(n·p) or floor(n·p)+1 injections.
func TestEveryPrefixIsWithinOneOfTheRate(t *testing.T) {
	rates := []spec.Ratio{spec.NewRatio(1, 1000), spec.NewRatio(1, 3), spec.NewRatio(37, 1000), spec.NewRatio(999, 1000), spec.One, spec.NewRatio(1, 7919)}
	for _, p := range rates {
		for _, seed := range []uint64{0, 1, 42, 1 << 60} {
			c := fault.NewCounter(p, seed)
			var injected uint64
			for n := uint64(1); n <= 50_000; n++ {
				if ok, k := c.Next(); ok {
					injected++
					if k != injected {
						t.Fatalf("p=%v seed=%d: injection index %d, want %d", p, seed, k, injected)
					}
				}
				lo := p.FloorMul(n)
				if injected != lo && injected != lo+1 {
					t.Fatalf("p=%v seed=%d: after %d requests %d injected, want %d or %d", p, seed, n, injected, lo, lo+1)
				}
			}
		}
	}
}

func TestConcurrentRequestsInjectExactly(t *testing.T) {
	c := fault.NewCounter(spec.NewRatio(1, 1000), 7)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 32 {
		wg.Go(func() {
			n := 0
			for range 10_000 / 32 {
				if ok, _ := c.Next(); ok {
					n++
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	for range 10_000 - 32*(10_000/32) {
		if ok, _ := c.Next(); ok {
			total++
		}
	}
	if total != 10 || c.Matched() != 10_000 || c.Injected() != 10 {
		t.Fatalf("injected %d of %d (counter says %d), want exactly 10", total, c.Matched(), c.Injected())
	}
}

func chat(t *testing.T) (*spec.Service, *match.Table) {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := match.Compile(svc)
	if err != nil {
		t.Fatal(err)
	}
	return svc, tbl
}

func rule(t *testing.T, js string) *spec.FaultRule {
	t.Helper()
	r, err := spec.ParseFaultRule("rule", []byte(js), "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// 2,000,000 requests at 0.0001% through the table: exactly 2 injected, every
// prefix within one, and requests of other routes never touched.
func TestOneInAMillionOverTwoMillionRequests(t *testing.T) {
	svc, routes := chat(t)
	reg, err := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Put(rule(t, `{"name": "u", "match": {"cuj": "update", "route": "POST /update"}, "status": 500, "rate": "0.0001%"}`)); err != nil {
		t.Fatal(err)
	}
	upd := httptest.NewRequest("POST", "/update", nil)
	other := httptest.NewRequest("PUT", "/messages/1", nil) // same CUJ, other route
	rUpd, rOther := routes.Match(upd), routes.Match(other)
	now := time.Now()
	tbl := reg.Table()
	injected := uint64(0)
	p := spec.NewRatio(1, 1_000_000)
	for n := uint64(1); n <= 2_000_000; n++ {
		if d := tbl.Decide(upd, rUpd, match.GroupNone, now); d.Terminal != nil {
			injected++
		}
		if lo := p.FloorMul(n); injected != lo && injected != lo+1 {
			t.Fatalf("after %d requests %d injected", n, injected)
		}
		if n%100 == 0 {
			if d := tbl.Decide(other, rOther, match.GroupNone, now); len(d.Injected) != 0 {
				t.Fatal("a request to another route was injected")
			}
		}
	}
	if injected != 2 {
		t.Fatalf("injected %d, want 2", injected)
	}
}

func TestALeaseLapsesByItselfAndIsReportedExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		if _, _, err := reg.Put(rule(t, `{"name": "slow", "match": {"cuj": "update"}, "delay": "1s", "ttl": "2s"}`)); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "/update", nil)
		rt := routes.Match(req)
		if d := reg.Table().Decide(req, rt, match.GroupNone, time.Now()); d.Delay != time.Second {
			t.Fatalf("delay at t=0: %v", d.Delay)
		}
		time.Sleep(1999 * time.Millisecond)
		if d := reg.Table().Decide(req, rt, match.GroupNone, time.Now()); d.Delay != time.Second {
			t.Fatalf("delay at t=1.999s: %v", d.Delay)
		}
		time.Sleep(time.Millisecond)
		// No sweep has run: the table still holds the rule, and it stops applying by itself.
		if d := reg.Table().Decide(req, rt, match.GroupNone, time.Now()); d.Delay != 0 {
			t.Fatalf("delay at t=2s: %v, want none", d.Delay)
		}
		st, _ := reg.Get("slow")
		if st.State != fault.StateExpired || st.Matched != 2 || st.Injected != 2 {
			t.Errorf("status = %s matched %d injected %d, want expired 2 2", st.State, st.Matched, st.Injected)
		}
		if _, err := reg.Renew("slow", 0); slolab.KindOf(err) != slolab.Conflict {
			t.Errorf("renewing a lapsed lease: %v, want a conflict", err)
		}
		reg.Sweep()
		if len(reg.Table().Rules()) != 0 {
			t.Error("the sweep left the lapsed rule in the table")
		}
		if got := reg.List(); len(got) != 1 || got[0].State != fault.StateExpired {
			t.Errorf("list after sweep = %+v, want the rule still listed as expired", got)
		}
	})
}

func TestRenewExtendsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		reg.Put(rule(t, `{"name": "a", "abort": true, "ttl": "2s"}`))
		time.Sleep(1500 * time.Millisecond)
		if _, err := reg.Renew("a", 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if st, _ := reg.Get("a"); st.State != fault.StateActive {
			t.Fatalf("state at 3s after a renewal at 1.5s: %s", st.State)
		}
		time.Sleep(500 * time.Millisecond)
		if st, _ := reg.Get("a"); st.State != fault.StateExpired {
			t.Fatalf("state at 3.5s: %s", st.State)
		}
	})
}

// Rules run by priority then name; delays add up; the first terminal action
// wins and later rules are not offered the request.
func TestSeveralRulesOnOneRequest(t *testing.T) {
	svc, routes := chat(t)
	reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	for _, js := range []string{
		`{"name": "b-delay", "match": {"cuj": "update"}, "delay": "100ms"}`,
		`{"name": "a-delay", "match": {"cuj": "update"}, "delay": "50ms", "patch": {"response": {"headers": {"X-A": "1"}}}}`,
		`{"name": "c-503", "match": {"cuj": "update"}, "status": 503}`,
		`{"name": "d-500", "match": {"cuj": "update"}, "status": 500}`,
		`{"name": "first", "priority": -1, "match": {"cuj": "update", "method": "PUT"}, "abort": true}`,
		`{"name": "other-cuj", "match": {"cuj": "send"}, "status": 502}`,
	} {
		if _, _, err := reg.Put(rule(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	post := httptest.NewRequest("POST", "/update", nil)
	d := reg.Table().Decide(post, routes.Match(post), match.GroupNone, time.Now())
	if d.Delay != 150*time.Millisecond || d.Terminal.Spec.Name != "c-503" || len(d.Modifiers) != 1 || names(d.Injected) != "a-delay b-delay c-503" {
		t.Errorf("POST: delay %v terminal %s modifiers %d injected %s", d.Delay, d.Terminal.Spec.Name, len(d.Modifiers), names(d.Injected))
	}
	put := httptest.NewRequest("PUT", "/messages/7", nil)
	d = reg.Table().Decide(put, routes.Match(put), match.GroupNone, time.Now())
	if d.Terminal.Spec.Name != "first" || d.Delay != 0 || names(d.Injected) != "first" {
		t.Errorf("PUT: terminal %s delay %v injected %s", d.Terminal.Spec.Name, d.Delay, names(d.Injected))
	}
	st, _ := reg.Get("d-500")
	if st.Matched != 0 {
		t.Errorf("d-500 was offered %d requests after c-503 answered them", st.Matched)
	}
}

func names(rs []*fault.Rule) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Spec.Name)
	}
	return strings.Join(out, " ")
}

func TestSwappingTablesKeepsCounters(t *testing.T) {
	svc, routes := chat(t)
	reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	reg.Put(rule(t, `{"name": "a", "match": {"cuj": "update"}, "status": 500, "rate": "50%"}`))
	req := httptest.NewRequest("POST", "/update", nil)
	rt := routes.Match(req)
	for range 3 {
		reg.Table().Decide(req, rt, match.GroupNone, time.Now())
	}
	reg.Put(rule(t, `{"name": "b", "match": {"cuj": "send"}, "abort": true}`))
	reg.Put(rule(t, `{"name": "a", "match": {"cuj": "update"}, "status": 500, "rate": "50%"}`)) // identical: keeps counting
	for range 3 {
		reg.Table().Decide(req, rt, match.GroupNone, time.Now())
	}
	if st, _ := reg.Get("a"); st.Matched != 6 || st.Injected != 3 {
		t.Errorf("after swaps: matched %d injected %d, want 6 and 3", st.Matched, st.Injected)
	}
}

func TestRulesAreCheckedAgainstTheService(t *testing.T) {
	svc, routes := chat(t)
	reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	tests := map[string]string{
		`{"name": "x", "match": {"cuj": "chekout"}, "abort": true}`:                        `fault x: match.cuj: service chat has no CUJ "chekout" (it has login, send, update, read, upload, task)`,
		`{"name": "x", "match": {"cuj": "update", "route": "GET /update"}, "abort": true}`: `fault x: match.route: CUJ update has no route "GET /update" (it has "POST /update", "PUT /messages/{id}")`,
		`{"name": "x", "abort": true, "ttl": "2h"}`:                                        `fault x: ttl: 2h exceeds the proxy's maximum lease of 1h`,
	}
	for js, want := range tests {
		_, _, err := reg.Put(rule(t, js))
		if err == nil || err.Error() != want || slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("%s:\n got %v\nwant %s", js, err, want)
		}
	}
}

func TestGroupSelectorsNeedAnActiveGrouping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		reg.Put(rule(t, `{"name": "x", "match": {"cuj": "update", "group": "experiment"}, "status": 500}`))
		req := httptest.NewRequest("POST", "/update", nil)
		req.Header.Set("X-User-ID", "u1")
		rt := routes.Match(req)
		tbl := reg.Table()
		if g, run := tbl.Group(req, rt, "", time.Now()); g != match.GroupNone || run != nil {
			t.Fatalf("group without a grouping: %v %v", g, run)
		}
		if _, err := reg.SetGrouping(&spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(999_999, 1_000_000), TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		tbl = reg.Table()
		g, _ := tbl.Group(req, rt, "", time.Now())
		if g != match.GroupExperiment {
			t.Fatalf("u1 is in %v", g)
		}
		if d := tbl.Decide(req, rt, g, time.Now()); d.Terminal == nil {
			t.Error("the experiment group was not injected")
		}
		if d := tbl.Decide(req, rt, match.GroupControl, time.Now()); d.Terminal != nil {
			t.Error("the control group was injected")
		}
		time.Sleep(time.Minute)
		if g, _ := reg.Table().Group(req, rt, "", time.Now()); g != match.GroupNone {
			t.Errorf("group after the grouping's lease: %v", g)
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	svc, _ := spec.LoadService("../examples/chat.yaml")
	routes, _ := match.Compile(svc)
	reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	for i := range 20 {
		r, _ := spec.ParseFaultRule("b", []byte(`{"match": {"cuj": "upload"}, "status": 500, "rate": "1%"}`), "idle-"+string(rune('a'+i)))
		reg.Put(r)
	}
	r, _ := spec.ParseFaultRule("b", []byte(`{"match": {"cuj": "update"}, "status": 500, "rate": "0.1%"}`), "active")
	reg.Put(r)
	req := httptest.NewRequest("POST", "/update", nil)
	rt := routes.Match(req)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		reg.Table().Decide(req, rt, match.GroupNone, now)
	}
}

// A fleet member applies a rule another member set: the same incarnation
// keeps counting and takes the new lease end, even after lapsing here; a
// new incarnation counts afresh.
func TestApplyKeepsAnIncarnationsCountersAndTakesItsLeaseEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		lapses := 0
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, Lapsed: func(fault.Lapse) { lapses++ }})
		r := rule(t, `{"name": "a", "match": {"cuj": "update"}, "status": 500, "rate": "50%", "ttl": "10s"}`)
		created := time.Now().Add(-time.Minute) // made elsewhere, a minute ago
		st, err := reg.Apply(r, created, time.Now().Add(2*time.Second))
		if err != nil || !st.Created.Equal(created) || st.State != fault.StateActive {
			t.Fatalf("apply: %+v %v", st, err)
		}
		req := httptest.NewRequest("POST", "/update", nil)
		rt := routes.Match(req)
		for range 4 {
			reg.Table().Decide(req, rt, match.GroupNone, time.Now())
		}
		time.Sleep(3 * time.Second) // the lease lapsed here
		if st, _ := reg.Get("a"); st.State != fault.StateExpired {
			t.Fatalf("after the lease end: %s", st.State)
		}
		reg.Sweep()
		// The same lapsed lease again (a full-state sync) is no new lapse.
		if _, err := reg.Apply(r, created, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		reg.Sweep()
		if lapses != 1 {
			t.Errorf("the lapse was logged %d times, want once", lapses)
		}
		// Renewed just in time on another member: the same incarnation again.
		st, err = reg.Apply(rule(t, `{"name": "a", "match": {"cuj": "update"}, "status": 500, "rate": "50%", "ttl": "10s"}`), created, time.Now().Add(10*time.Second))
		if err != nil || st.State != fault.StateActive || st.Matched != 4 || st.Injected != 2 {
			t.Fatalf("renewed elsewhere: %+v %v, want active with 4 matched and 2 injected", st, err)
		}
		// The stream goes on where it was: at 50%, request 5 passes and 6 is injected.
		d5 := reg.Table().Decide(req, rt, match.GroupNone, time.Now())
		d6 := reg.Table().Decide(req, rt, match.GroupNone, time.Now())
		if d5.Terminal != nil || d6.Terminal == nil {
			t.Errorf("requests 5 and 6 after the re-apply: injected %v and %v, want false and true", d5.Terminal != nil, d6.Terminal != nil)
		}
		st, _ = reg.Apply(r, created.Add(time.Second), time.Now().Add(10*time.Second))
		if st.Matched != 0 || st.Injected != 0 {
			t.Errorf("a new incarnation: matched %d injected %d, want a fresh count", st.Matched, st.Injected)
		}
	})
}

// A fleet member applies a run's grouping another member set: it takes the
// absolute lease end, lapses with it (logged once), holds again when
// renewed elsewhere, and keeps the registry's rule that a live run's CUJ is
// its own.
func TestApplyGroupingTakesTheLeaseEndAndKeepsEachRunsCUJs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		var lapses []fault.Lapse
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, Lapsed: func(l fault.Lapse) { lapses = append(lapses, l) }})
		a := &spec.Grouping{Run: "a", CUJs: []string{"update"}, By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: time.Minute}
		if _, err := reg.ApplyGrouping(a, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		runOf := func(method, path string) string {
			req := httptest.NewRequest(method, path, nil)
			req.Header.Set("X-User-ID", "u1")
			if _, g := reg.Table().Group(req, routes.Match(req), "", time.Now()); g != nil {
				return g.Run()
			}
			return ""
		}
		if got := runOf("POST", "/update"); got != "a" {
			t.Fatalf("update is grouped by %q under run a's applied grouping", got)
		}
		b := &spec.Grouping{Run: "b", CUJs: []string{"update", "login"}, By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: time.Minute}
		if _, err := reg.ApplyGrouping(b, time.Now().Add(time.Minute)); slolab.KindOf(err) != slolab.Conflict || !strings.HasPrefix(err.Error(), "CUJ update is held by run a until ") {
			t.Errorf("run b on a's CUJ while a is live: %v", err)
		}
		if len(reg.Groupings()) != 1 {
			t.Errorf("a refused grouping was kept: %+v", reg.Groupings())
		}

		time.Sleep(time.Second)
		reg.Sweep()
		if got := runOf("POST", "/update"); got != "" {
			t.Fatalf("the grouping outlived its lease: update is grouped by %q", got)
		}
		if len(lapses) != 1 || lapses[0].Grouping == nil || lapses[0].Grouping.Grouping.Run != "a" {
			t.Fatalf("lapses after a's lease: %+v", lapses)
		}
		// The same lapsed lease again (a full-state sync) is no new lapse.
		if _, err := reg.ApplyGrouping(a, time.Now()); err != nil {
			t.Fatal(err)
		}
		reg.Sweep()
		if len(lapses) != 1 {
			t.Errorf("the same lapse was logged %d times", len(lapses))
		}
		// Renewed on another member: a holds again, and lapses again later.
		st, err := reg.ApplyGrouping(a, time.Now().Add(time.Minute))
		if err != nil || !st.Active || runOf("POST", "/update") != "a" {
			t.Errorf("re-applied grouping: %+v %v", st, err)
		}
		// A run whose lease already ended conflicts with nothing: it is held, lapsed.
		if st, err := reg.ApplyGrouping(b, time.Now()); err != nil || st.Active {
			t.Errorf("run b applied after its lease: %+v %v", st, err)
		}
		c := &spec.Grouping{Run: "c", CUJs: []string{"login"}, By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: time.Minute}
		if _, err := reg.ApplyGrouping(c, time.Now().Add(time.Minute)); err != nil {
			t.Errorf("run c on its own CUJ: %v", err)
		}
		if got := runOf("POST", "/login"); got != "c" {
			t.Errorf("login is grouped by %q, want run c", got)
		}
		time.Sleep(time.Minute)
		reg.Sweep()
		if len(lapses) != 4 { // a and c now, b once
			t.Errorf("lapses: %d, want 4", len(lapses))
		}
		if _, err := reg.ApplyGrouping(&spec.Grouping{Run: "d", By: "client-ip", TTL: 48 * time.Hour}, time.Now().Add(time.Hour)); slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("a grouping past the maximum lease: %v", err)
		}
	})
}

// Runs hold groupings on their own CUJs at once; one that would share a CUJ
// with another run's live grouping is a conflict; each is renewed and
// removed by its run's name.
func TestRunsHoldGroupingsOnTheirOwnCUJs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, routes := chat(t)
		reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		put := func(run string, cujs ...string) error {
			_, err := reg.SetGrouping(&spec.Grouping{Run: run, CUJs: cujs, By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: time.Minute})
			return err
		}
		if err := put("a", "update"); err != nil {
			t.Fatal(err)
		}
		if err := put("b", "login", "read"); err != nil {
			t.Fatal(err)
		}
		err := put("c", "read")
		if slolab.KindOf(err) != slolab.Conflict || !strings.HasPrefix(err.Error(), "CUJ read is held by run b until ") {
			t.Errorf("a third run on read: %v", err)
		}
		if err := put("a", "update", "send"); err != nil { // a run replaces its own
			t.Errorf("run a again: %v", err)
		}
		if err := put("d", "nosuch"); slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("an unknown CUJ: %v", err)
		}
		tbl := reg.Table()
		req := httptest.NewRequest("POST", "/update", nil)
		req.Header.Set("X-User-ID", "u1")
		if _, run := tbl.Group(req, routes.Match(req), "", time.Now()); run == nil || run.Run() != "a" {
			t.Errorf("update is grouped by %v, want run a", run)
		}
		if _, err := reg.Grouping(""); slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("the only grouping of two: %v", err)
		}
		if !reg.ClearGrouping("b") || len(reg.Groupings()) != 1 {
			t.Errorf("after clearing b: %+v", reg.Groupings())
		}
		if err := put("c", "read"); err != nil {
			t.Errorf("read after b left: %v", err)
		}
		time.Sleep(time.Minute)
		if _, run := reg.Table().Group(req, routes.Match(req), "", time.Now()); run != nil {
			t.Errorf("after the lease: %v", run.Run())
		}
	})
}

// A rule on another route of the request's own CUJ, and one on another
// CUJ, cost a request nothing: it allocates nothing, and neither rule is
// offered it.
func TestRulesOnOtherRoutesCostARequestNothing(t *testing.T) {
	svc, routes := chat(t)
	reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	for _, js := range []string{
		`{"name": "same-cuj", "match": {"cuj": "update", "route": "PUT /messages/{id}"}, "delay": "1ms"}`,
		`{"name": "other-cuj", "match": {"cuj": "send"}, "status": 500}`,
	} {
		if _, _, err := reg.Put(rule(t, js)); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest("POST", "/update", nil)
	rt := routes.Match(req)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		tbl := reg.Table()
		g, _ := tbl.Group(req, rt, "", now)
		if d := tbl.Decide(req, rt, g, now); len(d.Injected) != 0 {
			t.Fatalf("injected %s", names(d.Injected))
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
	for _, name := range []string{"same-cuj", "other-cuj"} {
		if st, _ := reg.Get(name); st.Matched != 0 {
			t.Errorf("%s was offered %d requests of another route", name, st.Matched)
		}
	}
	put := httptest.NewRequest("PUT", "/messages/7", nil)
	if d := reg.Table().Decide(put, routes.Match(put), match.GroupNone, now); names(d.Injected) != "same-cuj" {
		t.Errorf("its own route: injected %q", names(d.Injected))
	}
}

// BenchmarkRequestOnAnotherRoute is the fault rules' work for a request
// (its group, then the decision) with no rules, and with one active rule on
// another route of its CUJ or on another CUJ.
func BenchmarkRequestOnAnotherRoute(b *testing.B) {
	for _, tc := range []struct{ name, rule string }{
		{"no rules", ""},
		{"rule on another route of its CUJ", `{"name": "r", "match": {"cuj": "update", "route": "PUT /messages/{id}"}, "delay": "1ms"}`},
		{"rule on another CUJ", `{"name": "r", "match": {"cuj": "send"}, "delay": "1ms"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			svc, _ := spec.LoadService("../examples/chat.yaml")
			routes, _ := match.Compile(svc)
			reg, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
			if tc.rule != "" {
				r, _ := spec.ParseFaultRule("", []byte(tc.rule), "")
				if _, _, err := reg.Put(r); err != nil {
					b.Fatal(err)
				}
			}
			req := httptest.NewRequest("POST", "/update", nil)
			rt := routes.Match(req)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				tbl := reg.Table()
				g, _ := tbl.Group(req, rt, "", now)
				tbl.Decide(req, rt, g, now)
			}
		})
	}
}
