package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
	"slolab.dev/slolab/web"
)

func freeOptions(rate string) *labOptions {
	return &labOptions{
		listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", dashboard: "127.0.0.1:0", app: "127.0.0.1:0",
		rate: rate, seed: 1, token: "t0k-t0k-t0k-t0k-t0k", poll: 100 * time.Millisecond, auditLog: "-", logLevel: "error",
	}
}

func TestALabStopsCleanlyAndLeavesNoFault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := newLab(ctx, freeOptions("50/s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	<-l.dash.Polled()

	c, err := admin.NewClient(l.stack.adminURL(), "t0k-t0k-t0k-t0k-t0k")
	if err != nil {
		t.Fatal(err)
	}
	rule, err := spec.ParseFaultRule("test", []byte(`{"match": {"cuj": "read"}, "status": 500, "rate": "50%", "ttl": "1h"}`), "left-behind")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFault(ctx, rule); err != nil {
		t.Fatal(err)
	}
	// The app answers through the proxy, and the rule applies.
	resp, err := http.Get(l.stack.proxyURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the app through the proxy: %s", resp.Status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the lab stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the lab did not stop within 20s of Ctrl-C")
	}
	for _, st := range l.stack.faults.List() {
		if st.State == fault.StateActive || st.State == fault.StatePending {
			t.Errorf("fault %s is still %s after the lab stopped", st.Rule.Name, st.State)
		}
	}
	if _, err := os.Stat(l.tempDir); !os.IsNotExist(err) {
		t.Errorf("the lab's temporary store %s is still there (%v)", l.tempDir, err)
	}
	for name, addr := range map[string]string{"proxy": l.stack.proxyLn.Addr().String(), "admin": l.stack.adminLn.Addr().String(), "dashboard": l.dashLn.Addr().String(), "app": l.appLn.Addr().String()} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("the %s still listens on %s", name, addr)
		}
	}
}

func TestATakenDefaultPortFallsBackAndAGivenOneFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()

	o := freeOptions("0")
	o.dashboard = addr
	l, err := newLab(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatalf("a taken default: %v", err)
	}
	var out bytes.Buffer
	l.printURLs(&out)
	l.closeAll()
	if want := addr + " is taken: --dashboard uses 127.0.0.1:"; !strings.Contains(out.String(), want) || l.dashLn.Addr().String() == addr {
		t.Errorf("output %q, want a line with %q", out.String(), want)
	}

	o = freeOptions("0")
	o.dashboard, o.explicit = addr, map[string]bool{"dashboard": true}
	if _, err := newLab(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "--dashboard "+addr+": listen tcp "+addr) ||
		!strings.Contains(err.Error(), "choose another address, or 127.0.0.1:0 for any free port") {
		t.Errorf("a taken port given on purpose: %v", err)
	}
}

