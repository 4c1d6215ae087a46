package split_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

func routes(t testing.TB) *match.Table {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := match.Compile(svc)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func weighted(t testing.TB, tbl *match.Table, w string, seed uint64) *split.Split {
	t.Helper()
	r, err := spec.ParsePercent(w)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := url.Parse("http://127.0.0.1:2")
	s, err := split.New(split.Config{Canary: c, Weight: r, CUJs: len(tbl.CUJs()), Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Two CUJs interleaved 1:3 at 25%: if one counter served every CUJ, the
// canary would get all of one CUJ and none of the other. Per-CUJ counters
// give each CUJ its exact share: every prefix within one request of 25%.
func TestEveryCUJGetsItsExactShareEvenWhenTrafficIsPeriodic(t *testing.T) {
	tbl := routes(t)
	for _, seed := range []uint64{0, 7, 1 << 40} {
		s := weighted(t, tbl, "25%", seed)
		task := httptest.NewRequest("POST", "/tasks", nil)
		read := httptest.NewRequest("GET", "/messages", nil)
		rt, rr := tbl.Match(task), tbl.Match(read)
		var n, canary [2]uint64
		for i := range 4000 {
			req, route, k := read, rr, 0
			if i%4 == 0 {
				req, route, k = task, rt, 1
			}
			n[k]++
			if s.Pick(req, route) == match.RevisionCanary {
				canary[k]++
			}
			for j := range 2 {
				if want := float64(n[j]) / 4; float64(canary[j]) < want-1 || float64(canary[j]) > want+1 {
					t.Fatalf("seed %d: CUJ %d: %d of %d went to the canary, want within one of %v", seed, j, canary[j], n[j], want)
				}
			}
		}
		st := s.Status()
		if st.Routed.Canary != 1000 || st.Routed.Stable != 3000 || st.Mode != split.ModeWeight {
			t.Errorf("seed %d: status %+v, want 1000 canary and 3000 stable", seed, st.Routed)
		}
	}
}

func TestZeroAndFullWeightsSendEverythingOneWay(t *testing.T) {
	tbl := routes(t)
	req := httptest.NewRequest("POST", "/update", nil)
	rt := tbl.Match(req)
	for w, want := range map[string]match.Revision{"0": match.RevisionStable, "100%": match.RevisionCanary} {
		s := weighted(t, tbl, w, 99)
		for range 1000 {
			if got := s.Pick(req, rt); got != want {
				t.Fatalf("weight %s: %s, want %s", w, got, want)
			}
		}
	}
}

// Requests keep flowing from 16 goroutines while the weight moves 0 → 50% →
// 100% → 0: nothing blocks, and the requests after each change follow the
// new weight exactly.
func TestTheWeightChangesUnderLoadWithoutALock(t *testing.T) {
	tbl := routes(t)
	s := weighted(t, tbl, "0", 0)
	req := httptest.NewRequest("GET", "/messages", nil)
	rt := tbl.Match(req)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Pick(req, rt)
			}
		})
	}
	for _, w := range []string{"50%", "100%", "0"} {
		r, _ := spec.ParsePercent(w)
		st, err := s.SetWeight(r)
		if err != nil || st.Weight.Cmp(r) != 0 {
			t.Fatalf("SetWeight(%s): %+v %v", w, st, err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	r, _ := spec.ParsePercent("10%")
	s.SetWeight(r)
	canary := 0
	for range 1000 {
		if s.Pick(req, rt) == match.RevisionCanary {
			canary++
		}
	}
	if canary != 100 || s.Status().Routed.Canary != 100 {
		t.Errorf("after 10%%: %d of 1000 to the canary, status %+v", canary, s.Status().Routed)
	}
}

func TestAHeaderNamesTheRevisionOnTheRequestOrTheResponse(t *testing.T) {
	tbl := routes(t)
	s, err := split.New(split.Config{Header: "x-canary", CUJs: len(tbl.CUJs())})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/messages", nil)
	rt := tbl.Match(req)
	if got := s.Pick(req, rt); got != match.RevisionNone {
		t.Errorf("no request header: %s, want none (the response decides)", got)
	}
	req.Header.Set("X-Canary", "true")
	if got := s.Pick(req, rt); got != match.RevisionCanary {
		t.Errorf("X-Canary: true: %s", got)
	}
	req.Header.Set("X-Canary", "false")
	if got := s.Pick(req, rt); got != match.RevisionStable {
		t.Errorf("X-Canary: false: %s", got)
	}
	if got := s.FromResponse(http.Header{"X-Canary": {"canary"}}); got != match.RevisionCanary {
		t.Errorf("response X-Canary: canary: %s", got)
	}
	if got := s.FromResponse(http.Header{}); got != match.RevisionStable {
		t.Errorf("response without the header: %s", got)
	}
	if _, err := s.SetWeight(spec.One); slolab.KindOf(err) != slolab.Conflict || err.Error() != "the proxy reads the revision from the X-Canary header: the mesh that sets it decides the weight" {
		t.Errorf("SetWeight in header mode: %v", err)
	}
	if st := s.Status(); st.Mode != split.ModeHeader || st.Header != "X-Canary" || st.Weight != nil {
		t.Errorf("status %+v", st)
	}
}

func TestConfigMistakesAreRefused(t *testing.T) {
	c, _ := url.Parse("http://127.0.0.1:2")
	for _, tc := range []struct {
		cfg  split.Config
		want string
	}{
		{split.Config{CUJs: 3}, "split: a canary upstream or a revision header is required"},
		{split.Config{Canary: c, Header: "X-Canary", CUJs: 3}, "split: a canary upstream and a revision header exclude each other: either the proxy splits traffic or a mesh does"},
		{split.Config{Canary: c}, "split: the route table's CUJ count is required"},
		{split.Config{Canary: c, CUJs: 3, Weight: spec.NewRatio(3, 2)}, "split: weight 150% is above 100%"},
	} {
		if _, err := split.New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	tbl := routes(b)
	s := weighted(b, tbl, "25%", 1)
	req := httptest.NewRequest("GET", "/messages", nil)
	rt := tbl.Match(req)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Pick(req, rt)
		}
	})
}
