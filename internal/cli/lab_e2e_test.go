package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "rewrite docs/dashboard.png from the end-to-end test")

// startLab runs a lab in-process on free loopback ports until the test ends.
func startLab(t testing.TB, rate string) *lab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := &labOptions{
		listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", dashboard: "127.0.0.1:0", app: "127.0.0.1:0",
		rate: rate, seed: 1, token: "e2e-token-e2e-token", poll: 250 * time.Millisecond, auditLog: "-", logLevel: "warn",
	}
	l, err := newLab(ctx, o, t.Output())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the lab stopped with: %v", err)
		}
	})
	select {
	case <-l.dash.Polled():
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not read the proxy within 10s")
	}
	return l
}

// browser starts headless Chromium as the machine needs it: no sandbox (root),
// no GPU, no QUIC and no background networking (the network is closed), a
// fresh profile.
func browser(t testing.TB) *tab {
	t.Helper()
	exe := testtool.Path(t, "chromium", "chromium-browser", "google-chrome")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as ctx: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting %s: %v", exe, err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return &tab{t: t, ctx: ctx}
}

// tab is a browser tab driven by a test.
type tab struct {
	t   testing.TB
	ctx context.Context
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](b *tab, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// js runs JavaScript for its effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr + "; undefined")
}

// waitFor polls a JavaScript expression until it is true (bounded).
func (b *tab) waitFor(what, expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.t.Fatalf("waiting until %s: %v", what, err)
	}
}

// pageChecks are the Lighthouse-style basics, evaluated in the page: a
// title, a label for every control, nothing wider than the viewport.
const pageChecks = `(() => {
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter((e) => e.type !== "hidden" && !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
    .map((e) => e.id || e.name || e.outerHTML.slice(0, 60));
  const wide = [...document.querySelectorAll("body *")]
    .filter((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 1 && !e.closest(".scroll"); })
    .map((e) => e.tagName + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ")[0] : ""));
  return {title: document.title, unlabelled, scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth, wide: wide.slice(0, 5)};
})()`

type pageReport struct {
	Title       string   `json:"title"`
	Unlabelled  []string `json:"unlabelled"`
	ScrollWidth int      `json:"scrollWidth"`
	InnerWidth  int      `json:"innerWidth"`
	Wide        []string `json:"wide"`
}

func checkPage(b *tab, name string, wantTitle string) {
	t := b.t
	t.Helper()
	rep := eval[pageReport](b, name+": page checks", pageChecks)
	if !strings.Contains(rep.Title, wantTitle) {
		t.Errorf("%s: title %q, want one containing %q", name, rep.Title, wantTitle)
	}
	if len(rep.Unlabelled) > 0 {
		t.Errorf("%s: controls without a label: %q", name, rep.Unlabelled)
	}
	if rep.ScrollWidth > rep.InnerWidth {
		t.Errorf("%s: the page is %dpx wide in a %dpx viewport (too wide: %q)", name, rep.ScrollWidth, rep.InnerWidth, rep.Wide)
	}
}

// loadTime reads the navigation timing of the current page: from the start
// of navigation to the end of the load event.
func loadTime(b *tab) time.Duration {
	b.t.Helper()
	ms := eval[float64](b, "reading navigation timing", `(() => { const n = performance.getEntriesByType("navigation")[0]; return n.loadEventEnd - n.startTime; })()`)
	return time.Duration(ms * float64(time.Millisecond))
}

