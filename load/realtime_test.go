package load_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/load"
)

// The tests named TestRealClock… run in real time against a loopback
// server: they check what only a real clock and a real network can show, so
// they take ten seconds each and need a quiet machine. They run with
// SLOLAB_REALTIME=1 (make bench runs every test with this prefix, and only
// those); the gate checks the same properties exactly in
// TestAOneSecondFreezeShowsInTheP99ExactlyAndNoSendIsLate and the pacer's
// property tests.

func realtime(t *testing.T) {
	t.Helper()
	if os.Getenv("SLOLAB_REALTIME") != "1" || raceDetector {
		t.Skip("real-time check: set SLOLAB_REALTIME=1 on a quiet machine, without -race")
	}
}

func TestRealClockAOneSecondServerFreezeShowsInTheP99(t *testing.T) {
	realtime(t)
	// 500 req/s for 10s; the server freezes from the generator's 5s to its 6s.
	// The 500 requests due in that second wait until 6s, so their latencies
	// from their intended send times are 1000, 998, ..., 2ms: 10% of all
	// requests, and the 51st slowest of 5000 (the p99) took 900ms. A generator
	// that measured from the actual send with few workers would see ~1ms.
	var frozen atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if frozen.Load() {
			<-release
		}
	}))
	defer srv.Close()
	p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(500, time.Second), 10*time.Second), CUJs: []string{"update"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(100 * time.Millisecond)
	at := func(d time.Duration, f func()) *time.Timer { return time.AfterFunc(time.Until(start.Add(d)), f) }
	defer at(5*time.Second, func() { frozen.Store(true) }).Stop()
	defer at(6*time.Second, func() { frozen.Store(false); close(release) }).Stop()
	g, err := load.New(load.Config{Plan: p, Target: srv.URL, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := r.CUJs[0]
	t.Logf("sent %d late %d dropped %d latency %+v schedule lag %+v", c.Sent, c.Late, c.Dropped, c.Latency, r.ScheduleLag)
	if c.Sent != 5000 || c.Dropped != 0 || c.Status.C2xx != 5000 || c.Errors != 0 {
		t.Errorf("sent %d dropped %d 2xx %d errors %d; want 5000, 0, 5000, 0", c.Sent, c.Dropped, c.Status.C2xx, c.Errors)
	}
	// Above 900ms by the time the 500 parked requests take to complete once
	// released, which on a busy two-core machine is tens of milliseconds.
	if p99 := time.Duration(c.Latency.P99); p99 < 895*time.Millisecond || p99 > time.Second {
		t.Errorf("p99 = %s, want 900ms (895ms..1s)", p99)
	}
	if mx := time.Duration(c.Latency.Max); mx < 995*time.Millisecond || mx > 1200*time.Millisecond {
		t.Errorf("max = %s, want 1s", mx)
	}
	// The generator kept to its schedule through the freeze: a late send
	// would mean it had waited for the server (coordinated omission).
	if c.Late > 50 {
		t.Errorf("%d sends were late; the open model sends on time whatever the server does", c.Late)
	}
}

func TestRealClockTheAchievedRateIsWithinHalfAPercentAt2000PerSecond(t *testing.T) {
	realtime(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(2000, time.Second), 10*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := load.New(load.Config{Plan: p, Target: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Duration(r.Elapsed)
	achieved := float64(r.Total.Sent) / elapsed.Seconds()
	t.Logf("sent %d in %s: %.2f/s; schedule lag %+v", r.Total.Sent, elapsed, achieved, r.ScheduleLag)
	if r.Total.Sent != 20000 || r.Total.Dropped != 0 {
		t.Errorf("sent %d, dropped %d; want 20000, 0", r.Total.Sent, r.Total.Dropped)
	}
	if achieved < 1990 || achieved > 2010 {
		t.Errorf("achieved %.2f/s, want 2000/s ± 0.5%%", achieved)
	}
}
