package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/proxy/admin"
)

// slolabEnv makes the test binary run slolab with the arguments it holds
// instead of running tests: a real `slolab demo-app` process. See TestMain.
const slolabEnv = "SLOLAB_TEST_RUN"

func TestMain(m *testing.M) {
	if args := os.Getenv(slolabEnv); args != "" {
		os.Exit(runChild(strings.Fields(args)))
	}
	os.Exit(m.Run())
}

// runChild runs slolab until its stdin closes (the test ended) or two
// minutes pass, so it never outlives the test.
func runChild(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	return Run(ctx, args, strings.NewReader(""), os.Stdout, os.Stderr)
}

// startDemoApp starts `slolab demo-app` as its own process and returns its
// URL; the process ends with the test.
func startDemoApp(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), slolabEnv+"="+strings.Join(append([]string{"demo-app", "--listen", "127.0.0.1:0", "--no-latency"}, args...), " "))
	stdin, _ := cmd.StdinPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(stderr)
	banner, err := rd.ReadString('\n')
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(rd); rest <- string(b) }()
	t.Cleanup(func() {
		stdin.Close()
		err := cmd.Wait()
		if log := <-rest; err != nil {
			t.Errorf("demo app %s: %v\n%s", name, err, log)
		}
	})
	u, _, ok := strings.Cut(strings.TrimPrefix(banner, "slolab demo-app: "), " ")
	if err != nil || !ok || !strings.HasPrefix(u, "http://") {
		t.Fatalf("demo app %s: banner %q %v", name, banner, err)
	}
	return strings.TrimSuffix(u, "/")
}

