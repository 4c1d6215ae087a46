package cluster_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

const specText = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs:
    - {name: update, owner: msg, routes: ["POST /update"], availability: {objective: 99.9%}}
    - {name: read, owner: msg, routes: ["GET /messages"], availability: {objective: 99.9%}}
    - {name: login, owner: auth, routes: ["POST /login"], availability: {objective: 99.9%}}
`

// testKey is a fixed key, so members of one test always share it.
const testKey = "c2xvbGFiLXRlc3RzLWNsdXN0ZXIta2V5LTMyLWJ5dGU="

// clock is a settable clock shared by every member of a test, so leases
// lapse at an instant the test chooses rather than after a sleep.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

// member is one proxy's registry (and split) behind a cluster node.
type member struct {
	name   string
	faults *fault.Registry
	split  *split.Split
	routes *match.Table
	node   *cluster.Node
	stop   context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changes []cluster.Change
	lapses  []fault.Lapse
}

type fleet struct {
	t       *testing.T
	clock   *clock
	svc     *spec.Service
	members []*member
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f, err := spec.Parse("chat.yaml", []byte(specText))
	if err != nil {
		t.Fatal(err)
	}
	return &fleet{t: t, clock: newClock(), svc: f.Services[0]}
}

type memberOpt func(*cluster.Config)

// withoutJoining starts a member that knows the first one as its peer but
// joins only when the test calls Join (its periodic rejoin is an hour away).
func withoutJoining(c *cluster.Config) { c.RejoinInterval = time.Hour }

func withKey(key string) memberOpt {
	return func(c *cluster.Config) {
		k, err := cluster.ParseKey(key)
		if err != nil {
			panic(err)
		}
		c.Key = k
	}
}

// start starts a member that joins the first member (if any).
func (f *fleet) start(name string, opts ...memberOpt) *member {
	t := f.t
	t.Helper()
	routes, err := match.Compile(f.svc)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: name, routes: routes, done: make(chan struct{})}
	reg, err := fault.NewRegistry(fault.Config{Service: f.svc, Routes: routes, Now: f.clock.Now,
		Lapsed: func(l fault.Lapse) { m.mu.Lock(); m.lapses = append(m.lapses, l); m.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := split.New(split.Config{Canary: mustURL("http://127.0.0.1:1"), CUJs: len(routes.CUJs()), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	m.faults, m.split = reg, sp
	cfg := cluster.Config{
		Name: name, Listen: "127.0.0.1:0", Label: f.svc.Name, Faults: reg, Split: sp, SpecDigest: "d1",
		OnChange:       func(c cluster.Change) { m.mu.Lock(); m.changes = append(m.changes, c); m.mu.Unlock() },
		ReportInterval: 50 * time.Millisecond, GossipInterval: 50 * time.Millisecond,
		Now: f.clock.Now,
	}
	withKey(testKey)(&cfg)
	if len(f.members) > 0 {
		cfg.Peers = []string{f.members[0].node.Addr()}
	}
	for _, o := range opts {
		o(&cfg)
	}
	m.faults = cfg.Faults
	node, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.node = node
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	if len(cfg.Peers) > 0 && cfg.RejoinInterval != time.Hour {
		if _, err := node.Join(ctx); err != nil {
			t.Fatalf("%s joining: %v", name, err)
		}
	}
	go func() { node.Run(ctx); close(m.done) }()
	t.Cleanup(func() { m.close() })
	f.members = append(f.members, m)
	return m
}

func (m *member) close() {
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.done
	m.stop = nil
	_ = m.node.Close()
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if i == 2000 {
			t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rule(name, cuj string, rate spec.Ratio, ttl time.Duration) *spec.FaultRule {
	return &spec.FaultRule{Name: name, Match: spec.Selector{CUJ: cuj}, Rate: rate, Status: &spec.StatusAction{Code: 503}, TTL: ttl}
}

// holds reports whether the member's registry holds the rule with this
// incarnation and lease end.
func holds(m *member, want fault.Status) bool {
	st, err := m.faults.Get(want.Rule.Name)
	return err == nil && st.Created.Equal(want.Created) && st.ExpiresAt.Equal(want.ExpiresAt) && st.Rule.Rate == want.Rule.Rate
}

func TestARulePutOnOneMemberAppliesOnEveryMember(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	st, created, err := a.node.Put(rule("upd-503", "update", spec.NewRatio(1, 100), time.Minute))
	if err != nil || !created {
		t.Fatalf("put: %v (created %v)", err, created)
	}
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" holds upd-503 with a's lease", func() bool { return holds(m, st) })
	}
	// The lease is an absolute time: the same instant on every member.
	for _, m := range []*member{a, b, c} {
		got, _ := m.faults.Get("upd-503")
		if !got.ExpiresAt.Equal(f.clock.Now().Add(time.Minute)) {
			t.Errorf("%s: lease ends %v, want %v", m.name, got.ExpiresAt, f.clock.Now().Add(time.Minute))
		}
	}
	// Every member's audit hook learnt who made the change.
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" reports the change from a", func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.ContainsFunc(m.changes, func(ch cluster.Change) bool {
				return ch.Member == "a" && ch.Action == "put" && ch.Fault == "upd-503"
			})
		})
	}
}

func TestAMemberThatJoinsLaterHoldsEveryLiveRuleWhenJoinReturns(t *testing.T) {
	f := newFleet(t)
	a, b := f.start("a"), f.start("b")
	live, _, err := b.node.Put(rule("live", "update", spec.NewRatio(1, 100), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := a.node.Put(rule("gone", "read", spec.One, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.node.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.node.SetGrouping(&spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(1, 10), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.node.SetWeight(spec.NewRatio(1, 4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a holds b's rule", func() bool { return holds(a, live) })

	d := f.start("d") // joins a: the full-state sync is merged when Join returns
	if !holds(d, live) {
		t.Errorf("d does not hold %q right after joining", "live")
	}
	if _, err := d.faults.Get(gone.Rule.Name); slolab.KindOf(err) != slolab.NotFound {
		t.Errorf("d holds the deleted rule: %v", err)
	}
	if g, err := d.faults.Grouping(""); err != nil || g.Grouping.By != "header:X-User-ID" {
		t.Errorf("d's grouping: %+v %v", g, err)
	}
	if w := d.split.Weight(); w.Cmp(spec.NewRatio(1, 4)) != 0 {
		t.Errorf("d's canary weight is %s, want 25%%", w)
	}
}

func TestRenewingThroughAnotherMemberMovesTheLeaseEverywhere(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	st, _, err := a.node.Put(rule("r", "update", spec.NewRatio(1, 2), 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b holds r", func() bool { return holds(b, st) })
	f.clock.Advance(20 * time.Second)
	renewed, err := b.node.Renew("r", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Created.Equal(st.Created) || !renewed.ExpiresAt.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("renewed: created %v expires %v", renewed.Created, renewed.ExpiresAt)
	}
	for _, m := range []*member{a, c} {
		waitFor(t, m.name+" holds b's renewal", func() bool { return holds(m, renewed) })
	}
}

// A member cut off from the others (its gossip stops, as when its network
// fails or it is killed) keeps its rules until their leases end, and no
// longer; the others go on renewing among themselves.
func TestACutOffMemberKeepsItsRulesUntilTheirLeasesEndAndNoLonger(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	st, _, err := a.node.Put(rule("r", "update", spec.NewRatio(1, 2), 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" holds r", func() bool { return holds(m, st) })
	}
	c.cutOff()
	f.clock.Advance(20 * time.Second)
	renewed, err := b.node.Renew("r", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a holds b's renewal", func() bool { return holds(a, renewed) })

	f.clock.Set(st.ExpiresAt.Add(-time.Millisecond))
	if got, _ := c.faults.Get("r"); got.State != fault.StateActive {
		t.Errorf("c a millisecond before its lease ends: %s, want active", got.State)
	}
	f.clock.Set(st.ExpiresAt)
	if got, _ := c.faults.Get("r"); got.State != fault.StateExpired {
		t.Errorf("c when its lease ends: %s, want expired", got.State)
	}
	for _, m := range []*member{a, b} {
		if got, _ := m.faults.Get("r"); got.State != fault.StateActive {
			t.Errorf("%s, renewed: %s, want active", m.name, got.State)
		}
	}
	f.clock.Set(renewed.ExpiresAt)
	for _, m := range []*member{a, b} {
		if got, _ := m.faults.Get("r"); got.State != fault.StateExpired {
			t.Errorf("%s when the renewed lease ends: %s, want expired", m.name, got.State)
		}
	}
}

// cutOff stops the member's gossip without leaving: its registry keeps
// whatever it held.
func (m *member) cutOff() {
	m.stop()
	<-m.done
	m.stop = nil
	m.node.Kill()
}

// Two members change one rule before either hears of the other's change
// (b has not joined yet); when they meet, both keep the same one: the later
// version, and at the same wall time the member name decides.
func TestConcurrentChangesToOneRuleEndTheSameOnEveryMember(t *testing.T) {
	f := newFleet(t)
	a := f.start("a")
	b := f.start("b", withoutJoining)
	for i, m := range []*member{a, b} {
		if _, _, err := m.node.Put(rule("r", "update", spec.NewRatio(uint64(i+1), 100), time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.node.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := f.start("c")
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" holds b's rate of 2%", func() bool {
			st, err := m.faults.Get("r")
			return err == nil && st.Rule.Rate == spec.NewRatio(2, 100)
		})
	}
	waitFor(t, "the cluster status shows r converged", func() bool {
		s := c.node.Status()
		return len(s.Rules) == 1 && s.Rules[0].Converged && s.Rules[0].Origin == "b" && len(s.Rules[0].HeldBy) == 3
	})
}

// Each member counts its own matched stream exactly; every member answers
// with the fleet's totals and one row per member.
func TestEveryMemberShowsTheFleetsTotals(t *testing.T) {
	f := newFleet(t)
	ms := []*member{f.start("a"), f.start("b"), f.start("c")}
	st, _, err := ms[0].node.Put(rule("r", "update", spec.NewRatio(1, 100), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitFor(t, m.name+" holds r", func() bool { return holds(m, st) })
	}
	for i, m := range ms {
		n := 1000 + 100*i // 1000, 1100, 1200 requests
		for range n {
			req := httptest.NewRequest("POST", "/update", nil)
			m.faults.Table().Decide(req, m.routes.Match(req), match.GroupNone, f.clock.Now())
		}
	}
	want := map[string][2]uint64{"a": {1000, 10}, "b": {1100, 11}, "c": {1200, 12}}
	for _, m := range ms {
		waitFor(t, m.name+" shows the fleet's totals", func() bool {
			got, err := m.node.Get("r")
			if err != nil || got.Matched != 3300 || got.Injected != 33 || len(got.Members) != 3 {
				return false
			}
			for _, mc := range got.Members {
				if w := want[mc.Member]; mc.Matched != w[0] || mc.Injected != w[1] || mc.State != fault.StateActive {
					return false
				}
			}
			return true
		})
	}
	list := ms[1].node.List()
	if len(list) != 1 || list[0].Matched != 3300 || list[0].Injected != 33 {
		t.Errorf("b lists %+v", list)
	}
}

func TestTheKeyGuardsTheCluster(t *testing.T) {
	f := newFleet(t)
	f.start("a")
	other, _ := cluster.GenerateKey()
	routes, _ := match.Compile(f.svc)
	reg, _ := fault.NewRegistry(fault.Config{Service: f.svc, Routes: routes})
	for name, key := range map[string]string{"another key": other, "no key": ""} {
		cfg := cluster.Config{Name: "intruder", Listen: "127.0.0.1:0", Label: f.svc.Name, Faults: reg, Peers: []string{f.members[0].node.Addr()}}
		if key != "" {
			withKey(key)(&cfg)
		}
		n, err := cluster.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = n.Join(ctx)
		cancel()
		_ = n.Close()
		if err == nil {
			t.Errorf("%s: joined an encrypted cluster", name)
		}
	}
}

func TestCheckListenRefusesGossipBeyondLoopbackWithoutAKey(t *testing.T) {
	key, _ := cluster.ParseKey(testKey)
	for _, tc := range []struct {
		addr string
		key  []byte
		ok   bool
	}{
		{"127.0.0.1:7946", nil, true},
		{"localhost:7946", nil, true},
		{"[::1]:7946", nil, true},
		{"0.0.0.0:7946", nil, false},
		{":7946", nil, false},
		{"10.1.2.3:7946", nil, false},
		{"0.0.0.0:7946", key, true},
	} {
		err := cluster.CheckListen(tc.addr, tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, key %v) = %v", tc.addr, tc.key != nil, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--cluster-key-file or SLOLAB_CLUSTER_KEY") {
			t.Errorf("the error does not say how to give a key: %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	gen, err := cluster.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ text, err string }{
		{gen, ""},
		{gen + "\n", ""},
		{"MDEyMzQ1Njc4OWFiY2RlZg==", ""}, // 16 bytes
		{"", "empty"},
		{"not base64!", "not base64"},
		{"c2hvcnQ=", "holds 5 bytes: want 16, 24 or 32"},
	} {
		_, err := cluster.ParseKey(tc.text)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseKey(%q) = %v, want %q", tc.text, err, tc.err)
		}
	}
}

func TestTheGroupingAndTheCanaryWeightFollowEveryChange(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	g := &spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(1, 20), TTL: time.Minute}
	if _, err := b.node.SetGrouping(g); err != nil {
		t.Fatal(err)
	}
	if _, err := c.node.SetWeight(spec.NewRatio(1, 10)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" groups 5% and sends 10% to the canary", func() bool {
			st, err := m.faults.Grouping("")
			return err == nil && st.Active && st.Grouping.Experiment == g.Experiment && m.split.Weight().Cmp(spec.NewRatio(1, 10)) == 0
		})
	}
	f.clock.Advance(50 * time.Second)
	renewed, err := a.node.RenewGrouping("", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{b, c} {
		waitFor(t, m.name+" holds a's grouping lease", func() bool {
			st, _ := m.faults.Grouping("")
			return st.ExpiresAt.Equal(renewed.ExpiresAt)
		})
	}
	if !c.node.ClearGrouping("") {
		t.Fatal("c had no grouping to clear")
	}
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" has no grouping", func() bool { return len(m.faults.Groupings()) == 0 })
	}
}

func TestADeletionOnAnyMemberRemovesTheRuleEverywhere(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	st, _, err := a.node.Put(rule("r", "update", spec.One, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c holds r", func() bool { return holds(c, st) })
	if _, err := c.node.Delete("r"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{a, b} {
		waitFor(t, m.name+" no longer holds r", func() bool {
			_, err := m.faults.Get("r")
			return slolab.KindOf(err) == slolab.NotFound
		})
	}
	if _, err := b.node.Delete("r"); slolab.KindOf(err) != slolab.NotFound {
		t.Errorf("deleting r again: %v, want not found", err)
	}
}

// A member that stops cleanly is seen to leave; its rules stay with the
// others, and its last counts stay in the fleet's totals.
// A peer named by a DNS name that resolves to several addresses (a
// headless Service) joins every one of them: a and b are two clusters of
// one member each, on 127.0.0.1 and 127.0.0.2 with one port, and c, given
// only the name, joins both, so the three end up one cluster.
func TestAPeerNameThatResolvesToSeveralAddressesJoinsThemAll(t *testing.T) {
	f := newFleet(t)
	a := f.start("a")
	_, port, _ := strings.Cut(a.node.Addr(), ":")
	b := f.start("b", func(c *cluster.Config) { c.Peers, c.Listen = nil, "127.0.0.2:"+port })
	if got := b.node.Addr(); got != "127.0.0.2:"+port {
		t.Fatalf("b listens on %s", got)
	}
	var asked []string
	c := f.start("c", func(c *cluster.Config) {
		c.Peers = []string{"slolab-peers.test:" + port}
		c.LookupHost = func(_ context.Context, host string) ([]string, error) {
			asked = append(asked, host)
			return []string{"127.0.0.1", "127.0.0.2"}, nil
		}
	})
	if !slices.Equal(asked, []string{"slolab-peers.test"}) {
		t.Errorf("c looked up %q, want the peer's name", asked)
	}
	names := func(m *member) []string {
		var out []string
		for _, ms := range m.node.Status().Members {
			if ms.State == cluster.MemberAlive {
				out = append(out, ms.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, m := range []*member{c, a, b} {
		waitFor(t, m.name+" sees a, b and c alive", func() bool { return slices.Equal(names(m), []string{"a", "b", "c"}) })
	}
}

func TestAMemberThatLeavesIsSeenToLeaveAndTheRulesStay(t *testing.T) {
	f := newFleet(t)
	a, b := f.start("a"), f.start("b")
	st, _, err := a.node.Put(rule("r", "update", spec.One, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b holds r", func() bool { return holds(b, st) })
	req := httptest.NewRequest("POST", "/update", nil)
	for range 3 {
		b.faults.Table().Decide(req, b.routes.Match(req), match.GroupNone, f.clock.Now())
	}
	b.close()
	waitFor(t, "a sees b leave", func() bool {
		s := a.node.Status()
		return len(s.Members) == 2 && s.Members[1].Name == "b" && s.Members[1].State == cluster.MemberLeft
	})
	got, err := a.node.Get("r")
	if err != nil || got.State != fault.StateActive || got.Matched != 3 || len(got.Members) != 2 || !got.Members[1].Gone {
		t.Errorf("a after b left: %+v %v", got, err)
	}
}

// runGrouping is a run's grouping of clients by user on some CUJs.
func runGrouping(run string, ttl time.Duration, cujs ...string) *spec.Grouping {
	return &spec.Grouping{Run: run, CUJs: cujs, By: "header:X-User-ID", Experiment: spec.NewRatio(1, 2), TTL: ttl}
}

// runOf names the run whose grouping groups a request on the member now.
func runOf(m *member, now time.Time, method, path string) string {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("X-User-ID", "u1")
	if _, g := m.faults.Table().Group(req, m.routes.Match(req), "", now); g != nil {
		return g.Run()
	}
	return ""
}

// holdsGrouping reports whether the member's registry holds the run's
// grouping with this lease end.
func holdsGrouping(m *member, want fault.GroupingStatus) bool {
	st, err := m.faults.Grouping(want.Grouping.Run)
	return err == nil && st.ExpiresAt.Equal(want.ExpiresAt) && slices.Equal(st.Grouping.CUJs, want.Grouping.CUJs)
}

// Two experiment runs hold groupings on different CUJs at once, set through
// different members: both reach every member, a member that joins later
// gets both, and one run's lease lapses on every member (and is logged by
// each) while the other, renewed, stays.
func TestTwoRunsGroupingsReplicateAndLapseApart(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.start("a"), f.start("b"), f.start("c")
	one, err := a.node.SetGrouping(runGrouping("one", 30*time.Second, "update"))
	if err != nil {
		t.Fatal(err)
	}
	two, err := b.node.SetGrouping(runGrouping("two", 30*time.Second, "read", "login"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" holds both runs' groupings", func() bool { return holdsGrouping(m, one) && holdsGrouping(m, two) })
		if got := [3]string{runOf(m, f.clock.Now(), "POST", "/update"), runOf(m, f.clock.Now(), "GET", "/messages"), runOf(m, f.clock.Now(), "POST", "/login")}; got != [3]string{"one", "two", "two"} {
			t.Errorf("%s groups update, read and login by runs %q", m.name, got)
		}
	}

	d := f.start("d") // the full-state sync is merged when Join returns
	if !holdsGrouping(d, one) || !holdsGrouping(d, two) {
		t.Errorf("d right after joining holds %+v", d.faults.Groupings())
	}

	f.clock.Advance(20 * time.Second)
	renewed, err := c.node.RenewGrouping("two", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{a, b, d} {
		waitFor(t, m.name+" holds c's renewal of run two", func() bool { return holdsGrouping(m, renewed) })
	}
	waitFor(t, "a's status shows both runs converged", func() bool {
		s := a.node.Status()
		return len(s.Groupings) == 2 && s.Groupings[0].Run == "one" && s.Groupings[1].Run == "two" &&
			s.Groupings[0].Converged && s.Groupings[1].Converged && len(s.Groupings[1].HeldBy) == 4 && s.Groupings[1].Origin == "c"
	})

	f.clock.Set(one.ExpiresAt)
	for _, m := range []*member{a, b, c, d} {
		if run := runOf(m, f.clock.Now(), "POST", "/update"); run != "" {
			t.Errorf("%s at run one's lease end still groups update by run %q", m.name, run)
		}
		if run := runOf(m, f.clock.Now(), "GET", "/messages"); run != "two" {
			t.Errorf("%s at run one's lease end groups read by run %q, want two", m.name, run)
		}
		m.faults.Sweep()
		m.mu.Lock()
		if len(m.lapses) != 1 || m.lapses[0].Grouping == nil || m.lapses[0].Grouping.Grouping.Run != "one" {
			t.Errorf("%s logged the lapses %+v, want run one's", m.name, m.lapses)
		}
		m.mu.Unlock()
	}
}

// Two members accept groupings of two runs on one CUJ before either hears
// of the other's (b has not joined yet). When they meet, every member keeps
// the run that claimed the CUJ first; the other yields it everywhere, and
// holds it once the first run is done.
func TestRunsThatClaimOneCUJConcurrentlyEndTheSameOnEveryMember(t *testing.T) {
	f := newFleet(t)
	a := f.start("a")
	b := f.start("b", withoutJoining)
	first, err := a.node.SetGrouping(runGrouping("first", time.Minute, "update"))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Millisecond)
	second, err := b.node.SetGrouping(runGrouping("second", time.Minute, "update", "read"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.node.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := f.start("c")
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" holds run first's grouping only", func() bool {
			gs := m.faults.Groupings()
			return len(gs) == 1 && holdsGrouping(m, first)
		})
		if run := runOf(m, f.clock.Now(), "GET", "/messages"); run != "" {
			t.Errorf("%s groups read by run %q, which yielded", m.name, run)
		}
	}
	waitFor(t, "b's audit hook learnt that run second yielded to run first", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return slices.ContainsFunc(b.changes, func(ch cluster.Change) bool {
			return ch.Action == "grouping.delete" && ch.Fault == "second" && ch.Member == "a"
		})
	})
	waitFor(t, "c's status shows run second yielding, converged", func() bool {
		s := c.node.Status()
		return len(s.Groupings) == 2 && s.Groupings[1].Run == "second" && s.Groupings[1].YieldsTo == "first" && s.Groupings[1].Converged
	})
	if _, err := b.node.RenewGrouping("second", time.Minute); slolab.KindOf(err) != slolab.Conflict {
		t.Errorf("renewing the run that yielded: %v, want a conflict", err)
	}

	if !c.node.ClearGrouping("first") {
		t.Fatal("c had no grouping of run first to clear")
	}
	for _, m := range []*member{a, b, c} {
		waitFor(t, m.name+" holds run second's grouping once run first is done", func() bool {
			gs := m.faults.Groupings()
			return len(gs) == 1 && holdsGrouping(m, second)
		})
	}
}

// withoutCUJ gives the member a spec that lacks one of the fleet's CUJs (a
// member not yet rolled to the new spec).
func withoutCUJ(t *testing.T, cuj string) memberOpt {
	return func(c *cluster.Config) {
		f, err := spec.Parse("old.yaml", []byte(strings.Replace(specText, "- {name: "+cuj+",", "- {name: "+cuj+"-old,", 1)))
		if err != nil {
			t.Fatal(err)
		}
		routes, _ := match.Compile(f.Services[0])
		c.Faults, _ = fault.NewRegistry(fault.Config{Service: f.Services[0], Routes: routes, Now: c.Now})
	}
}

// countingHandler counts the log records whose message starts with a prefix.
type countingHandler struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

// A run's grouping that cannot apply on a member (its spec lacks the CUJ)
// is logged there once, not at every reconciliation; the others hold it.
func TestARunsGroupingThatCannotApplyOnAMemberIsLoggedOnce(t *testing.T) {
	f := newFleet(t)
	a := f.start("a")
	var warnings atomic.Int64
	b := f.start("b", withoutCUJ(t, "login"), func(c *cluster.Config) {
		c.Logger = slog.New(countingHandler{Handler: slog.DiscardHandler, prefix: "cluster: a run's grouping from another member does not apply here", n: &warnings})
	})
	st, err := a.node.SetGrouping(runGrouping("r", time.Minute, "login"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b tried run r's grouping", func() bool { return warnings.Load() > 0 })
	for range 5 { // several report intervals, each a reconciliation
		time.Sleep(50 * time.Millisecond)
	}
	if n := warnings.Load(); n != 1 || len(b.faults.Groupings()) != 0 {
		t.Errorf("b logged %d warnings and holds %+v", n, b.faults.Groupings())
	}
	if !holdsGrouping(a, st) {
		t.Error("a lost its own grouping")
	}
}