func TestTheLabPrintsWhereEverythingIs(t *testing.T) {
	l, err := newLab(context.Background(), freeOptions("20/s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	var out bytes.Buffer
	l.printURLs(&out)
	want := strings.Join([]string{
		"slolab lab: service chat, 6 CUJs, load 20/s, seed 1",
		"",
		"  dashboard  " + l.dashboardURL() + "#token=t0k-t0k-t0k-t0k-t0k",
		"  app        " + l.stack.proxyURL() + "/  (the demo app, through the proxy)",
		"  blobs      " + l.stack.tcp[0].ln.Addr().String() + " → " + l.blobsLn.Addr().String() + "  (the app's blob store, through the proxy: fault rules with match: {tcp: blobs})",
		"  admin API  " + l.stack.adminURL() + "/api/v1/  metrics " + l.stack.adminURL() + "/metrics",
		"  store      " + filepath.Join(l.tempDir, "slolab.db") + "  (removed on exit; --store PATH keeps one)",
		"  history    none: --history 0",
		"  token      export SLOLAB_ADMIN_URL=" + l.stack.adminURL() + " SLOLAB_ADMIN_TOKEN=t0k-t0k-t0k-t0k-t0k SLOLAB_STORE=" + filepath.Join(l.tempDir, "slolab.db"),
		"",
		"Ctrl-C stops everything and removes every fault.",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestATCPFaultOnTheBlobStoreFailsUploads: the lab's demo app reaches its
// blob store through the proxy's TCP listener "blobs", so a TCP rule there
// degrades the upload CUJ: a reset at 100% makes every upload answer 502 (the
// rule resetting each connection exactly once), and removing it restores them.
func TestATCPFaultOnTheBlobStoreFailsUploads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := freeOptions("0")
	o.noLatency = true
	l, err := newLab(ctx, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the lab stopped with %v", err)
		}
	}()
	if got, want := l.app.BlobAddr(), l.stack.tcp[0].ln.Addr().String(); got != want || l.stack.tcp[0].proxy.Name() != "blobs" {
		t.Fatalf("the app calls its blob store at %s, want the proxy's TCP listener blobs at %s", got, want)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	upload := func() int {
		t.Helper()
		resp, err := client.Post(l.stack.proxyURL()+"/files?name=a.txt", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
		resp.Body.Close()
		return resp.StatusCode
	}
	c, err := admin.NewClient(l.stack.adminURL(), "t0k-t0k-t0k-t0k-t0k")
	if err != nil {
		t.Fatal(err)
	}
	rule, err := spec.ParseFaultRule("test", []byte(`{"match": {"tcp": "blobs"}, "rate": "100%", "tcp": {"reset": true}, "ttl": "1h"}`), "blobs-reset")
	if err != nil {
		t.Fatal(err)
	}

	var got []int
	got = append(got, upload())
	if _, err := c.PutFault(ctx, rule); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got = append(got, upload())
	}
	faults, err := c.ListFaults(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) != 1 || faults[0].Matched != 3 || faults[0].Injected != 3 {
		t.Errorf("the rule's counters: %+v, want one rule that matched and reset 3 connections", faults)
	}
	if _, err := c.DeleteFault(ctx, "blobs-reset"); err != nil {
		t.Fatal(err)
	}
	got = append(got, upload())
	if want := []int{201, 502, 502, 502, 201}; !reflect.DeepEqual(got, want) {
		t.Errorf("upload statuses %v, want %v (ok, three resets, ok again)", got, want)
	}
}

func TestLabAndServeUsageMistakesExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lab", "--rate", "fast"}, `slolab: --rate "fast": `},
		{[]string{"lab", "--upstream", "ftp://x"}, `slolab: --upstream "ftp://x": want an http:// or https:// URL with a host`},
		{[]string{"lab", "extra"}, "slolab lab needs no arguments"},
		{[]string{"serve", "--listen", "0.0.0.0:8070"}, "the dashboard would listen on 0.0.0.0:8070, beyond loopback, without a token"},
		{[]string{"serve", "--store", "x.db", "--prometheus", "http://127.0.0.1:9"}, "slolab: give --store or --prometheus, not both"},
		{[]string{"lab", "--store", "-"}, "slolab: --store -: the lab's SLO engine needs a store; leave --store out for a temporary one"},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestServeRebuildsTheCUJsFromTheProxy(t *testing.T) {
	l, err := newLab(context.Background(), freeOptions("0"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	live := admin.Snapshot(l.svc, l.stack.routes, l.stack.faults, l.stack.recorder, time.Now())
	got, err := serviceFromCUJs(&live)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != l.svc.Name || !reflect.DeepEqual(got.CUJNames(), l.svc.CUJNames()) {
		t.Fatalf("service %s with %v, want %s with %v", got.Name, got.CUJNames(), l.svc.Name, l.svc.CUJNames())
	}
	for _, want := range l.svc.CUJs {
		c := got.CUJ(want.Name)
		if c.Owner != want.Owner || len(c.Routes) != len(want.Routes) ||
			!reflect.DeepEqual(*c.Availability, spec.AvailabilitySLO{Objective: want.Availability.Objective, Window: want.Availability.Window}) ||
			!reflect.DeepEqual(*c.Latency, spec.LatencySLO{Threshold: want.Latency.Threshold, Objective: want.Latency.Objective, Window: want.Latency.Window}) {
			t.Errorf("CUJ %s rebuilt as %+v", want.Name, c)
		}
	}
}

func TestDemoAppOnATakenPortFailsClearly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errOut := runCLI(t, nil, "demo-app", "--listen", busy.Addr().String())
	want := "slolab: the demo app cannot listen on " + busy.Addr().String() + ": listen tcp " + busy.Addr().String()
	if code != ExitFailure || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, "(choose another with --listen)\n") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// lockedBuffer is a bytes.Buffer safe for a command writing while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServeJudgesTheSLOsFromAStore: 'slolab serve' against a running proxy
// and a store holding four days of chat traffic whose last 90 minutes burn
// update's budget 20 times too fast: the dashboard's table is the SLO
// engine's, judged at the store's last whole minute, with the page alert
// 1h/5m firing exactly as 'slolab slo status' says.
func TestServeJudgesTheSLOsFromAStore(t *testing.T) {
	end := slo.Align(time.Now(), time.Minute)
	db := seedStore(t, end, slo.Range{From: end.Add(-90 * time.Minute), To: end})
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	up, _ := url.Parse(app.URL)
	stack, err := newProxyStack(svc, up, &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-"}, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- stack.run(ctx) }()

	var stderr lockedBuffer
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan int, 1)
	go func() {
		served <- runCLICtx(serveCtx, io.Discard, &stderr, "serve", "--admin", stack.adminURL(), "--store", db, "--listen", "127.0.0.1:0", "--poll", "100ms")
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, rest, ok := strings.Cut(stderr.String(), "slolab serve: dashboard "); ok {
			base, _, _ = strings.Cut(rest, " ")
		}
	}
	if base == "" {
		t.Fatalf("serve printed no dashboard URL: %q", stderr.String())
	}
	if want := " (service chat, SLOs judged from store " + db + ")\n"; !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("serve's banner %q, want it to end with %q", stderr.String(), want)
	}
	var st web.State
	for deadline := time.Now().Add(10 * time.Second); st.Judged == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "api/state")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st) //nolint:errcheck // a 502 before the first poll decodes to no state
		resp.Body.Close()
	}
	if st.Judged == nil || !st.Judged.Equal(end) || st.Source != "store "+db {
		t.Fatalf("judged at %v from %q, want %v from store %s", st.Judged, st.Source, end, db)
	}
	var firing []string
	for _, c := range st.CUJs {
		for _, a := range c.Alerts {
			if a.State == "firing" {
				firing = append(firing, c.Name+" "+a.SLO+" "+a.Severity+" "+a.Pair)
			}
		}
		if c.Name == "update" {
			// 4 days of 1,000 a minute, 1,800 failed: 1,800 of 5,760,000.
			if a := c.Availability; a.Events != (slo.Events{Total: 5_760_000, Bad: 1800}) || *a.BudgetRemaining <= 68.7 || *a.BudgetRemaining >= 68.8 {
				t.Errorf("update availability: events %+v, budget left %v; want 1,800 of 5,760,000 and 68.75%%", a.Events, *a.BudgetRemaining)
			}
		}
	}
	if strings.Join(firing, ", ") != "update availability page 1h/5m" {
		t.Errorf("firing: %v, want update availability page 1h/5m only", firing)
	}
	// The experiments section reads the same store.
	resp, err := http.Get(base + "api/experiments")
	if err != nil {
		t.Fatal(err)
	}
	var runs web.RunsView
	err = json.NewDecoder(resp.Body).Decode(&runs)
	resp.Body.Close()
	if want := (web.RunsView{Store: db, Runs: []web.RunView{}, Empty: "None recorded yet: 'slolab experiment run --store " + db + "' and 'slolab gameday run --store " + db + "' keep their reports here."}); err != nil || !reflect.DeepEqual(runs, want) {
		t.Errorf("GET /api/experiments: %+v (%v), want %+v", runs, err, want)
	}
	stopServe()
	if code := <-served; code != ExitOK {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
	cancel()
	if err := <-proxyDone; err != nil {
		t.Error(err)
	}
}

func TestServeWithoutAStoreSaysHowToGoOn(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut := runCLI(t, nil, "serve", "--spec", chatSpec, "--store", missing)
	want := "slolab: no store at " + missing + ": run 'slolab proxy --store " + missing + " ...' to record one, or read Prometheus with --prometheus URL; or --store - to serve without judging the SLOs\n"
	if code != ExitFailure || errOut != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
	}
}

func TestServeRunsScheduledExperimentsAndKeepsTheirRecord(t *testing.T) {
	adminURL := startStack(t)
	end := slo.Align(time.Now(), time.Minute)
	db := seedStore(t, end, slo.Range{From: end.Add(-time.Minute), To: end})
	dir := t.TempDir()
	exp := experimentFile(t, dir, "tick", "true")
	text, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "tick.yaml", string(text)+"  schedule: \"@every 1s\"\n")

	var stderr lockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan int, 1)
	go func() {
		served <- runCLICtx(ctx, io.Discard, &stderr, "serve", "--admin", adminURL, "--store", db, "--listen", "127.0.0.1:0",
			"--experiments", exp, "--report-dir", "")
	}()
	// The first due time is a second after the start and the run takes one
	// more: ten seconds is generous, and the loop is bounded by it.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stderr.String(), "slolab serve: experiment tick due ") && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	stop()
	if code := <-served; code != ExitOK {
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	}
	out := stderr.String()
	if !strings.Contains(out, "slolab serve: scheduled experiments (runs kept in the store):\nEXPERIMENT") || !strings.Contains(out, "tick  ") {
		t.Errorf("serve did not list the schedule:\n%s", out)
	}
	if !strings.Contains(out, ": held: ") {
		t.Fatalf("no held run reported:\n%s", out)
	}
	code, hist, _ := runCLI(t, nil, "experiment", "history", "--store", db, "-o", "json")
	var runs []struct{ Kind, Name, Verdict string }
	if err := json.Unmarshal([]byte(hist), &runs); err != nil || code != ExitOK || len(runs) == 0 ||
		runs[len(runs)-1] != (struct{ Kind, Name, Verdict string }{"experiment", "tick", "held"}) {
		t.Errorf("history: exit %d %v %+v\n%s", code, err, runs, hist)
	}
}

