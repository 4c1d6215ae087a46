package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

func golden(t *testing.T, name, got string) {
	t.Helper()
	testtool.Golden(t, filepath.Join("testdata", name), []byte(got))
}

// seedStore writes four days of chat traffic ending at end into a new
// store: update serves 1,000 requests a minute and fails 20 a minute (burn
// rate 20) during burst; read serves 100 a minute, 1 in 10 slower than its
// 300ms threshold in its last hour.
func seedStore(t *testing.T, end time.Time, burst slo.Range) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slolab.db")
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Now: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bounds := []time.Duration{300 * time.Millisecond, time.Second}
	var bs []sli.Bucket
	for m := end.Add(-4 * spec.Day); m.Before(end); m = m.Add(time.Minute) {
		u := sli.Bucket{Start: m, CUJ: "update", Group: "none", Counts: sli.Counts{Total: 1000, Hist: []uint64{1000, 0, 0}}}
		if !m.Before(burst.From) && m.Before(burst.To) {
			u.Bad = 20
		}
		r := sli.Bucket{Start: m, CUJ: "read", Group: "none", Counts: sli.Counts{Total: 100, Hist: []uint64{100, 0, 0}}}
		if !m.Before(end.Add(-time.Hour)) {
			r.Slow, r.Hist = 10, []uint64{90, 10, 0}
		}
		bs = append(bs, u, r)
	}
	if err := st.Add(context.Background(), bounds, bs, end); err != nil {
		t.Fatal(err)
	}
	return path
}

const chatSpec = "../../examples/chat.yaml"

func TestSloCommandsOnAStore(t *testing.T) {
	end := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	burstAt := end.Add(-30 * time.Hour)
	db := seedStore(t, end, slo.Range{From: burstAt, To: burstAt.Add(90 * time.Minute)})

	t.Run("status in the burst pages through 1h/5m", func(t *testing.T) {
		at := burstAt.Add(50 * time.Minute).Format(time.RFC3339)
		code, out, errOut := runCLI(t, nil, "slo", "status", "--spec", chatSpec, "--store", db, "--at", at, "--color", "never")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		golden(t, "status.txt", strings.ReplaceAll(out, db, "slolab.db"))

		code, out, _ = runCLI(t, nil, "slo", "status", "--spec", chatSpec, "--store", db, "--at", at, "-o", "json")
		var st struct {
			Source string
			SLOs   []slo.SLOStatus
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
			t.Fatalf("exit %d, %v: %s", code, err, out)
		}
		var firing []string
		for _, s := range st.SLOs {
			for _, a := range s.Alerts {
				if a.Firing {
					firing = append(firing, s.CUJ+" "+string(s.Kind)+" "+a.Severity+" "+a.Pair())
				}
			}
		}
		if strings.Join(firing, ", ") != "update availability page 1h/5m" {
			t.Errorf("firing: %v", firing)
		}
	})

	t.Run("backtest lists the page and when it resolved", func(t *testing.T) {
		code, out, errOut := runCLI(t, nil, "slo", "backtest", "--spec", chatSpec, "--store", db,
			"--from", end.Add(-2*spec.Day).Format(time.RFC3339), "--to", end.Format(time.RFC3339), "--color", "never")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		golden(t, "backtest.txt", strings.ReplaceAll(out, db, "slolab.db"))
	})

	t.Run("report writes the review", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "review.md")
		code, _, errOut := runCLI(t, nil, "slo", "report", "--spec", chatSpec, "--store", db, "--window", "2d", "--at", end.Format(time.RFC3339), "--out", out)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		b, _ := os.ReadFile(out)
		for _, want := range []string{
			"# SLO review: chat\n",
			// 1,800 of 2,880,000 failed: 62.5% of the 2,880 allowed.
			"| update | messaging-team | availability 99.9% | 99.937% | 37.5% | 1 page | — |",
			"| page | 1h/5m ≥ 14.4 | 2026-03-07 18:44 UTC | 2026-03-07 19:32 UTC | 48m | 20.0 |",
			// 600 of 288,000 slow: 20.8% of the 2,880 allowed.
			"| read | messaging-team | latency 99% ≤ 300ms | 99.791% | 79.2% | none | — |",
			"## New errors\n\nNo error class was seen for the first time in the last 2d (against the 1w before).\n",
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("the review lacks %q:\n%s", want, b)
			}
		}
	})

	t.Run("mistakes", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			err  string
		}{
			{[]string{"slo", "status", "--spec", chatSpec, "--store", filepath.Join(t.TempDir(), "none.db")}, ExitFailure, "slolab: no store at "},
			{[]string{"slo", "status", "--store", db}, ExitUsage, "slolab: --spec is required"},
			{[]string{"slo", "status", "--spec", chatSpec, "--store", db, "--prometheus", "http://127.0.0.1:1"}, ExitUsage, "slolab: give --store or --prometheus, not both"},
			{[]string{"slo", "status", "--spec", chatSpec, "--prometheus-recorded"}, ExitUsage, "slolab: --prometheus-recorded reads Prometheus: give --prometheus URL too"},
			{[]string{"slo", "status", "--spec", chatSpec, "--store", db, "--webhook", "http://x"}, ExitUsage, "slolab: --webhook and --alertmanager notify on changes, so they need --watch"},
			{[]string{"slo", "report", "--spec", chatSpec, "--store", db, "--format", "pdf"}, ExitUsage, `slolab: --format "pdf": want one of html, json, md`},
			{[]string{"slo", "backtest", "--spec", chatSpec, "--store", db, "--from", "tomorrow"}, ExitUsage, `slolab: --from "tomorrow": want a time`},
			{[]string{"slo", "status", "--spec", chatSpec, "--prometheus", "127.0.0.1:9090"}, ExitUsage, `slolab: --prometheus: prometheus URL "127.0.0.1:9090": want http://host:port`},
		} {
			code, _, errOut := runCLI(t, nil, c.args...)
			if code != c.code || !strings.HasPrefix(errOut, c.err) {
				t.Errorf("%v: exit %d %q, want %d %q…", c.args, code, errOut, c.code, c.err)
			}
		}
	})
}

