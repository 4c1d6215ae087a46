package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/internal/promtest"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// TestPrometheusScrapingTheProxyAgreesWithItsStore runs `slolab proxy` (the
// same stack, in-process, on loopback, with --store) under load with faults
// injected, and a real Prometheus scraping its /metrics every second. Once
// Prometheus has scraped every request and the proxy has flushed every
// request to its store, `slolab slo status` from the store and from
// Prometheus print the same status, to the last event. (The proxy keeps
// running: once it stops, Prometheus marks its series stale.)
func TestPrometheusScrapingTheProxyAgreesWithItsStore(t *testing.T) {
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	up, _ := url.Parse(app.URL)
	db := filepath.Join(t.TempDir(), "slolab.db")
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", store: db}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopProxy := context.WithCancel(context.Background())
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- stack.run(ctx) }()
	defer func() {
		stopProxy()
		if err := <-proxyDone; err != nil {
			t.Error(err)
		}
	}()

	prom := promtest.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: slolab
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(stack.adminURL(), "http://")), t.TempDir())

	client, _ := admin.NewClient(stack.adminURL(), "")
	for _, r := range []*spec.FaultRule{
		{Name: "upd-503", Match: spec.Selector{CUJ: "update"}, Rate: spec.NewRatio(1, 20), Status: &spec.StatusAction{Code: 503}, TTL: time.Hour},
		{Name: "send-abort", Match: spec.Selector{CUJ: "send"}, Rate: spec.NewRatio(1, 50), Abort: true, TTL: time.Hour},
		{Name: "read-slow", Match: spec.Selector{CUJ: "read"}, Rate: spec.NewRatio(1, 10), Delay: &spec.Delay{Kind: spec.DelayFixed, Fixed: 350 * time.Millisecond}, TTL: time.Hour},
	} {
		if _, err := client.PutFault(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	requests := []struct{ method, path string }{
		{"POST", "/update"}, {"POST", "/messages"}, {"GET", "/messages"}, {"POST", "/login"}, {"GET", "/static/app.js"},
	}
	const perWorker, workers = 300, 4
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				r := requests[(w+i)%len(requests)]
				req, _ := http.NewRequest(r.method, stack.proxyURL()+r.path, strings.NewReader("{}"))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()

	// Wait for a scrape that saw every request, and for the flush of the
	// interval that holds the last one (the recorder closes intervals every
	// 10 s and the flusher writes them every 10 s).
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	everything := slo.Range{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}
	for i := 0; ; i++ {
		var out bytes.Buffer
		resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape("sum(slolab_requests_total)"))
		if err == nil {
			io.Copy(&out, resp.Body)
			resp.Body.Close()
		}
		scraped := strings.Contains(out.String(), fmt.Sprintf(`"%d"]`, perWorker*workers))
		stored := uint64(0)
		if ev, err := store.Events(context.Background(), everything); err == nil {
			for _, c := range svc.CUJNames() {
				stored += ev[slo.Key{CUJ: c, Kind: slo.Availability}].Total
			}
			stored += ev[slo.Key{CUJ: spec.OtherCUJ, Kind: slo.Availability}].Total
		}
		if scraped && stored == perWorker*workers {
			break
		}
		if i == 400 {
			t.Fatalf("after 40s prometheus shows %s and the store %d requests, want %d in both", out.String(), stored, perWorker*workers)
		}
		time.Sleep(100 * time.Millisecond)
	}

	at := slo.Align(time.Now(), time.Minute).Add(time.Minute).Format(time.RFC3339) // after every request
	status := func(source ...string) (string, slo.Status) {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append([]string{"slo", "status", "--spec", chatSpec, "--at", at, "-o", "json"}, source...)
		if code := runCLICtx(context.Background(), &out, &errOut, args...); code != 0 {
			t.Fatalf("slo status %v: exit %d: %s", source, code, errOut.String())
		}
		var st slo.Status
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		// Where the history starts is known to the minute from the store,
		// but only to the first scrape from Prometheus, which counts the
		// requests before it in the minute of that scrape: the counts agree,
		// how much of each window is covered may not. (Backfilled at minute
		// boundaries, store/promql's test checks those agree too.)
		st.Span = nil
		for i := range st.SLOs {
			st.SLOs[i].Covered = 0
			for j := range st.SLOs[i].Windows {
				st.SLOs[i].Windows[j].Covered = 0
			}
		}
		b, _ := json.MarshalIndent(st, "", " ")
		return string(b), st
	}
	fromStore, st := status("--store", db)
	fromProm, _ := status("--prometheus", prom)
	if fromStore != fromProm {
		t.Errorf("the store and prometheus disagree:\nstore:\n%s\nprometheus:\n%s", fromStore, fromProm)
	}
	got := map[string]slo.Events{}
	for _, s := range st.SLOs {
		got[s.CUJ+" "+string(s.Kind)] = s.Events
	}
	// 1,200 requests, 240 per route in turn; the rules' rates are exact.
	want := map[string]slo.Events{
		"update availability": {Total: 240, Bad: 12}, // 1 in 20 answered 503
		"send availability":   {Total: 240, Bad: 4},  // 1 in 50 aborted (code 0)
		"read latency":        {Total: 240, Bad: 24}, // 1 in 10 delayed past 300ms
		"login availability":  {Total: 240, Bad: 0},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
}
