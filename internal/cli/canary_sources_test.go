package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/internal/promtest"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/store/sqlite"
)

// TestTheJudgeAgreesFromTheProxyTheStoreAndPrometheus runs a split proxy
// in-process with --store, a real Prometheus scraping its /metrics every
// second, and traffic whose canary breaks uploads. Once Prometheus has
// scraped and the store holds every request, `slolab canary judge` from the
// proxy's live windows, from the store and from Prometheus gives the same
// verdict, the same counts per revision and the same p-values.
func TestTheJudgeAgreesFromTheProxyTheStoreAndPrometheus(t *testing.T) {
	app := func(broken string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if r.URL.Path == broken {
				http.Error(w, "the blob store is unreachable", http.StatusBadGateway)
				return
			}
			io.WriteString(w, "ok")
		}))
		t.Cleanup(s.Close)
		return s
	}
	stable, canaryApp := app(""), app("/files")
	db := filepath.Join(t.TempDir(), "slolab.db")
	o := &proxyOptions{
		specPath: "testdata/chat-canary.yaml", listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0",
		upstreams: []string{"stable=" + stable.URL, "canary=" + canaryApp.URL}, canaryWeight: "20", canarySeed: 1,
		maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", store: db,
	}
	upstream, err := o.check()
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := loadService(o.specPath)
	stack, err := newProxyStack(svc, upstream, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopProxy := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	defer func() { stopProxy(); wg.Wait() }()
	prom := promtest.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: slolab
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(stack.adminURL(), "http://")), t.TempDir())

	const n = 3000
	if bad := chatTraffic(t, stack.proxyURL(), n, 100); bad != 6 { // 30 uploads, 6 of them the canary's
		t.Fatalf("%d requests failed, want the canary's 6 uploads", bad)
	}
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	everything := slo.Range{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}
	for i := 0; ; i++ {
		var out bytes.Buffer
		resp, err := http.Get(prom + "/api/v1/query?query=sum(slolab_requests_total)")
		if err == nil {
			io.Copy(&out, resp.Body)
			resp.Body.Close()
		}
		stored := uint64(0)
		if revs, err := store.Revisions(context.Background(), everything); err == nil {
			for _, byRev := range revs {
				for _, c := range byRev {
					stored += c.Total
				}
			}
		}
		if strings.Contains(out.String(), fmt.Sprintf(`"%d"]`, n)) && stored == n {
			break
		}
		if i == 400 {
			t.Fatalf("after 40s prometheus shows %s and the store %d requests, want %d in both", out.String(), stored, n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	at := slo.Align(time.Now(), time.Minute).Add(time.Minute).Format(time.RFC3339) // after every request
	type revision struct{ Total, Bad, Slow uint64 }
	type cuj struct {
		CUJ, Verdict   string
		Canary, Stable revision
		Checks         []struct{ PValue float64 }
	}
	judge := func(source ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args := append([]string{"canary", "judge", "--spec", o.specPath, "--window", "10m", "-o", "json"}, source...)
		code := runCLICtx(context.Background(), &out, &errOut, args...)
		var res struct {
			Verdict, Source string
			CUJs            []cuj
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("judge %v: exit %d: %v\n%s", source, code, err, errOut.String())
		}
		b, _ := json.MarshalIndent(struct {
			Verdict string
			CUJs    []cuj
		}{res.Verdict, res.CUJs}, "", " ")
		return code, string(b)
	}
	codeA, fromAdmin := judge("--admin", stack.adminURL())
	codeS, fromStore := judge("--store", db, "--at", at)
	codeP, fromProm := judge("--prometheus", prom, "--at", at)
	if codeA != ExitFailure || codeS != ExitFailure || codeP != ExitFailure || fromAdmin != fromStore || fromAdmin != fromProm {
		t.Errorf("exits %d %d %d; the sources disagree:\nproxy:\n%s\nstore:\n%s\nprometheus:\n%s", codeA, codeS, codeP, fromAdmin, fromStore, fromProm)
	}
	if !strings.Contains(fromAdmin, `"CUJ": "upload",
   "Verdict": "fail",
   "Canary": {
    "Total": 6,
    "Bad": 6,`) {
		t.Errorf("the canary's uploads are not judged failed:\n%s", fromAdmin)
	}
	var out, errOut bytes.Buffer
	if code := runCLICtx(context.Background(), &out, &errOut, "canary", "judge", "--spec", o.specPath, "--store", db, "--prometheus", prom); code != ExitUsage || errOut.String() != "slolab: give --store or --prometheus, not both\n" {
		t.Errorf("two sources: exit %d %q", code, errOut.String())
	}
}
