package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/testtool"
)

// member is one real `slolab proxy --cluster-listen` process.
type member struct {
	name            string
	cmd             *exec.Cmd
	proxyURL, admin string
	gossip          string
	log             *syncBuffer
	killed          bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var gossipLine = regexp.MustCompile(`^slolab proxy: cluster member (\S+) gossiping on (\S+) \(encrypted\)`)

// startMember runs a proxy that joins peer (if any) with the shared key.
func startMember(t *testing.T, bin, app, keyFile, name, peer string) *member {
	t.Helper()
	args := []string{"proxy", "--spec", "../../examples/chat.yaml", "--upstream", app,
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--audit-log", "-", "--store", "-", "--drain", "2s",
		"--cluster-listen", "127.0.0.1:0", "--cluster-name", name, "--cluster-key-file", keyFile}
	if peer != "" {
		args = append(args, "--cluster-peer", peer)
	}
	cmd := exec.Command(bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &member{name: name, cmd: cmd, log: &syncBuffer{}}
	t.Cleanup(func() {
		if !m.killed {
			_ = cmd.Process.Signal(syscall.SIGINT)
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, m.log.String())
		}
	})
	rd, proxyURL, adminURL := readBanner(t, stderr)
	line, err := rd.ReadString('\n')
	g := gossipLine.FindStringSubmatch(line)
	if err != nil || g == nil || g[1] != name {
		t.Fatalf("%s: the banner's cluster line: %q %v", name, line, err)
	}
	m.proxyURL, m.admin, m.gossip = proxyURL, adminURL, g[2]
	go io.Copy(m.log, rd)
	return m
}

func (m *member) kill(t *testing.T) {
	t.Helper()
	m.killed = true
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = m.cmd.Process.Wait()
}

// get reads one rule from a member's admin API: found is false on 404.
func (m *member) get(t *testing.T, name string) (st fault.Status, found bool) {
	t.Helper()
	resp, err := http.Get(m.admin + "/api/v1/faults/" + name)
	if err != nil {
		t.Fatalf("%s: %v", m.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return st, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("%s: decoding %s: %v", m.name, name, err)
	}
	return st, true
}

// put sets a rule through a member's admin API.
func (m *member) put(t *testing.T, name, body string) fault.Status {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, m.admin+"/api/v1/faults/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fault.Status
	if resp.StatusCode >= 300 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("put %s on %s: %s %s", name, m.name, resp.Status, b)
	}
	return st
}

// waitHeld polls until every member holds the rule's incarnation with its
// lease end, and returns their statuses.
func waitHeld(t *testing.T, want fault.Status, ms ...*member) []fault.Status {
	t.Helper()
	out := make([]fault.Status, len(ms))
	for i, m := range ms {
		for j := 0; ; j++ {
			st, ok := m.get(t, want.Rule.Name)
			if ok && st.Created.Equal(want.Created) && st.ExpiresAt.Equal(want.ExpiresAt) {
				out[i] = st
				break
			}
			if j == 2000 {
				t.Fatalf("after 20s %s does not hold %s as set (%+v)", m.name, want.Rule.Name, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out
}

func keyFile(t *testing.T) string {
	t.Helper()
	key, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAFleetOfRealProxies runs three `slolab proxy` processes that gossip
// with an encrypted key: 20 rule changes on member 1 reach members 2 and 3
// (the time each took is logged, measured between the change on member 1
// and its application on the others, both read from their registries); a
// fourth member started later holds the rule as soon as it answers; after
// kill -9 of member 1 the others keep its rules until their leases end and
// no longer, and a renewal through member 2 reaches member 3.
func TestAFleetOfRealProxies(t *testing.T) {
	bin := build(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	key := keyFile(t)
	m1 := startMember(t, bin, app.URL, key, "m1", "")
	m2 := startMember(t, bin, app.URL, key, "m2", m1.gossip)
	m3 := startMember(t, bin, app.URL, key, "m3", m1.gossip)

	// 20 changes on member 1; each one's delay is the later of its
	// application on members 2 and 3.
	var delays []time.Duration
	var last fault.Status
	for i := range 20 {
		last = m1.put(t, "p99", fmt.Sprintf(`{"match": {"cuj": "read"}, "status": 503, "rate": "%d%%", "ttl": "1m"}`, i+1))
		var d time.Duration
		for _, st := range waitHeld(t, last, m2, m3) {
			d = max(d, st.Renewed.Sub(last.Created))
		}
		delays = append(delays, d)
	}
	slices.Sort(delays)
	t.Logf("a change on member 1 applied on members 2 and 3 after: p50 %v, p99 %v (nearest rank of 20: the largest), min %v",
		delays[9].Round(time.Microsecond), delays[19].Round(time.Microsecond), delays[0].Round(time.Microsecond))
	if p99 := delays[19]; p99 > time.Second {
		t.Errorf("a change on member 1 took %v (p99 of 20) to apply on members 2 and 3, want within 1s", p99)
	}

	// Member 4 joins before it serves: its admin API answers only once the
	// full-state sync is merged.
	started := time.Now()
	m4 := startMember(t, bin, app.URL, key, "m4", m2.gossip)
	waitHeld(t, last, m4)
	joined := time.Since(started)
	t.Logf("a fourth member held the rule %v after its process started", joined.Round(time.Millisecond))
	if joined > 5*time.Second {
		t.Errorf("a fourth member held the rule %v after its process started, want within 5s", joined)
	}
	if st, _ := m4.get(t, "p99"); st.Matched != 0 {
		t.Errorf("m4's fresh copy counts %d", st.Matched)
	}

	lease := m1.put(t, "lease", `{"match": {"cuj": "update"}, "status": 503, "ttl": "4s"}`)
	renewable := m1.put(t, "renewable", `{"match": {"cuj": "login"}, "status": 503, "ttl": "4s"}`)
	waitHeld(t, lease, m2, m3, m4)
	waitHeld(t, renewable, m2, m3, m4)
	m1.kill(t)
	killed := time.Now()

	out, err := exec.Command(bin, "fault", "renew", "renewable", "--ttl", "1m", "--admin", m2.admin, "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("renewing through member 2 after member 1 died: %v\n%s", err, out)
	}
	var renewed []fault.Status
	if err := json.Unmarshal(out, &renewed); err != nil || len(renewed) != 1 {
		t.Fatalf("renew: %v %s", err, out)
	}
	waitHeld(t, renewed[0], m3, m4)

	// Requests through members 2 and 3 until a second past the lease: every
	// answer that came back before the lease ended was injected, every
	// request sent after it passed. (Requests in flight at that instant may
	// go either way and are not judged.)
	end := lease.ExpiresAt
	var before, after int
	client := &http.Client{Timeout: 10 * time.Second}
	for i := 0; time.Now().Before(end.Add(time.Second)); i++ {
		m := []*member{m2, m3}[i%2]
		sent := time.Now()
		resp, err := client.Post(m.proxyURL+"/update", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := time.Now()
		switch {
		case got.Before(end):
			before++
			if resp.StatusCode != 503 {
				t.Fatalf("%s answered %d at %v, before the lease's end %v", m.name, resp.StatusCode, got, end)
			}
		case sent.After(end):
			after++
			if resp.StatusCode != 200 {
				t.Fatalf("%s answered %d at %v, after the lease's end %v", m.name, resp.StatusCode, sent, end)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if before == 0 || after == 0 {
		t.Fatalf("%d requests before the lease's end and %d after: nothing was shown", before, after)
	}
	for _, m := range []*member{m2, m3, m4} {
		if st, _ := m.get(t, "lease"); st.State != fault.StateExpired {
			t.Errorf("%s: lease is %s after its end, want expired", m.name, st.State)
		}
		resp, err := client.Post(m.proxyURL+"/login", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s: the renewed rule no longer applies (%d)", m.name, resp.StatusCode)
		}
	}
	// memberlist declares a member dead once its suspicion times out: up
	// to 24 s with the default LAN profile and few members to confirm it.
	for i := 0; ; i++ {
		out, _ := exec.Command(bin, "cluster", "status", "--admin", m3.admin, "-o", "json").Output()
		var st cluster.Status
		_ = json.Unmarshal(out, &st)
		if i := slices.IndexFunc(st.Members, func(m cluster.MemberStatus) bool { return m.Name == "m1" }); i >= 0 && st.Members[i].State == cluster.MemberDead {
			t.Logf("member 3 saw member 1 dead %v after the kill", time.Since(killed).Round(100*time.Millisecond))
			break
		}
		if i == 600 {
			t.Fatalf("after 60s member 3 does not see member 1 dead:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var wrkErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)

// TestRuleChurnOnEveryMemberUnderLoad changes a rule ten times a second,
// each change through the next member, while wrk drives every member with
// requests the rule does not target: no socket error, no untargeted answer
// altered, and targeted requests injected on every member.
func TestRuleChurnOnEveryMemberUnderLoad(t *testing.T) {
	wrk := testtool.Path(t, "wrk")
	bin := build(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	key := keyFile(t)
	m1 := startMember(t, bin, app.URL, key, "m1", "")
	ms := []*member{m1, startMember(t, bin, app.URL, key, "m2", m1.gossip), startMember(t, bin, app.URL, key, "m3", m1.gossip)}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var churns atomic.Int64
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := ms[i%len(ms)]
			var req *http.Request
			if i%2 == 0 {
				req, _ = http.NewRequest(http.MethodPut, m.admin+"/api/v1/faults/churn",
					strings.NewReader(fmt.Sprintf(`{"match": {"cuj": "update"}, "status": 503, "rate": "50%%", "seed": %d}`, i+1)))
				req.Header.Set("Content-Type", "application/json")
			} else {
				req, _ = http.NewRequest(http.MethodDelete, m.admin+"/api/v1/faults/churn", nil)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// A delete may find the rule not yet arrived on that member.
			if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s on %s: %s", req.Method, req.URL.Path, m.name, resp.Status)
			}
			churns.Add(1)
		}
	})
	targeted := make([]atomic.Int64, len(ms))
	for i, m := range ms {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				resp, err := c.Post(m.proxyURL+"/update", "text/plain", nil)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 {
					targeted[i].Add(1)
				}
			}
		})
	}
	outs := make([][]byte, len(ms))
	errs := make([]error, len(ms))
	var wrks sync.WaitGroup
	for i, m := range ms {
		wrks.Go(func() {
			outs[i], errs[i] = exec.Command(wrk, "-t1", "-c16", "-d3s", m.proxyURL+"/messages").CombinedOutput()
		})
	}
	wrks.Wait()
	cancel()
	wg.Wait()
	for i, m := range ms {
		text := string(outs[i])
		if errs[i] != nil {
			t.Fatalf("wrk on %s: %v\n%s", m.name, errs[i], text)
		}
		if w := wrkErrors.FindStringSubmatch(text); w != nil {
			t.Errorf("wrk on %s reported socket errors: %s\n%s", m.name, w[0], text)
		}
		if strings.Contains(text, "Non-2xx or 3xx responses") {
			t.Errorf("untargeted requests through %s were altered:\n%s", m.name, text)
		}
		if targeted[i].Load() == 0 {
			t.Errorf("no targeted request through %s was injected: the churn did not reach it", m.name)
		}
		requests := ""
		if sc := bufio.NewScanner(strings.NewReader(text)); sc != nil {
			for sc.Scan() {
				if strings.Contains(sc.Text(), "requests in") {
					requests = strings.TrimSpace(sc.Text())
				}
			}
		}
		t.Logf("%s: wrk %s; %d targeted answers injected", m.name, requests, targeted[i].Load())
	}
	if churns.Load() < 20 {
		t.Errorf("only %d rule changes in 3s", churns.Load())
	}
	t.Logf("%d rule changes through the three members", churns.Load())
}