// TestTheLabStartsWithAFullSyntheticHistory: with --history 30d the lab
// writes, before anything serves, 30 days of minutes at the load's exact
// per-CUJ rates (update: 15% of 20/s, 180 a minute) with the demo app's
// baseline latencies and no failures, marked synthetic; every window of
// every SLO is then full and clean, and says so.
func TestTheLabStartsWithAFullSyntheticHistory(t *testing.T) {
	o := freeOptions("20/s")
	o.history = 30 * spec.Day
	start := time.Now()
	l, err := newLab(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	t.Logf("newLab with 30 days of history took %v; the history: %s", time.Since(start), l.history)
	var out bytes.Buffer
	l.printURLs(&out)
	if want := "  history    30d of synthetic minutes before "; !strings.Contains(out.String(), want) ||
		!strings.Contains(out.String(), "(steady load 20/s in the spec's mix, the demo app's baseline latencies, no failures; seed 1); 259,") {
		t.Errorf("the banner does not say what history was written:\n%s", out.String())
	}
	at := slo.Align(l.history.synthetic.Until, time.Minute)
	st, err := slo.Evaluate(context.Background(), l.svc, l.stack.store, at)
	if err != nil {
		t.Fatal(err)
	}
	if st.Span == nil || st.Span.Synthetic == nil || !st.Span.Synthetic.Until.Equal(l.history.synthetic.Until) {
		t.Errorf("status does not mark the synthetic history: %+v", st.Span)
	}
	for _, s := range st.SLOs {
		if s.Covered != spec.Duration(30*spec.Day) {
			t.Errorf("%s %s: the period is covered for %v, want 30d", s.CUJ, s.Kind, s.Covered)
		}
		if s.Events.Bad != 0 || len(s.Firing()) > 0 || s.Budget.RemainingPercent != 100 {
			t.Errorf("%s %s: %d bad, %d alerts, %v%% budget left; want a clean history", s.CUJ, s.Kind, s.Events.Bad, len(s.Firing()), s.Budget.RemainingPercent)
		}
		if s.CUJ == "update" && s.Events.Total != 180*43200 {
			t.Errorf("update holds %d requests over 30 days, want 180 a minute: 7,776,000", s.Events.Total)
		}
		for _, w := range s.Windows {
			if w.Covered != w.Window {
				t.Errorf("%s %s: the %v window is covered for %v", s.CUJ, s.Kind, w.Window, w.Covered)
			}
		}
	}
}

// TestTheLabsBannerIsItsOutputAndTheAppKeepsQuiet: 'slolab lab' prints
// where everything is on stdout (stderr is for what goes wrong), and at the
// default log level the demo app's warnings — a 502 for every upload a TCP
// fault breaks, which the user asked for — stay out of the terminal.
func TestTheLabsBannerIsItsOutputAndTheAppKeepsQuiet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- runCLICtx(ctx, &out, &errOut, "lab", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--dashboard", "127.0.0.1:0",
			"--app", "127.0.0.1:0", "--rate", "0", "--history", "0", "--admin-token", "t0k-t0k-t0k-t0k-t0k", "--no-latency")
	}()
	var admin, app string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`admin API +(http://\S+)/api/v1/`).FindStringSubmatch(out.String()); m != nil && strings.Contains(out.String(), "Ctrl-C stops everything") {
			admin = m[1]
			app = regexp.MustCompile(`app +(http://\S+)/ `).FindStringSubmatch(out.String())[1]
			break
		}
	}
	if admin == "" {
		cancel()
		t.Fatalf("no banner on stdout within 20s; stdout %q, stderr %q (exit %d)", out.String(), errOut.String(), <-done)
	}
	c, err := adminClient(admin, "t0k-t0k-t0k-t0k-t0k")
	if err != nil {
		t.Fatal(err)
	}
	rule, err := spec.ParseFaultRule("test", []byte(`{"match": {"tcp": "blobs"}, "rate": "100%", "tcp": {"reset": true}, "ttl": "1h"}`), "blobs-reset")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFault(ctx, rule); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, err := http.Post(app+"/files?name=a.txt", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Errorf("an upload with the blob store reset answered %d, want 502", resp.StatusCode)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("the lab exited %d: %s", code, errOut.String())
	}
	if strings.Contains(errOut.String(), "dashboard") || strings.Contains(errOut.String(), "demo app") {
		t.Errorf("stderr holds the banner or the app's warnings:\n%s", errOut.String())
	}
}

