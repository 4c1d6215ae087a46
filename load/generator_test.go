package load_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/load"
)

// roundTripper is a fake transport: it calls f for every request.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func ok200() *http.Response {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok"))}
}

func newGen(t *testing.T, cfg load.Config) *load.Generator {
	t.Helper()
	g, err := load.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	load.RuntimeTimersOnly(g)
	return g
}

func TestARequestDueWhileMaxInFlightIsReachedIsDroppedNotQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(100, time.Second), time.Second), CUJs: []string{"update"}})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		g := newGen(t, load.Config{Plan: p, Target: "http://app.test", MaxInFlight: 10, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			<-release // the server hangs until the test lets it go
			return ok200(), nil
		})})
		done := make(chan *load.Report)
		go func() { r, _ := g.Run(context.Background()); done <- r }()
		time.Sleep(time.Second) // fake time: every request has fallen due
		synctest.Wait()
		close(release)
		r := <-done
		got := r.CUJs[0]
		if got.Due != 100 || got.Sent != 10 || got.Dropped != 90 || got.Status.C2xx != 10 || got.Late != 0 {
			t.Errorf("due %d sent %d dropped %d 2xx %d late %d; want 100, 10, 90, 10, 0", got.Due, got.Sent, got.Dropped, got.Status.C2xx, got.Late)
		}
		// The ten sent requests were released at 1s; the first was due at 10ms.
		if got.Latency.Max < 990*msD || got.Latency.Max > 991*msD || got.Latency.P50 < 900*msD {
			t.Errorf("latency %+v: want a max of 990ms (to HDR's 0.1%%), measured from the intended send", got.Latency)
		}
		if ok, _ := r.Check([]load.Threshold{mustThreshold(t, "update:dropped<50%"), mustThreshold(t, "update:errors<=90%")}); ok {
			t.Errorf("thresholds passed: %+v", r.Thresholds)
		}
		want := []load.ThresholdResult{
			{Threshold: "update:dropped<50%", CUJ: "update", Value: "90% (90/100)", OK: false},
			{Threshold: "update:errors<=90%", CUJ: "update", Value: "90% (90/100)", OK: true},
		}
		if !equalResults(r.Thresholds, want) {
			t.Errorf("threshold results %+v, want %+v", r.Thresholds, want)
		}
	})
}

const msD = 1_000_000 // a millisecond as a spec.Duration

func mustThreshold(t *testing.T, s string) load.Threshold {
	t.Helper()
	th, err := load.ParseThreshold(s)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func equalResults(a, b []load.ThresholdResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSendsAfterTheGeneratorStallsAreCountedLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(100, time.Second), time.Second), CUJs: []string{"update"}})
		if err != nil {
			t.Fatal(err)
		}
		// At 105ms the generator's clock jumps 50ms ahead, as after a 50ms
		// pause of the whole process. It wakes at 108ms for the request due at
		// 110ms (the last 2ms of every wait are a separate fine sleep), finds
		// it overdue by 48ms and sends the ones due at 110..150ms at once:
		// 48, 38, 28, 18 and 8ms late.
		var skew atomic.Int64
		time.AfterFunc(105*time.Millisecond, func() { skew.Store(int64(50 * time.Millisecond)) })
		now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		g := newGen(t, load.Config{Plan: p, Target: "http://app.test", Now: now, LateAfter: 10 * time.Millisecond,
			Transport: roundTripper(func(r *http.Request) (*http.Response, error) { return ok200(), nil })})
		r, err := g.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c := r.CUJs[0]; c.Sent != 100 || c.Late != 4 || r.ScheduleLag.Max < 48*msD || r.ScheduleLag.Max > 48.1*msD {
			t.Errorf("sent %d late %d max lag %s; want 100, 4, 48ms", c.Sent, c.Late, r.ScheduleLag.Max)
		}
	})
}