func TestLabInChromium(t *testing.T) {
	b := browser(t)
	started := time.Now()
	l := startLab(t, "40/s") // modest: under -race, on 2 shared cores, SQLite and the proxy must keep up
	dash := l.dashboardURL()
	recordRuns(t, l)

	// The dashboard, with the token the lab prints.
	b.do("opening the dashboard", chromedp.Navigate(tokenURL(dash, l.o.token)))
	b.waitFor("every CUJ is listed", `document.querySelectorAll("#cujs tbody tr[data-cuj]").length === 6`)
	names := eval[[]string](b, "reading the CUJ table", `[...document.querySelectorAll("#cujs tbody tr")].map((r) => r.dataset.cuj)`)
	if got, want := strings.Join(names, " "), strings.Join(l.svc.CUJNames(), " "); got != want {
		t.Errorf("CUJ table lists %q, want %q", got, want)
	}
	if hash := eval[string](b, "reading the URL", `location.hash`); hash != "" {
		t.Errorf("the token stays in the address bar: %q", hash)
	}
	t.Logf("dashboard loaded in %v (navigation start to load event; the goal is under 1s)", loadTime(b))
	checkPage(b, "dashboard at 1280×800", "slolab")

	// The SLO engine's view: SLIs over the SLO window, burn rates over its windows.
	b.waitFor("the SLO engine's SLIs are shown", `[...document.querySelectorAll('#cujs tr[data-cuj="read"] td')].some((td) => td.textContent.includes("avail 100%") && td.textContent.includes("req over 30d"))`)
	t.Logf("the SLO engine's first SLIs showed %v after the lab started (the goal is within 30s)", time.Since(started).Round(100*time.Millisecond))
	if got, want := eval[string](b, "reading the burn-rate header", `document.querySelector("#burn-h").textContent`), "Burn rate 5m · 30m · 1h · 2h · 6h · 1d · 3d"; got != want {
		t.Errorf("burn-rate header %q, want %q", got, want)
	}

	// The record of experiments and GameDays, newest first; the GameDay's
	// report opens with its figures and timeline, the experiment's with its
	// hypotheses and the experiment-vs-control statistics.
	b.waitFor("the experiments section lists both runs", `document.querySelectorAll("#runs tbody tr[data-run]").length === 2`)
	rows := eval[[]string](b, "reading the runs", `[...document.querySelectorAll("#runs tbody tr[data-run]")].map((r) => [...r.cells].slice(0, 4).map((c) => c.textContent).join(" | "))`)
	if want := []string{
		"GameDay | blobs-drill | failed | detected after 2m, recovered after 11m",
		"experiment | x | held | the steady state held throughout and after the method, and every expectation held",
	}; strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("the experiments section lists:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	b.do("opening the GameDay", chromedp.Click(chromedp.CSS(`#runs tr[data-kind="gameday"] button.open`)))
	b.waitFor("the GameDay's figures and timeline show", `(() => {
		const d = document.querySelector("#runs tr.detail .run-detail");
		return !!d && d.querySelector('dd[data-figure="Time to detect"]').textContent === "2m (by alert)" &&
			d.querySelectorAll(".timeline li").length === 3; })()`)
	b.do("opening the experiment", chromedp.Click(chromedp.CSS(`#runs tr[data-kind="experiment"] button.open`)))
	b.waitFor("the experiment's hypotheses and statistics show", `(() => {
		const d = document.querySelectorAll("#runs tr.detail .run-detail")[1];
		return !!d && d.querySelectorAll("table").length === 3 && [...d.querySelectorAll("caption")].every((c) => c.textContent.length > 0) &&
			d.textContent.includes("Fisher p") && d.querySelector("code").textContent.startsWith("availability("); })()`)
	b.do("closing both reports",
		chromedp.Click(chromedp.CSS(`#runs tr[data-kind="gameday"] button.open`)),
		chromedp.Click(chromedp.CSS(`#runs tr[data-kind="experiment"] button.open`)))
	b.waitFor("both reports are closed", `!document.querySelector("#runs tr.detail") && [...document.querySelectorAll("#runs button.open")].every((b) => b.getAttribute("aria-expanded") === "false")`)

	// Simulate: 90% availability on read, chosen in the panel.
	b.do("choosing a simulation",
		chromedp.SetValue(chromedp.CSS("#sim-cuj"), "read"),
		chromedp.SetValue(chromedp.CSS("#sim-state"), "availability"),
		js(`document.querySelector("#sim-state").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(chromedp.CSS("#sim-value")),
		chromedp.SetValue(chromedp.CSS("#sim-value"), "90%"),
		js(`document.querySelector("#sim-value").dispatchEvent(new Event("input"))`),
	)
	b.waitFor("the panel explains the state in the planner's words",
		`document.querySelector("#sim-explanation").textContent.startsWith("1 in 10 read requests fails; at this rate (burn rate 100) the 30-day budget lasts exactly 7h12m")`)
	b.do("starting the simulation", chromedp.Click(chromedp.CSS("#sim-start")))
	b.waitFor("the fault is listed with its lease", `!!document.querySelector('#faults tr[data-fault="sim-read"] td.lease')`)
	b.waitFor("the simulation has seen 100 requests",
		`(() => { const r = document.querySelector('#sims tr[data-active="true"]'); return !!r && +r.dataset.matched >= 100; })()`)
	counts := eval[map[string]string](b, "reading the simulation", `Object.assign({}, document.querySelector('#sims tr[data-active="true"]').dataset)`)
	matched, _ := strconv.ParseUint(counts["matched"], 10, 64)
	injected, _ := strconv.ParseUint(counts["injected"], 10, 64)
	if want := matched / 10; injected+1 < want || injected > want+1 {
		t.Errorf("realised %d failures of %d read requests, want %d±1 (10%%)", injected, matched, want)
	}
	b.waitFor("the chart shows the realised error rate", `(() => {
		const cells = document.querySelectorAll("#chart-sim .u-legend .u-value");
		return document.querySelector("#chart-cuj").textContent === "read" && cells.length >= 2; })()`)
	// Every window of a fresh lab holds the simulation: burn rate 100 pages
	// as soon as the long window holds the alerts' minimum of 5 failures.
	b.waitFor("the SLO engine pages for read", `!!document.querySelector('#cujs tr[data-cuj="read"] .pill.firing.page[data-slo="availability"][data-pair="1h/5m"]')`)

	if path := filepath.Join(testtool.RepoRoot(t), "docs", "dashboard.png"); *updateScreenshot || !exists(path) {
		b.waitFor("a failure shows in the read SLI", `[...document.querySelectorAll('#cujs tr[data-cuj="read"] .bad')].length > 0`)
		b.do("letting the charts draw", chromedp.Sleep(1500*time.Millisecond))
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("taking the screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}

	// Stop it from the panel: no fault remains on the proxy.
	b.do("stopping the simulation", chromedp.Click(chromedp.CSS(`#sims tr[data-active="true"] button.stop`)))
	b.waitFor("the faults table is empty", `!document.querySelector("#no-faults").hidden && !document.querySelector('#sims tr[data-active="true"]')`)
	c, _ := admin.NewClient(l.stack.adminURL(), l.o.token)
	faults, err := c.ListFaults(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range faults {
		if f.State == "active" || f.State == "pending" {
			t.Errorf("fault %s is still %s after stopping the simulation", f.Rule.Name, f.State)
		}
	}
	b.waitFor("the audit log shows the change", `document.querySelector("#audit").textContent.includes("delete sim-read")`)

	// A narrow screen.
	b.do("a narrow viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Reload())
	b.waitFor("the narrow dashboard lists every CUJ", `document.querySelectorAll("#cujs tbody tr[data-cuj]").length === 6 && !!document.querySelector("#chart-sli canvas")`)
	b.waitFor("the narrow dashboard lists the runs", `document.querySelectorAll("#runs tbody tr[data-run]").length === 2`)
	b.do("opening the GameDay on a narrow screen", chromedp.Click(chromedp.CSS(`#runs tr[data-kind="gameday"] button.open`)))
	b.waitFor("the GameDay's detail shows", `!!document.querySelector("#runs tr.detail .timeline")`)
	checkPage(b, "dashboard at 390×844", "slolab")
	b.do("a wide viewport again", chromedp.ResetViewport())

	// Without the token the page loads, says the dashboard needs it (its API
	// does, for reads too) and takes it in the form.
	b.do("forgetting the token", js(`sessionStorage.clear()`), chromedp.Reload())
	b.waitFor("the page asks for the token", `!document.querySelector("#token-form").hidden && document.querySelector("#status").textContent.startsWith("the dashboard needs its token and none was sent")`)
	b.do("entering the token", chromedp.SendKeys(chromedp.CSS("#token"), l.o.token), chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.waitFor("the dashboard reads with the token", `document.querySelectorAll("#cujs tbody tr[data-cuj]").length === 6 && !document.querySelector("#status").classList.contains("bad")`)

	// The demo app's own UI works through the proxy.
	b.do("opening the app through the proxy", chromedp.Navigate(l.stack.proxyURL()+"/"))
	checkPage(b, "demo app", "Chat")
	b.waitFor("the app lists messages", `document.querySelectorAll("#messages li").length > 0`)
	b.do("logging in", chromedp.Click(chromedp.CSS(`#login button`)))
	b.waitFor("alice is logged in", `document.querySelector("#who").textContent === "Logged in as alice."`)
	b.do("sending a message",
		chromedp.SendKeys(chromedp.CSS(`#send input[name=text]`), "hello from the e2e test"),
		chromedp.Click(chromedp.CSS(`#send button`)),
	)
	b.waitFor("the message is listed as alice's", `[...document.querySelectorAll("#messages li")].some((li) => li.textContent.startsWith("alicehello from the e2e test"))`)
}

// recordRuns records an experiment (the runner's golden report) and a GameDay
// in the lab's store the way 'slolab experiment run' and 'gameday run' do.
func recordRuns(t testing.TB, l *lab) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testtool.RepoRoot(t), "experiment", "testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The golden report ran in the first minutes of 2000: move it to two
	// hours ago, so the page (and the screenshot) shows a recent run.
	recent := time.Now().UTC().Add(-2 * time.Hour).Format("2006-01-02T15:")
	data = bytes.ReplaceAll(data, []byte(`"2000-01-01T00:`), []byte(`"`+recent))
	var rep experiment.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := recordExperiment(ctx, l.stack.store, "chat", experiment.Entry{Experiment: rep.Experiment, Verdict: rep.Verdict, Reason: rep.Reason, Report: &rep}); err != nil {
		t.Fatal(err)
	}
	t0 := rep.Ended.Add(time.Hour)
	gd := &experiment.GameDayReport{
		GameDay: "blobs-drill", Description: "The blob store resets every connection.", Facilitator: "ana", Responders: []string{"bo"},
		Started: t0, Ended: t0.Add(20 * time.Minute),
		Figures: experiment.Figures{FaultStart: t0.Add(time.Minute), Detected: t0.Add(3 * time.Minute), DetectedBy: "alert",
			TimeToDetect: spec.Duration(2 * time.Minute), TimeToRecover: spec.Duration(11 * time.Minute)},
		Alerts:      []*experiment.Alert{},
		Experiments: []*experiment.Report{{Experiment: "blobs-reset", Verdict: experiment.Failed, Reason: "upload missed its SLO"}},
		Timeline: []experiment.TimelineEntry{
			{At: t0.Add(time.Minute), Kind: "fault-start", Text: "blobs-reset at 100%", Experiment: "blobs-reset"},
			{At: t0.Add(3 * time.Minute), Kind: "alert", Text: "upload availability page fired"},
			{At: t0.Add(12 * time.Minute), Kind: "recovered", Text: "upload met its SLOs again"},
		},
	}
	if err := recordGameDay(ctx, l.stack.store, gd, "chat"); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// BenchmarkDashboardLoad measures how long the dashboard takes to load in
// Chromium from a lab on loopback: navigation start to the load event, read
// from the browser's own navigation timing (the goal is under 1s).
func BenchmarkDashboardLoad(b *testing.B) {
	tb := browser(b)
	l := startLab(b, "50/s")
	url := l.dashboardURL()
	var total time.Duration
	for b.Loop() {
		tb.do("loading the dashboard", chromedp.Navigate(url))
		tb.waitFor("the CUJs are listed", `document.querySelectorAll("#cujs tbody tr[data-cuj]").length === 6`)
		total += loadTime(tb)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
	b.ReportMetric(0, "ns/op")
}
