package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// release is an upstream that names itself and fails every nth request of
// one path.
func release(t *testing.T, name, failPath string, failEvery int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var served, n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == failPath && n.Add(1)%failEvery == 0 {
			http.Error(w, name+" broke", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s\n", name, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s, &served
}

type splitStack struct {
	url    string
	rec    *sli.Recorder
	routes *match.Table
	split  *split.Split
}

func startSplit(t *testing.T, stable string, cfg split.Config) *splitStack {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	u, _ := url.Parse(stable)
	cfg.Stable, cfg.CUJs = u, len(routes.CUJs())
	sp, err := split.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Config{Upstream: u, Split: sp, Routes: routes, Faults: faults, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, proxy.ServeOptions{Drain: 5 * time.Second}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &splitStack{url: "http://" + ln.Addr().String(), rec: rec, routes: routes, split: sp}
}

func mustGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type counts struct{ Total, Bad uint64 }

func (s *splitStack) window(cuj string, rev match.Revision) counts {
	c := s.rec.RevisionWindow(s.routes.CUJIndex(cuj), rev, time.Hour)
	return counts{c.Total, c.Bad}
}

// 25% of every CUJ goes to the canary process, exactly; the canary breaks
// every 2nd /tasks request; the recorder keeps each revision's counts apart,
// so the broken CUJ shows on the canary alone.
func TestTheProxySplitsEachCUJExactlyAndRecordsEachRevision(t *testing.T) {
	stable, stableServed := release(t, "stable", "", 1)
	canary, canaryServed := release(t, "canary", "/tasks", 2)
	cu, _ := url.Parse(canary.URL)
	s := startSplit(t, stable.URL, split.Config{Canary: cu, Weight: spec.NewRatio(1, 4), Seed: 3})
	client := keepAliveClient(8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				path := "/messages"
				if i%10 == 0 {
					path = "/tasks"
				}
				mustGet(t, client, fmt.Sprintf("%s%s?w=%d", s.url, path, w))
			}
		})
	}
	wg.Wait()
	got := map[string]counts{
		"read/stable": s.window("read", match.RevisionStable), "read/canary": s.window("read", match.RevisionCanary),
		"task/stable": s.window("task", match.RevisionStable), "task/canary": s.window("task", match.RevisionCanary),
		"read/none": s.window("read", match.RevisionNone),
	}
	want := map[string]counts{
		"read/stable": {540, 0}, "read/canary": {180, 0},
		"task/stable": {60, 0}, "task/canary": {20, 10},
		"read/none": {0, 0},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("per revision:\n got %v\nwant %v", got, want)
	}
	if stableServed.Load() != 600 || canaryServed.Load() != 200 {
		t.Errorf("stable served %d, canary %d; want 600 and 200", stableServed.Load(), canaryServed.Load())
	}
}

// The weight moves 0 → 50% → 100% → 0 while 4 keep-alive clients send
// requests: no request fails, no connection to the proxy is re-dialled, and
// the requests after each change follow the new weight.
func TestChangingTheWeightDropsNoConnection(t *testing.T) {
	stable, _ := release(t, "stable", "", 1)
	canary, _ := release(t, "canary", "", 1)
	cu, _ := url.Parse(canary.URL)
	s := startSplit(t, stable.URL, split.Config{Canary: cu})
	client := keepAliveClient(4)
	var dials atomic.Int64
	trace := &httptrace.ClientTrace{ConnectStart: func(string, string) { dials.Add(1) }}
	send := func(n int) (canaryN int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range n / 4 {
					req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", s.url+"/messages", nil)
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("status %d", resp.StatusCode)
					}
					if strings.HasPrefix(string(b), "canary") {
						mu.Lock()
						canaryN++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return canaryN
	}
	var got []int
	got = append(got, send(100))
	for _, w := range []spec.Ratio{spec.NewRatio(1, 2), spec.One, {}} {
		if _, err := s.split.SetWeight(w); err != nil {
			t.Fatal(err)
		}
		got = append(got, send(100))
	}
	if !slices.Equal(got, []int{0, 50, 100, 0}) {
		t.Errorf("canary answers per 100 requests at 0, 50%%, 100%%, 0: %v", got)
	}
	if dials.Load() > 4 {
		t.Errorf("%d connections dialled for 4 keep-alive clients: a weight change dropped connections", dials.Load())
	}
}

// In header mode the proxy forwards to its one upstream (behind which a mesh
// splits) and learns the revision from the request or from the response.
func TestAMeshMarksTheCanaryWithAHeader(t *testing.T) {
	var n atomic.Int64
	mesh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 { // the mesh sends every 5th request to the canary and stamps its response
			w.Header().Set("X-Canary", "true")
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "stable")
	}))
	defer mesh.Close()
	s := startSplit(t, mesh.URL, split.Config{Header: "X-Canary"})
	client := keepAliveClient(1)
	for range 50 {
		mustGet(t, client, s.url+"/messages")
	}
	// A request a mesh in front of the proxy already marked.
	req, _ := http.NewRequest("GET", s.url+"/tasks", nil)
	req.Header.Set("X-Canary", "canary")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := []counts{s.window("read", match.RevisionStable), s.window("read", match.RevisionCanary), s.window("task", match.RevisionCanary)}
	want := []counts{{40, 0}, {10, 10}, {1, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read stable, read canary, task canary: %v, want %v", got, want)
	}
}

// The split's cost on the request path: the same request through one
// upstream and through a 25% split, in-memory (no network), so the
// difference is the split's own.
func BenchmarkServeHTTP(b *testing.B) {
	svc, _ := spec.LoadService("../examples/chat.yaml")
	routes, _ := match.Compile(svc)
	app := roundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	stable, _ := url.Parse("http://stable.internal")
	canaryURL, _ := url.Parse("http://canary.internal")
	for _, tc := range []struct {
		name  string
		split func() *split.Split
	}{
		{"one upstream", func() *split.Split { return nil }},
		{"stable and canary at 25%", func() *split.Split {
			s, _ := split.New(split.Config{Canary: canaryURL, Weight: spec.NewRatio(1, 4), CUJs: len(routes.CUJs()), Seed: 1})
			return s
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
			rec := sli.New(sli.Config{Service: svc, Routes: routes})
			p, err := proxy.New(proxy.Config{Upstream: stable, Split: tc.split(), Routes: routes, Faults: faults, Recorder: rec, Transport: app})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/messages/7", nil)
			b.ReportAllocs()
			for b.Loop() {
				p.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
