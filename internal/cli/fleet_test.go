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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/promtest"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
	"slolab.dev/slolab/web"
)

// fleetMember is one `slolab proxy --cluster-listen` stack, in-process.
type fleetMember struct {
	stack *proxyStack
	admin *admin.Client
}

// startFleet starts n proxy stacks on loopback that form a fleet, each
// with a stable and a canary upstream, the first one the others' peer.
func startFleet(t *testing.T, n int, stable, canary string) []*fleetMember {
	t.Helper()
	svc, err := loadService("testdata/chat-canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var members []*fleetMember
	for i := range n {
		o := &proxyOptions{
			specPath: "testdata/chat-canary.yaml", listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0",
			upstreams: []string{"stable=" + stable, "canary=" + canary}, canaryWeight: "0", canarySeed: 1,
			maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-",
			cluster: clusterOptions{listen: "127.0.0.1:0", name: fmt.Sprintf("m%d", i+1)},
		}
		if i > 0 {
			o.cluster.peers = []string{members[0].stack.node.Addr()}
		}
		upstream, err := o.check()
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
		c, _ := admin.NewClient(stack.adminURL(), "")
		members = append(members, &fleetMember{stack: stack, admin: c})
	}
	return members
}

// waitUntil polls cond, failing the test after 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if i == 400 {
			t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fleetTally is what the client saw, per CUJ (and per revision for uploads).
type fleetTally struct {
	mu                      sync.Mutex
	total, bad              map[string]uint64
	canaryUploads, canaryOK uint64
	stableUploads           uint64
}

// TestAFleetCountsExactlyAndPrometheusSeesWhatTheClientSaw runs three
// proxies as a fleet: a 1% rule added on member 1 and a 20% canary weight set
// on member 2 apply on all three; 1,000 requests of the rule's CUJ through
// each member inject exactly 10 on each, and every member's `fault ls` shows
// the fleet's 3,000 and 30. A real Prometheus scrapes the three; `slo status
// --prometheus`, `canary judge --prometheus` and simulate's realised windows
// count exactly the requests the client sent and the failures it saw.
func TestAFleetCountsExactlyAndPrometheusSeesWhatTheClientSaw(t *testing.T) {
	app := func(revision string, broken bool) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Revision", revision)
			if broken && r.URL.Path == "/files" {
				http.Error(w, "the blob store is unreachable", http.StatusBadGateway)
				return
			}
			io.WriteString(w, "ok")
		}))
		t.Cleanup(s.Close)
		return s
	}
	stable, canaryApp := app("stable", false), app("canary", true)
	fleet := startFleet(t, 3, stable.URL, canaryApp.URL)
	ctx := context.Background()

	if _, err := fleet[1].admin.SetCanaryWeight(ctx, spec.NewRatio(1, 5)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "fault", "add", "send-1pct", "--admin", fleet[0].stack.adminURL(), "--cuj", "send", "--status", "503", "--rate", "1%")
	if code != 0 {
		t.Fatalf("fault add: exit %d %s %s", code, out, errOut)
	}
	waitUntil(t, "every member holds the rule and the weight", func() bool {
		for _, m := range fleet {
			st, err := m.admin.Canary(ctx)
			if err != nil || st.Weight == nil || st.Weight.Cmp(spec.NewRatio(1, 5)) != 0 {
				return false
			}
			if _, err := m.stack.faults.Get("send-1pct"); err != nil {
				return false
			}
		}
		return true
	})

	prom := promtest.Start(t, fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: slolab
    static_configs: [{targets: [%q, %q, %q]}]
`, strings.TrimPrefix(fleet[0].stack.adminURL(), "http://"), strings.TrimPrefix(fleet[1].stack.adminURL(), "http://"),
		strings.TrimPrefix(fleet[2].stack.adminURL(), "http://")), t.TempDir())

	tally := &fleetTally{total: map[string]uint64{}, bad: map[string]uint64{}}
	var wg sync.WaitGroup
	for _, m := range fleet {
		wg.Go(func() { fleetTraffic(t, m.stack.proxyURL(), tally) })
	}
	wg.Wait()
	const perMember = 1000 + 500 + 100
	if tally.total["send"] != 3000 || tally.total["upload"] != 300 {
		t.Fatalf("the client sent %v", tally.total)
	}

	t.Run("each member injected exactly 1% of its own 1,000", func(t *testing.T) {
		for _, m := range fleet {
			st, _ := m.stack.faults.Get("send-1pct")
			if st.Matched != 1000 || st.Injected != 10 {
				t.Errorf("%s: injected %d of %d, want 10 of 1000", m.stack.node.Name(), st.Injected, st.Matched)
			}
		}
		if tally.bad["send"] != 30 {
			t.Errorf("the client saw %d failed sends, want 30", tally.bad["send"])
		}
	})

	t.Run("every member's fault ls shows the fleet's totals", func(t *testing.T) {
		for _, m := range fleet {
			var list []fault.Status
			waitUntil(t, m.stack.node.Name()+"'s fault ls shows 3000 and 30", func() bool {
				code, out, _ := runCLI(t, nil, "fault", "ls", "--admin", m.stack.adminURL(), "-o", "json")
				list = nil
				return code == 0 && json.Unmarshal([]byte(out), &list) == nil && len(list) == 1 && list[0].Matched == 3000 && list[0].Injected == 30
			})
			if len(list[0].Members) != 3 {
				t.Fatalf("%s: members %+v", m.stack.node.Name(), list[0].Members)
			}
			for _, mc := range list[0].Members {
				if mc.Matched != 1000 || mc.Injected != 10 || mc.State != fault.StateActive || mc.Version == "" {
					t.Errorf("%s's row of %s: %+v", m.stack.node.Name(), mc.Member, mc)
				}
			}
		}
		code, out, _ := runCLI(t, nil, "fault", "ls", "--admin", fleet[2].stack.adminURL(), "-o", "wide")
		for _, want := range []string{"MEMBERS", "3/3", "3000", "  m1 ", "  m2 ", "  m3 ", "live", "reported "} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("fault ls -o wide lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("the audit log names the member a change came from", func(t *testing.T) {
		entries, err := fleet[2].admin.Audit(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, fmt.Sprintf("%s %s from %s by %s", e.Action, e.Fault, e.Member, e.Identity))
		}
		slices.Sort(got) // gossip may bring the two changes in either order
		want := []string{"canary.weight  from m2 by cluster", "put send-1pct from m1 by cluster"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("m3's audit log: %q, want %q", got, want)
		}
		own, _ := fleet[0].admin.Audit(ctx, 10)
		if !slices.ContainsFunc(own, func(e admin.AuditEntry) bool {
			return e.Action == "put" && e.Member == "m1" && e.Identity == "anonymous"
		}) {
			t.Errorf("m1's log lacks its own put: %+v", own)
		}
	})

	t.Run("cluster status lists three alive members holding the rule", func(t *testing.T) {
		waitUntil(t, "the rule and the weight converged", func() bool {
			st, err := fleet[1].admin.Cluster(ctx)
			return err == nil && len(st.Rules) == 1 && st.Rules[0].Converged && st.Canary != nil && st.Canary.Converged
		})
		code, out, _ := runCLI(t, nil, "cluster", "status", "--admin", fleet[1].stack.adminURL())
		for _, want := range []string{"m2 (this)", "m1 ", "m3 ", "alive", "send-1pct", "3/3", "canary weight 20%: version ", "from m2"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("cluster status lacks %q:\n%s", want, out)
			}
		}
	})

	// Prometheus has scraped every request of the three members.
	waitUntil(t, "prometheus holds every request", func() bool {
		resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape("sum(slolab_requests_total)"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), fmt.Sprintf(`"%d"]`, 3*perMember))
	})
	atTime := slo.Align(time.Now(), time.Minute).Add(time.Minute) // after every request
	at := atTime.Format(time.RFC3339)

	t.Run("slo status from prometheus counts what the client saw", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := runCLICtx(ctx, &out, &errOut, "slo", "status", "--spec", "testdata/chat-canary.yaml", "--prometheus", prom, "--at", at, "-o", "json"); code != 0 {
			t.Fatalf("slo status: exit %d %s", code, errOut.String())
		}
		var st slo.Status
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		for _, s := range st.SLOs {
			if s.Kind != slo.Availability {
				continue
			}
			if want := (slo.Events{Total: tally.total[s.CUJ], Bad: tally.bad[s.CUJ]}); s.Events != want {
				t.Errorf("%s availability: prometheus %+v, the client %+v", s.CUJ, s.Events, want)
			}
		}
	})

	t.Run("serve's dashboard judges the fleet from prometheus", func(t *testing.T) {
		var stderr lockedBuffer
		serveCtx, stopServe := context.WithCancel(ctx)
		served := make(chan int, 1)
		go func() {
			served <- runCLICtx(serveCtx, io.Discard, &stderr, "serve", "--spec", "testdata/chat-canary.yaml", "--admin", fleet[1].stack.adminURL(),
				"--prometheus", prom, "--listen", "127.0.0.1:0", "--poll", "10s")
		}()
		defer func() {
			stopServe()
			if code := <-served; code != 0 {
				t.Errorf("serve exited %d: %s", code, stderr.String())
			}
		}()
		var base string
		waitUntil(t, "serve prints its dashboard's URL", func() bool {
			if _, rest, ok := strings.Cut(stderr.String(), "slolab serve: dashboard "); ok {
				base, _, _ = strings.Cut(rest, " ")
			}
			return base != ""
		})
		if want := "SLOs judged from prometheus " + prom; !strings.Contains(stderr.String(), want) {
			t.Errorf("serve's banner %q lacks %q", stderr.String(), want)
		}
		// The engine judges the last whole minute: wait for the one after
		// every request (up to a minute, and a poll). A judgement must end
		// within the poll's time (at least 2s), so the poll is long enough
		// for Prometheus's answers under -race on a loaded machine.
		var st web.State
		for deadline := time.Now().Add(150 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			st = web.State{}
			if resp, err := http.Get(base + "api/state"); err == nil {
				json.NewDecoder(resp.Body).Decode(&st) //nolint:errcheck // a 502 before the first poll decodes to no state
				resp.Body.Close()
			}
			if st.Judged != nil && !st.Judged.Before(atTime) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the dashboard judged %v, not yet %v (%s)", st.Judged, atTime, st.EngineError)
			}
		}
		judged := 0
		for _, c := range st.CUJs {
			if c.Availability == nil || tally.total[c.Name] == 0 {
				continue
			}
			judged++
			if want := (slo.Events{Total: tally.total[c.Name], Bad: tally.bad[c.Name]}); !c.Availability.Judged || c.Availability.Events != want {
				t.Errorf("%s availability on the dashboard: %+v, the client %+v", c.Name, c.Availability.Events, want)
			}
		}
		if judged == 0 {
			t.Errorf("the dashboard judged no CUJ the client sent to: %+v", st.CUJs)
		}
	})

	t.Run("canary judge from prometheus sees every member's canary", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := runCLICtx(ctx, &out, &errOut, "canary", "judge", "--spec", "testdata/chat-canary.yaml", "--prometheus", prom, "--at", at, "--window", "10m", "-o", "json")
		var res struct {
			Verdict string
			CUJs    []struct {
				CUJ, Verdict   string
				Canary, Stable struct{ Total, Bad uint64 }
			}
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || code != ExitFailure {
			t.Fatalf("judge: exit %d %v %s", code, err, errOut.String())
		}
		for _, c := range res.CUJs {
			if c.CUJ != "upload" {
				continue
			}
			if c.Verdict != "fail" || c.Canary.Total != tally.canaryUploads || c.Canary.Bad != tally.canaryUploads-tally.canaryOK || c.Stable.Total != tally.stableUploads || c.Stable.Bad != 0 {
				t.Errorf("upload judged %+v; the client saw %d canary uploads (%d ok) and %d stable", c, tally.canaryUploads, tally.canaryOK, tally.stableUploads)
			}
			if tally.canaryUploads != 60 { // 20% of each member's 100, exactly
				t.Errorf("the canary served %d uploads, want 60", tally.canaryUploads)
			}
		}
	})

	t.Run("simulate's realised windows from prometheus are the fleet's", func(t *testing.T) {
		svc, _ := loadService("testdata/chat-canary.yaml")
		src, err := promql.New(promql.Config{URL: prom, Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := fleetWindows(ctx, src, "send", atTime)
		if err != nil {
			t.Fatal(err)
		}
		if hour := ws[len(ws)-1]; hour.Total != 3000 || hour.Bad != 30 {
			t.Errorf("the last hour of send: %+v, want 3000 requests and 30 failures", hour)
		}
	})
}

// fleetTraffic sends one member 1,000 sends, 500 reads and 100 uploads,
// and tallies what came back.
func fleetTraffic(t *testing.T, proxyURL string, tally *fleetTally) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= 1600 {
					return
				}
				cuj := "send"
				var resp *http.Response
				var err error
				switch {
				case i < 1000:
					resp, err = client.Post(proxyURL+"/messages", "application/json", strings.NewReader(`{"text": "hi"}`))
				case i < 1500:
					cuj = "read"
					resp, err = client.Get(fmt.Sprintf("%s/messages/%d", proxyURL, i))
				default:
					cuj = "upload"
					resp, err = client.Post(proxyURL+"/files?name=a.txt", "text/plain", strings.NewReader("notes"))
				}
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				tally.mu.Lock()
				tally.total[cuj]++
				if resp.StatusCode >= 500 {
					tally.bad[cuj]++
				}
				if cuj == "upload" {
					switch resp.Header.Get("X-Revision") {
					case "canary":
						tally.canaryUploads++
						if resp.StatusCode < 500 {
							tally.canaryOK++
						}
					case "stable":
						tally.stableUploads++
					}
				}
				tally.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestClusterFlagsRefuseGossipBeyondLoopbackWithoutAKey(t *testing.T) {
	base := []string{"proxy", "--spec", "../../examples/chat.yaml", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	keyFile := writeFile(t, t.TempDir(), "short.key", "c2hvcnQ=\n")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--cluster-listen", "0.0.0.0:7946"}, nil, "beyond loopback, without a key: give the shared key with --cluster-key-file or SLOLAB_CLUSTER_KEY"},
		{[]string{"--cluster-listen", ":7946"}, nil, "without a key"},
		{[]string{"--cluster-listen", "0.0.0.0:7946"}, map[string]string{"SLOLAB_CLUSTER_KEY": "nope!"}, "SLOLAB_CLUSTER_KEY: the cluster key is not base64"},
		{[]string{"--cluster-listen", "0.0.0.0:7946", "--cluster-key-file", keyFile}, nil, "the cluster key holds 5 bytes: want 16, 24 or 32"},
		{[]string{"--cluster-peer", "10.0.0.1:7946"}, nil, "need --cluster-listen ADDR"},
	} {
		code, _, errOut := runCLI(t, tc.env, append(base, tc.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	code, out, _ := runCLI(t, nil, "cluster", "keygen")
	if key, err := cluster.ParseKey(out); code != 0 || err != nil || len(key) != cluster.KeySize {
		t.Errorf("keygen: exit %d %q: %v", code, out, err)
	}
}