// TestWatchNotifiesAWebhook: a live store whose last hour burns at 20
// pages on the first evaluation, and the webhook hears of it once.
func TestWatchNotifiesAWebhook(t *testing.T) {
	end := slo.Align(time.Now(), time.Minute)
	db := seedStore(t, end, slo.Range{From: end.Add(-time.Hour), To: end})
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer hook.Close()
	code, out, errOut := runCLI(t, nil, "slo", "status", "--spec", chatSpec, "--store", db, "--watch", "--count", "2", "--interval", "1s", "--webhook", hook.URL, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, `"service": "chat"`); n != 2 {
		t.Errorf("%d statuses printed, want 2", n)
	}
	if !strings.Contains(errOut, "update/availability page: 1h/5m ≥ 14.4 fired") {
		t.Errorf("stderr does not announce the page:\n%s", errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0]["status"] != "firing" || got[0]["cuj"] != "update" || got[0]["windows"] != "1h/5m" {
		t.Errorf("webhook got %v, want one firing page for update", got)
	}
}

// runCLICtx runs slolab in-process until ctx ends.
func runCLICtx(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	return run(&env{ctx: ctx, stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }}, args)
}

// TestSimulateLeavesNothingBehind runs a real proxy on loopback under load
// and simulations that end by --for and by Ctrl-C: every rule they put is
// gone afterwards, and intended and realised were printed.
func TestSimulateLeavesNothingBehind(t *testing.T) {
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	up, _ := url.Parse(app.URL)
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-"}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	loadCtx, stopLoad := context.WithCancel(ctx)
	wg.Go(func() { // steady load: 200 requests a second on update, bounded
		for i := 0; i < 5000 && loadCtx.Err() == nil; i++ {
			if resp, err := http.Post(stack.proxyURL()+"/update", "text/plain", nil); err == nil {
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	defer stopLoad()
	client, _ := admin.NewClient(stack.adminURL(), "")
	left := func() []string {
		sts, err := client.ListFaults(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range sts {
			names = append(names, s.Rule.Name+" "+s.State)
		}
		return names
	}

	t.Run("ended by --for", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := runCLICtx(ctx, &out, &errOut, "simulate", "update", "--admin", stack.adminURL(), "--burn-rate", "14.4",
			"--baseline-latency", "20ms", "--for", "2500ms", "--every", "1s", "--lease", "3s")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "1.44% of update requests fail; at this rate (burn rate 14.4) the 30-day budget lasts exactly 2d2h, and the page alert (1h/5m ≥ 14.4) fires after 1h.\n") {
			t.Errorf("no explanation first:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "\n  note: --for 2.5s ends the simulation before the page alert (1h/5m ≥ 14.4) can fire (after 1h): give a longer --for, or none, to watch it fire\n") {
			t.Errorf("no note that --for ends the simulation before the page can fire:\n%s", out.String())
		}
		if n := strings.Count(out.String(), "update: intended 1.44% failing (burn 14.4) · realised 1m "); n < 2 {
			t.Errorf("%d reports of intended against realised, want at least 2:\n%s", n, out.String())
		}
		if !strings.Contains(errOut.String(), "slolab simulate: removed sim-update (") || !strings.Contains(errOut.String(), "slolab simulate: removed sim-baseline-read (") {
			t.Errorf("removals not reported:\n%s", errOut.String())
		}
		if l := left(); len(l) != 0 {
			t.Errorf("rules left behind: %v", l)
		}
	})

	t.Run("ended by Ctrl-C", func(t *testing.T) {
		simCtx, interrupt := context.WithCancel(ctx)
		var out, errOut bytes.Buffer
		done := make(chan int)
		go func() {
			done <- runCLICtx(simCtx, &out, &errOut, "simulate", "update", "--admin", stack.adminURL(), "--latency", "1s@99%", "--every", "500ms", "-o", "json")
		}()
		deadline := time.Now().Add(10 * time.Second)
		for len(left()) < 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if l := left(); len(l) != 1 || l[0] != "sim-update active" {
			t.Errorf("while simulating: %v, want sim-update active", l)
		}
		time.Sleep(1200 * time.Millisecond)
		interrupt()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, errOut.String())
		}
		if l := left(); len(l) != 0 {
			t.Errorf("rules left behind: %v", l)
		}
		dec := json.NewDecoder(&out)
		var plan struct{ Plan slo.Plan }
		if err := dec.Decode(&plan); err != nil || len(plan.Plan.Rules) != 1 || plan.Plan.Rules[0].Delay.String() != "1.1s" {
			t.Errorf("first JSON value is not the plan: %+v %v", plan, err)
		}
		var r Realised
		if err := dec.Decode(&r); err != nil || r.Kind != slo.Latency || r.Intended != "1%" || len(r.Windows) != 3 {
			t.Errorf("second JSON value is not a realised report: %+v %v", r, err)
		}
	})

	t.Run("refuses nonsense", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			err  string
		}{
			{[]string{"simulate", "update", "--admin", stack.adminURL()}, "slolab: give exactly one of --availability, --burn-rate, --latency and --alert"},
			{[]string{"simulate", "checkout", "--admin", stack.adminURL(), "--burn-rate", "2"}, `slolab: service chat has no CUJ "checkout"`},
			{[]string{"simulate", "update", "--admin", stack.adminURL(), "--latency", "1s"}, "slolab: --latency: want THRESHOLD@OBJECTIVE"},
		} {
			code, _, errOut := runCLI(t, nil, c.args...)
			if code != ExitUsage || !strings.HasPrefix(errOut, c.err) {
				t.Errorf("%v: exit %d %q", c.args, code, errOut)
			}
		}
		if l := left(); len(l) != 0 {
			t.Errorf("rules left behind: %v", l)
		}
	})
}