func TestEveryRequestCarriesAUserIdentityAndTheTemplateFilledOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := load.NewPlan(service(t, `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: edit
      owner: o
      routes: ["PUT /items/{id}"]
      availability: {objective: 99%}
      load:
        requests:
          - method: PUT
            path: /items/{id}?by={user}
            vars: {id: 1..3}
            headers: {X-Seq: "{seq}"}
            body: '{"id": {id}}'
`), load.PlanConfig{Stages: constant(rate(1000, time.Second), time.Second), Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		users := map[string]bool{}
		var bad []string
		g := newGen(t, load.Config{Plan: p, Target: "http://app.test/base", Users: load.Users{N: 5, Header: "X-User", Cookie: "who"},
			Headers: http.Header{"Authorization": {"Bearer t"}},
			Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
				body, _ := io.ReadAll(r.Body)
				user := r.Header.Get("X-User")
				id := strings.TrimPrefix(r.URL.Path, "/base/items/")
				n := user[len("user-"):]
				ok := r.Method == "PUT" && r.URL.RawQuery == "by="+user && string(body) == `{"id": `+id+`}` &&
					r.Header.Get("Cookie") == "who="+user && r.Header.Get("X-Forwarded-For") == "10.0.0."+n &&
					r.Header.Get("Authorization") == "Bearer t" && r.Header.Get("X-Seq") != "" &&
					(id == "1" || id == "2" || id == "3")
				mu.Lock()
				users[user] = true
				if !ok {
					bad = append(bad, r.Method+" "+r.URL.String()+" "+string(body)+" "+user+" "+r.Header.Get("X-Forwarded-For"))
				}
				mu.Unlock()
				return ok200(), nil
			})})
		if _, err := g.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("%d malformed requests, first: %s", len(bad), bad[0])
		}
		if len(users) != 5 {
			t.Errorf("requests came from %d users, want all 5: %v", len(users), users)
		}
	})
}

func TestTheSameSeedSendsTheSameRequests(t *testing.T) {
	run := func(seed uint64) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(200, time.Second), time.Second), Seed: seed})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var got []string
			g := newGen(t, load.Config{Plan: p, Target: "http://app.test", MaxInFlight: 1000,
				Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
					var body []byte
					if r.Body != nil {
						body, _ = io.ReadAll(r.Body)
					}
					k := r.Header.Get("X-Forwarded-For") + " " + r.Method + " " + r.URL.String() + " " + string(body)
					mu.Lock()
					got = append(got, time.Now().Format(time.StampMicro)+" "+k)
					mu.Unlock()
					return ok200(), nil
				})})
			if _, err := g.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got) // by intended time (the bubble's clock), then content
			out = got
		})
		return out
	}
	a, b, c := run(1), run(1), run(2)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("two runs with seed 1 sent different requests: %d: %q vs %q", i, a[i], b[i])
		}
	}
	if strings.Join(a, "\n") == strings.Join(c, "\n") {
		t.Error("seeds 1 and 2 sent the same requests")
	}
}

func TestRequestsWithoutTemplatesComeFromTheRoutes(t *testing.T) {
	svc := service(t, `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: browse
      owner: o
      routes: ["GET /messages/{id}", "/files/{path...}", "POST /messages", "/static/"]
      availability: {objective: 99%}
`)
	p, err := load.NewPlan(svc, load.PlanConfig{Stages: constant(rate(400, time.Second), time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var mu sync.Mutex
	hits := map[string]int{}
	for _, r := range svc.CUJs[0].Routes {
		mux.HandleFunc(r.Pattern, func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			hits[r.Pattern]++
			mu.Unlock()
			if req.Method == "POST" && req.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(400)
			}
		})
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	g, err := load.New(load.Config{Plan: p, Target: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"GET /messages/{id}": 100, "/files/{path...}": 100, "POST /messages": 100, "/static/": 100}
	if r.Total.Status.C2xx != 400 || len(hits) != 4 || hits["GET /messages/{id}"] != 100 || hits["/static/"] != 100 ||
		hits["POST /messages"] != 100 || hits["/files/{path...}"] != 100 {
		t.Errorf("2xx %d, route hits %v; want 400, %v", r.Total.Status.C2xx, hits, want)
	}
}

func TestAbove1000PerSecondTheRequestsDueBetweenTwoWakesGoOutTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 16,000/s: a request every 62.5µs. The dispatcher wakes at most
		// every millisecond, so after each wake the next sixteen go out
		// together at the following one, 937.5, 875, …, 62.5 and 0µs late:
		// one wake for sixteen requests.
		p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(16000, time.Second), time.Second), CUJs: []string{"update"}})
		if err != nil {
			t.Fatal(err)
		}
		g := newGen(t, load.Config{Plan: p, Target: "http://app.test",
			Transport: roundTripper(func(r *http.Request) (*http.Response, error) { return ok200(), nil })})
		r, err := g.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		lag := r.ScheduleLag
		if c := r.CUJs[0]; c.Sent != 16000 || c.Late != 0 {
			t.Errorf("sent %d late %d; want 16000, 0", c.Sent, c.Late)
		}
		if lag.Max < 937_000 || lag.Max > 938_000 || lag.P50 < 400_000 || lag.P50 > 500_000 {
			t.Errorf("schedule lag %+v; want a max of 937.5µs and a median of 437.5 to 500µs", lag)
		}
	})
}