// startSplitProxy runs `slolab proxy` in-process in front of two releases at
// the given weight and returns its proxy and admin URLs.
func startSplitProxy(t *testing.T, stable, canaryURL, weight string) (string, string) {
	t.Helper()
	o := &proxyOptions{
		specPath: "testdata/chat-canary.yaml", listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0",
		upstreams: []string{"stable=" + stable, "canary=" + canaryURL}, canaryWeight: weight, canarySeed: 1,
		maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-",
	}
	upstream, err := o.check()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := loadService(o.specPath)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := newProxyStack(svc, upstream, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return stack.proxyURL(), stack.adminURL()
}

// chatTraffic sends n requests through the proxy from 8 keep-alive
// clients: request i is an upload when i%uploadEvery == 0, else a read or a
// message sent. It returns how many answers were 5xx.
func chatTraffic(t *testing.T, proxyURL string, n, uploadEvery int) int {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var next, fiveHundreds atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var resp *http.Response
				var err error
				switch {
				case i%uploadEvery == 0:
					resp, err = client.Post(proxyURL+"/files?name=notes.txt", "text/plain", strings.NewReader("notes from the canary test"))
				case i%2 == 0:
					resp, err = client.Get(fmt.Sprintf("%s/messages/%d", proxyURL, 1+i%500))
				default:
					resp, err = client.Post(proxyURL+"/messages", "application/json", strings.NewReader(`{"room": "general", "text": "hello"}`))
				}
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode >= 500:
					fiveHundreds.Add(1)
				case resp.StatusCode >= 300:
					t.Errorf("request %d: status %d", i, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return int(fiveHundreds.Load())
}

// judgeJSON runs `slolab canary judge -o json`.
func judgeJSON(t *testing.T, adminURL string) (int, map[string]string, string) {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "canary", "judge", "--spec", "testdata/chat-canary.yaml", "--admin", adminURL, "-o", "json")
	var res struct {
		Verdict string
		CUJs    []struct{ CUJ, Verdict string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("judge -o json: %v\n%s\n%s", err, out, errOut)
	}
	verdicts := map[string]string{"overall": res.Verdict}
	for _, c := range res.CUJs {
		verdicts[c.CUJ] = c.Verdict
	}
	return code, verdicts, out
}

func canaryWeight(t *testing.T, adminURL string) string {
	t.Helper()
	c, _ := admin.NewClient(adminURL, "")
	st, err := c.Canary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Weight.String()
}

// The case: a canary that breaks only upload, 0.25% of all
// requests — its blob store is misconfigured, so every upload it serves
// fails — while the total error rate stays under the 0.05% a total-rate
// gate would allow. The judge fails upload; slolab rollout rolls back.
func TestACanaryBreakingALowTrafficCUJIsFailedAndRolledBack(t *testing.T) {
	stable := startDemoApp(t, "stable")
	canaryURL := startDemoApp(t, "canary", "--blobs", "127.0.0.1:1") // nothing listens there
	proxyURL, adminURL := startSplitProxy(t, stable, canaryURL, "10")

	const n = 10_000
	fiveHundreds := chatTraffic(t, proxyURL, n, 400) // 25 uploads: 0.25%
	if total := float64(fiveHundreds) / n; fiveHundreds == 0 || total >= 0.0005 {
		t.Fatalf("%d of %d requests failed (%.3f%%): the scenario needs a total error rate under 0.05%%", fiveHundreds, n, 100*total)
	}
	code, verdicts, out := judgeJSON(t, adminURL)
	want := map[string]string{"overall": "fail", "read": "pass", "send": "pass", "upload": "fail"}
	if code != ExitFailure || fmt.Sprint(verdicts) != fmt.Sprint(want) {
		t.Fatalf("judge: exit %d, verdicts %v, want exit 1 and %v\n%s", code, verdicts, want, out)
	}

	code, out, errOut := runCLI(t, nil, "rollout", "--spec", "testdata/chat-canary.yaml", "--admin", adminURL,
		"--steps", "10%,pause 1s,50%,pause 1s,100%", "--interval", "1s")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != ExitFailure || len(lines) != 3 ||
		!strings.HasSuffix(lines[0], "step 1/5 10% · weight 10%: the canary serves 10% of every CUJ") ||
		!strings.Contains(lines[1], "step 2/5 pause 1s · analysis fail: over ") ||
		!strings.Contains(lines[2], "step 2/5 pause 1s · ROLLBACK to 0%: rolled back: upload: availability: ") ||
		!strings.HasSuffix(errOut, "slolab rollout: rolled back\n") {
		t.Errorf("rollout: exit %d\n%s\n%s", code, out, errOut)
	}
	if w := canaryWeight(t, adminURL); w != "0%" {
		t.Errorf("weight after the rollback: %s, want 0%%", w)
	}
	// After the rollback every request goes to stable.
	if n := chatTraffic(t, proxyURL, 400, 4); n != 0 {
		t.Errorf("%d of 400 requests failed after the rollback", n)
	}
}

// A canary identical to stable passes and is promoted; with too little
// traffic the judge is inconclusive and says how much would do.
func TestAnIdenticalCanaryPassesAndTooLittleTrafficIsInconclusive(t *testing.T) {
	stable := startDemoApp(t, "stable")
	canaryURL := startDemoApp(t, "canary")
	proxyURL, adminURL := startSplitProxy(t, stable, canaryURL, "50")

	chatTraffic(t, proxyURL, 60, 3) // 20 requests a CUJ, 10 of them the canary's
	code, verdicts, _ := judgeJSON(t, adminURL)
	want := map[string]string{"overall": "inconclusive", "read": "inconclusive", "send": "inconclusive", "upload": "inconclusive"}
	if code != ExitInconclusive || fmt.Sprint(verdicts) != fmt.Sprint(want) {
		t.Errorf("little traffic: exit %d, %v", code, verdicts)
	}
	code, out, _ := runCLI(t, nil, "canary", "judge", "--spec", "testdata/chat-canary.yaml", "--admin", adminURL)
	if code != ExitInconclusive || !strings.HasPrefix(out, "canary INCONCLUSIVE: service chat, proxy "+adminURL+", the last 5m") ||
		!strings.Contains(out, "upload: inconclusive\n  too little traffic: a pass needs 299 canary requests in the window, the canary served 10; that takes 1.993 req/s of upload traffic at 50% over 5m") {
		t.Errorf("table: exit %d\n%s", code, out)
	}

	if n := chatTraffic(t, proxyURL, 3000, 3); n != 0 { // 1,000 a CUJ, 500 the canary's
		t.Fatalf("%d requests failed", n)
	}
	code, verdicts, out = judgeJSON(t, adminURL)
	want = map[string]string{"overall": "pass", "read": "pass", "send": "pass", "upload": "pass"}
	if code != ExitOK || fmt.Sprint(verdicts) != fmt.Sprint(want) {
		t.Errorf("identical canary: exit %d, %v\n%s", code, verdicts, out)
	}
	code, out, errOut := runCLI(t, nil, "rollout", "--spec", "testdata/chat-canary.yaml", "--admin", adminURL,
		"--steps", "50%,pause 1s", "--interval", "1s", "-o", "json")
	var kinds []string
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var ev struct{ Event, Verdict string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		kinds = append(kinds, ev.Event+" "+ev.Verdict)
	}
	if code != ExitOK || fmt.Sprint(kinds) != "[weight  analysis pass weight  promoted pass]" || canaryWeight(t, adminURL) != "100%" {
		t.Errorf("rollout: exit %d %v\n%s\n%s", code, kinds, out, errOut)
	}
}

func TestCanaryCommandsRefuseBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"canary", "judge"}, "slolab: --spec is required: the service spec listing the CUJs and their SLOs\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--window", "7h"}, "slolab: --window 7h0m0s: must be in (0, 6h], the history a proxy keeps\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--cuj", "checkout"}, "slolab: --cuj: service chat has no CUJ \"checkout\" (it has send, read, upload)\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--confidence", "100%"}, "slolab: --confidence: must be below 100%, got 100%\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--max-burn-rate", "0"}, "slolab: --max-burn-rate \"0\": want a positive number such as 1 or 2\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--at", "1h"}, "slolab: --at needs --store or --prometheus: the proxy's live windows always end now\n"},
		{[]string{"canary", "judge", "--spec", "testdata/chat-canary.yaml", "--admin", "http://127.0.0.1:1", "--prometheus", "http://127.0.0.1:2"}, "slolab: give one source: --admin (the proxy's live windows), --store or --prometheus\n"},
		{[]string{"rollout", "--spec", "testdata/chat-canary.yaml"}, "slolab: --steps is required, e.g. --steps \"25%,pause 5m,50%,pause 5m,100%\"\n"},
		{[]string{"rollout", "--spec", "testdata/chat-canary.yaml", "--steps", "25%,wait"}, "slolab: steps: step 2 \"wait\": want a weight from 0% to 100% (\"25%\") or \"pause 5m\"\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "stable=http://a:1"}, "slolab: --upstream: a split needs both stable=URL and canary=URL\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "http://a:1", "--upstream", "http://b:1"}, "slolab: --upstream \"http://a:1\": with two upstreams, name them: --upstream stable=URL --upstream canary=URL\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "blue=http://a:1", "--upstream", "canary=http://b:1"}, "slolab: --upstream \"blue=http://a:1\": the upstreams are named stable and canary, got \"blue\"\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "http://a:1", "--canary-weight", "10"}, "slolab: --canary-weight needs a canary: --upstream stable=URL --upstream canary=URL\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "stable=http://a:1", "--upstream", "canary=http://b:1", "--canary-weight", "120"}, "slolab: --canary-weight \"120\": must be at most 100%, got 120%\n"},
		{[]string{"proxy", "--spec", "x.yaml", "--upstream", "stable=http://a:1", "--upstream", "canary=http://b:1", "--revision-header", "X-Canary"}, "slolab: --revision-header and a canary upstream exclude each other: either the proxy splits traffic (stable=, canary=) or a mesh does and marks the canary with the header\n"},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != ExitUsage || errOut != tc.want {
			t.Errorf("%v: exit %d\n got %q\nwant %q", tc.args, code, errOut, tc.want)
		}
	}
	// A proxy that does not split: judge and rollout say so, exit 1.
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", upstreams: []string{"http://127.0.0.1:1"}, canaryWeight: "0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", specPath: "testdata/chat-canary.yaml"}
	up, err := o.check()
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := loadService(o.specPath)
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	code, _, errOut := runCLI(t, nil, "rollout", "--spec", "testdata/chat-canary.yaml", "--admin", stack.adminURL(), "--steps", "10%")
	if code != ExitFailure || errOut != "slolab: the proxy does not split traffic: start it with --upstream stable=URL --upstream canary=URL, or --revision-header NAME\n" {
		t.Errorf("rollout without a split: exit %d %q", code, errOut)
	}
	code, out, _ := runCLI(t, nil, "canary", "judge", "--spec", "testdata/chat-canary.yaml", "--admin", stack.adminURL())
	if code != ExitInconclusive || !strings.Contains(out, "note: no request was served by a stable or canary revision in the last 5m") {
		t.Errorf("judge without a split: exit %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, nil, "canary", "judge", "--spec", "../../examples/chat.yaml", "--admin", stack.adminURL())
	if code != ExitUsage || errOut != "slolab: proxy "+stack.adminURL()+" does not measure CUJ \"login\": judge with the spec the proxy runs\n" {
		t.Errorf("judge with another spec: exit %d %q", code, errOut)
	}
}

// canary serve answers verdicts until its context ends (Ctrl-C), then stops
// cleanly with exit 0.
func TestCanaryServeAnswersUntilInterrupted(t *testing.T) {
	stable := startDemoApp(t, "stable")
	canaryURL := startDemoApp(t, "canary")
	proxyURL, adminURL := startSplitProxy(t, stable, canaryURL, "50")
	chatTraffic(t, proxyURL, 60, 3)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd, wr := io.Pipe()
	var out strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(&env{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: wr, getenv: func(string) string { return "" }},
			[]string{"canary", "serve", "--spec", "testdata/chat-canary.yaml", "--admin", adminURL, "--listen", "127.0.0.1:0", "--log-level", "warn"})
		wr.Close()
	}()
	br := bufio.NewReader(rd)
	banner, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	verdictURL, _, ok := strings.Cut(strings.TrimPrefix(banner, "slolab canary serve: "), " ")
	if !ok || !strings.HasSuffix(verdictURL, "/api/v1/verdict") {
		t.Fatalf("banner %q", banner)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(br); rest <- string(b) }()
	resp, err := http.Get(verdictURL)
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Verdict string }
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 200 || res.Verdict != "inconclusive" {
		t.Errorf("GET %s: %d %q", verdictURL, resp.StatusCode, res.Verdict)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d", code)
	}
	if log := <-rest; log != "slolab canary serve: stopped\n" {
		t.Errorf("after the banner: %q", log)
	}
}
