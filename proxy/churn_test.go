package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A rule with a 2 s lease answers 500 until 2 s have passed, then stops by
// itself: no sweep, no request to remove it.
func TestALeasedRuleStopsByItselfThroughTheProxy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, _ := spec.LoadService("../examples/chat.yaml")
		routes, _ := match.Compile(svc)
		faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
		app := roundTrip(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
		})
		u, _ := url.Parse("http://app.internal")
		p, _ := proxy.New(proxy.Config{Upstream: u, Routes: routes, Faults: faults, Recorder: sli.New(sli.Config{Service: svc, Routes: routes}), Transport: app})
		put(t, faults, `{"name": "brief", "match": {"cuj": "update"}, "status": 500, "ttl": "2s"}`)
		status := func() int {
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest("POST", "/update", nil))
			return w.Code
		}
		var got []int
		for range 5 { // t = 0, 0.5, 1, 1.5, 2 s... then 2.5
			got = append(got, status())
			time.Sleep(500 * time.Millisecond)
		}
		got = append(got, status())
		if fmt.Sprint(got) != "[500 500 500 500 200 200]" {
			t.Errorf("statuses every 500ms: %v, want 500 until 2s, then 200", got)
		}
		if st, _ := faults.Get("brief"); st.State != fault.StateExpired {
			t.Errorf("state %s, want expired", st.State)
		}
	})
}

var wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)

// Adding and removing a rule ten times a second while wrk drives 32
// connections through the proxy: no socket error, no untargeted request altered.
func TestRuleChurnUnderLoadDropsNothing(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		wrk := testtool.Path(t, "wrk")
		var upstreamSeen atomic.Int64
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			upstreamSeen.Add(1)
			io.WriteString(w, "ok")
		}))
		defer up.Close()
		s := start(t, fw, up.URL)

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		churns := 0
		wg.Go(func() { // the churn: a rule on another CUJ, in and out, 10 times a second
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if i%2 == 0 {
					put(t, s.faults, fmt.Sprintf(`{"name": "churn", "match": {"cuj": "update"}, "status": 503, "seed": %d}`, i+1))
				} else if _, err := s.faults.Delete("churn"); err != nil {
					t.Error(err)
				}
				churns++
			}
		})
		// Targeted traffic alongside, so the rule is actually exercised.
		var targeted503 atomic.Int64
		wg.Go(func() {
			c := keepAliveClient(4)
			for ctx.Err() == nil {
				resp, err := c.Post(s.url+"/update", "text/plain", nil)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 {
					targeted503.Add(1)
				}
			}
		})
		out, err := exec.Command(wrk, "-t2", "-c32", "-d3s", "--latency", s.url+"/messages").CombinedOutput()
		cancel()
		wg.Wait()
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		text := string(out)
		if m := wrkErrors.FindStringSubmatch(text); m != nil {
			t.Errorf("wrk reported socket errors: %s\n%s", m[0], text)
		}
		if strings.Contains(text, "Non-2xx or 3xx responses") {
			t.Errorf("untargeted requests were altered:\n%s", text)
		}
		if churns < 20 || targeted503.Load() == 0 {
			t.Errorf("only %d rule changes and %d injected answers: the churn did not exercise the proxy", churns, targeted503.Load())
		}
		w := s.rec.Window(s.routes.CUJIndex("read"), sli.AllGroups, time.Hour)
		if w.Bad != 0 || w.Total == 0 {
			t.Errorf("read CUJ: %d requests, %d bad", w.Total, w.Bad)
		}
		t.Logf("%d rule changes, %d untargeted requests, %d targeted 503s", churns, w.Total, targeted503.Load())
	})
}
