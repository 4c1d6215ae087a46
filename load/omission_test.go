package load_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/load"
)

// The coordinated-omission check, exact: 500 req/s for 10 s against a server
// (controlled by the test, in the bubble's clock) that freezes from 5 s to
// 6 s. The 500 requests due in that second all complete at 6 s, so their
// latencies from their intended send times are 1000, 998, ..., 2 ms: the
// slowest 10% of the run. The p99 (the value 99% of requests do not exceed:
// the 4,950th of 5,000, the 450th of the frozen ones) is 900 ms within the
// histogram's 0.1% precision; the generator never waits for the server, so
// no send is late and none is dropped. A closed-model tool measuring from the
// actual send would report a p99 of about 0.
func TestAOneSecondFreezeShowsInTheP99ExactlyAndNoSendIsLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := load.NewPlan(chat(t), load.PlanConfig{Stages: constant(rate(500, time.Second), 10*time.Second), CUJs: []string{"update"}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		server := roundTripper(func(r *http.Request) (*http.Response, error) {
			if at := time.Since(start); at >= 5*time.Second && at < 6*time.Second {
				time.Sleep(6*time.Second - at) // frozen until 6 s
			}
			return ok200(), nil
		})
		g := newGen(t, load.Config{Plan: p, Target: "http://app.test", Start: start, Transport: server})
		r, err := g.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := r.CUJs[0]
		if c.Sent != 5000 || c.Late != 0 || c.Dropped != 0 || c.Status.C2xx != 5000 {
			t.Fatalf("sent %d late %d dropped %d 2xx %d; want 5000 0 0 5000", c.Sent, c.Late, c.Dropped, c.Status.C2xx)
		}
		within := func(name string, got, want time.Duration) {
			if d := got - want; d < -want/1000 || d > want/1000 {
				t.Errorf("%s = %v, want %v within 0.1%%", name, got, want)
			}
		}
		within("p99", time.Duration(c.Latency.P99), 900*time.Millisecond)
		within("p99.9", time.Duration(c.Latency.P999), 990*time.Millisecond)
		within("max", time.Duration(c.Latency.Max), time.Second)
		if time.Duration(c.Latency.P90) > time.Microsecond {
			t.Errorf("p90 = %v: only the frozen 10%% should wait", time.Duration(c.Latency.P90))
		}
	})
}