func adminClient(url, token string) (*admin.Client, error) { return admin.NewClient(url, token) }

// TestTheLabsLoadContinuesItsHistory: the lab's load starts where its
// synthetic history ends, however long the lab took to start (here two
// seconds more than usual): the requests due meanwhile go out at once, so
// the store holds the steady rate with no gap after the history, and a
// window that spans the start holds its full share (update: 3 a second).
func TestTheLabsLoadContinuesItsHistory(t *testing.T) {
	o := freeOptions("20/s")
	o.history = time.Hour
	o.noLatency = true
	o.store = filepath.Join(t.TempDir(), "lab.db")
	l, err := newLab(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	until := l.history.synthetic.Until
	time.Sleep(2 * time.Second) // a slow start
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	time.Sleep(2 * time.Second)
	t1 := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()

	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: o.store})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// From the minute the history ends in: its share of that minute, then 3
	// a second from its end until the load stopped, between t1 and t2 (each
	// within one request: the history's partial minute and the load both
	// round down).
	m := slo.Align(until, time.Minute)
	ev, err := st.Events(context.Background(), slo.Range{From: m, To: t2.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	got := ev[slo.Key{CUJ: "update", Kind: slo.Availability}].Total
	lo, hi := uint64(3*t1.Sub(m).Seconds())-1, uint64(3*t2.Sub(m).Seconds())+1
	if got < lo || got > hi {
		t.Errorf("the store holds %d update requests from %s on, want %d to %d: 3 a second, with no gap where the history ends at %s", got, m.Format(time.TimeOnly), lo, hi, until.Format(time.TimeOnly))
	}
}