// TestSimulateProgressLinesSayWhenTheyWereTaken: past a minute, reports five
// seconds apart carry different times (they used to read "1m" alike), and
// an alert state's intended share reads as a percentage, not a fraction.
func TestSimulateProgressLinesSayWhenTheyWereTaken(t *testing.T) {
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := slo.PlanFor(svc, "update", slo.Want{Alert: "page", RequestsPerMinute: 1500})
	if err != nil {
		t.Fatal(err)
	}
	resp := &admin.CUJsResponse{Service: "chat", CUJs: []admin.CUJStatus{{Name: "update",
		Windows: []admin.WindowSLI{
			{Window: spec.Duration(time.Minute), Span: spec.Duration(53 * time.Second), Total: 1500, Bad: 22},
			{Window: spec.Duration(5 * time.Minute), Span: spec.Duration(4*time.Minute + 53*time.Second), Total: 7500, Bad: 110},
			{Window: spec.Duration(time.Hour), Span: spec.Duration(19*time.Minute + 3*time.Second), Total: 28500, Bad: 418},
		}}}}
	var out bytes.Buffer
	s := &simulation{out: &out}
	for _, d := range []time.Duration{65 * time.Second, 70 * time.Second} {
		if err := s.print(p, resp, d); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// The proxy has run for 19 minutes: its 1h window says so; the 1m and
	// 5m windows are full but for the open 10-second interval.
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "1m5s  update: intended ~1.453% failing (burn 14.53) · realised 1m 1.467% 5m 1.467% 1h (only 19m3s) 1.467% · ") ||
		!strings.HasPrefix(lines[1], "1m10s  update: ") {
		t.Errorf("progress lines:\n%s", out.String())
	}
}
