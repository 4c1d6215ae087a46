package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// fleetMember is one proxy of a fleet on loopback: its registry and split
// behind a cluster node, and the admin API in front of the node.
type fleetMember struct {
	faults *fault.Registry
	split  *split.Split
	node   *cluster.Node
	srv    *httptest.Server

	mu      sync.Mutex
	learnt  []cluster.Change // the other members' changes, as its audit log records them
	stopped chan struct{}
}

func startFleetMember(t *testing.T, name string, w *failing, token string, peers ...string) *fleetMember {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	canary, _ := url.Parse("http://127.0.0.1:1")
	sp, err := split.New(split.Config{Canary: canary, CUJs: len(routes.CUJs())})
	if err != nil {
		t.Fatal(err)
	}
	m := &fleetMember{faults: faults, split: sp, stopped: make(chan struct{})}
	m.node, err = cluster.New(cluster.Config{
		Name: name, Listen: "127.0.0.1:0", Label: svc.Name, Faults: faults, Split: sp, Peers: peers,
		GossipInterval: 20 * time.Millisecond, ReportInterval: 50 * time.Millisecond,
		OnChange: func(c cluster.Change) { m.mu.Lock(); m.learnt = append(m.learnt, c); m.mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if len(peers) > 0 {
		if _, err := m.node.Join(ctx); err != nil {
			t.Fatal(err)
		}
	}
	go func() { m.node.Run(ctx); close(m.stopped) }()
	h, err := admin.NewHandler(admin.Config{
		Service: svc, Routes: routes, Faults: m.node, Weights: m.node, Cluster: m.node, Split: sp,
		Recorder: sli.New(sli.Config{Service: svc, Routes: routes}), Audit: admin.NewAudit(w, 100), Token: token,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		m.srv.Close()
		cancel()
		<-m.stopped
		_ = m.node.Close()
	})
	return m
}

// holdsRule reports whether the member's registry holds a rule of that name.
func (m *fleetMember) holdsRule(name string) bool {
	_, err := m.faults.Get(name)
	return err == nil
}

// poll waits until cond holds, failing the test after 20 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after 20s: %s", what)
}

// A change that member 1 refuses because its audit log cannot be written
// is undone there, and no other member applies it: what member 1 sends,
// at once or in a full-state sync, never carries it.
func TestAChangeRefusedOnOneMemberIsAppliedOnNone(t *testing.T) {
	w := &failing{}
	m1 := startFleetMember(t, "m1", w, "")
	m2 := startFleetMember(t, "m2", &failing{}, "", m1.node.Addr())
	m3 := startFleetMember(t, "m3", &failing{}, "", m1.node.Addr())
	if code, body := call(t, "PUT", m1.srv.URL+"/api/v1/faults/kept", "", rule); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, body)
	}
	kept, _ := m1.faults.Get("kept")
	for _, m := range []*fleetMember{m2, m3} {
		poll(t, "every member holds kept", func() bool { return m.holdsRule("kept") })
	}

	w.broken.Store(true)
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/faults/refused", rule},
		{"PUT", "/api/v1/faults/kept", `{"match": {"cuj": "read"}, "abort": true}`},
		{"POST", "/api/v1/faults/kept/renew", `{"ttl": "50m"}`},
		{"DELETE", "/api/v1/faults/kept", ""},
		{"PUT", "/api/v1/grouping", `{"run": "refused", "by": "header:X-User", "experiment": "10%"}`},
		{"PUT", "/api/v1/canary", `{"weight": "25%"}`},
	} {
		code, body := call(t, c.method, m1.srv.URL+c.path, "", c.body)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "the change was not made") {
			t.Errorf("%s %s through m1 while its log fails: %d %s, want 503", c.method, c.path, code, body)
		}
	}
	w.broken.Store(false)
	// A change made after the refused ones reaches every member, and a
	// member that joins now gets m1's whole state.
	if code, body := call(t, "PUT", m1.srv.URL+"/api/v1/faults/after", "", rule); code != http.StatusCreated {
		t.Fatalf("put after: %d %s", code, body)
	}
	m4 := startFleetMember(t, "m4", &failing{}, "", m1.node.Addr())
	for _, m := range []*fleetMember{m2, m3} {
		poll(t, "every member holds the rule put after", func() bool { return m.holdsRule("after") })
	}
	for i, m := range []*fleetMember{m1, m2, m3, m4} {
		if m.holdsRule("refused") {
			t.Errorf("m%d holds the refused rule", i+1)
		}
		if got, err := m.faults.Get("kept"); err != nil || got.Rule.Match.CUJ != "update" || !got.ExpiresAt.Equal(kept.ExpiresAt) {
			t.Errorf("m%d holds kept as %+v %v, want it as it was put", i+1, got, err)
		}
		if gs := m.faults.Groupings(); len(gs) != 0 {
			t.Errorf("m%d holds the refused grouping: %+v", i+1, gs)
		}
		if !m.split.Weight().IsZero() {
			t.Errorf("m%d sends %s to the canary after a refused weight", i+1, m.split.Weight())
		}
		m.mu.Lock()
		if i := slices.IndexFunc(m.learnt, func(c cluster.Change) bool { return c.Fault == "refused" || c.Action != "put" }); i >= 0 {
			t.Errorf("a member learnt of a refused change: %+v", m.learnt[i])
		}
		m.mu.Unlock()
	}
	if s := m4.node.Status(); slices.ContainsFunc(s.Rules, func(r cluster.RuleStatus) bool { return r.Name == "refused" }) || len(s.Groupings) != 0 || s.Canary != nil {
		t.Errorf("m4's records after the sync: %+v", s)
	}
}

// What a fleet adds to the admin API (the cluster's status, fleet totals,
// the canary weight set on every member) sits behind the same guard as
// the rest: the token for reads too, the Host, the origin of changes.
func TestAFleetMembersAdminAPIIsBehindTheGuard(t *testing.T) {
	const token = "a-token-of-16-chars"
	m := startFleetMember(t, "m1", &failing{}, token)
	port := m.srv.URL[strings.LastIndex(m.srv.URL, ":"):]
	for _, path := range []string{"/api/v1/cluster", "/api/v1/faults", "/api/v1/canary"} {
		if code, body := call(t, "GET", m.srv.URL+path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %s, want 401", path, code, body)
		}
		if code, body := do(t, "GET", m.srv.URL+path, "", map[string]string{"Host": "attacker.example" + port, "Authorization": "Bearer " + token}); code != http.StatusForbidden {
			t.Errorf("GET %s with Host attacker.example: %d %s, want 403", path, code, body)
		}
		if code, body := call(t, "GET", m.srv.URL+path, token, ""); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", path, code, body)
		}
	}
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain", "Authorization": "Bearer " + token},
		{"Content-Type": jsonType, "Authorization": "Bearer " + token, "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
	} {
		if code, body := do(t, "PUT", m.srv.URL+"/api/v1/canary", `{"weight": "50%"}`, h); code < 400 {
			t.Errorf("PUT /api/v1/canary with %v: %d %s, want it refused", h, code, body)
		}
	}
	if !m.split.Weight().IsZero() {
		t.Errorf("the canary weight moved to %s", m.split.Weight())
	}
}
