package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/examples"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// fixture is a dashboard over a real admin API, registry and recorder, and
// the SLO engine over a real store and flusher (as the lab runs it), all on
// one hand-moved clock.
type fixture struct {
	t       *testing.T
	token   string
	now     time.Time
	svc     *spec.Service
	routes  *match.Table
	faults  *fault.Registry
	rec     *sli.Recorder
	flusher *sqlite.Flusher
	dash    *Dashboard
	srv     *httptest.Server
}

func chat(t *testing.T) *spec.Service {
	t.Helper()
	f, err := spec.Parse(examples.ChatPath, examples.Chat)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	return newFixtureWith(t, token, func(f *fixture) *Engine {
		return &Engine{Source: f.flusher, Instant: func(context.Context, time.Time) (time.Time, error) { return f.flusher.Instant(), nil }, Name: "the test's store"}
	})
}

// newFixtureWith makes a fixture whose dashboard judges with engine(f).
func newFixtureWith(t *testing.T, token string, engine func(f *fixture) *Engine) *fixture {
	t.Helper()
	f := &fixture{t: t, token: token, now: time.Date(2026, 6, 1, 10, 0, 5, 0, time.UTC), svc: chat(t)}
	clock := func() time.Time { return f.now }
	var err error
	if f.routes, err = match.Compile(f.svc); err != nil {
		t.Fatal(err)
	}
	if f.faults, err = fault.NewRegistry(fault.Config{Service: f.svc, Routes: f.routes, Now: clock}); err != nil {
		t.Fatal(err)
	}
	f.rec = sli.New(sli.Config{Service: f.svc, Routes: f.routes, Now: clock})
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "slolab.db"), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.flusher = sqlite.NewFlusher(store, f.rec, sqlite.FlusherConfig{Now: clock})
	adm, err := admin.NewHandler(admin.Config{
		Service: f.svc, Routes: f.routes, Faults: f.faults, Recorder: f.rec, Token: token, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := httptest.NewServer(adm)
	t.Cleanup(adminSrv.Close)
	client, err := admin.NewClient(adminSrv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	client.SetActor("dashboard")
	if f.dash, err = New(Config{Service: f.svc, Admin: client, Engine: engine(f), Token: token, Now: clock, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.dash.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// observe records n requests of a route, bad of them failing and slow of the
// good ones taking slowBy over the CUJ's threshold.
func (f *fixture) observe(cuj, pattern string, n, bad int) {
	route := f.routes.Route(cuj, pattern)
	for i := range n {
		code := 200
		if i < bad {
			code = 503
		}
		f.rec.Observe(sli.Observation{Route: route, Method: strings.Fields(pattern)[0], Code: code, Latency: 5 * time.Millisecond})
	}
}

func (f *fixture) poll() { f.dash.poll(context.Background()) }

// tick moves the clock on and closes the recorder's intervals that ended.
func (f *fixture) tick(d time.Duration) {
	f.now = f.now.Add(d)
	f.rec.Close(f.now)
}

// do sends a request as the dashboard's page does: a body as JSON, unless
// header says otherwise.
func (f *fixture) do(method, path, body string, header map[string]string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(out)
}

func (f *fixture) state() State {
	f.t.Helper()
	var auth map[string]string
	if f.token != "" {
		auth = map[string]string{"Authorization": "Bearer " + f.token}
	}
	code, body := f.do("GET", "/api/state", "", auth)
	if code != 200 {
		f.t.Fatalf("GET /api/state = %d %s", code, body)
	}
	var st State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func cujOf(t *testing.T, st State, name string) CUJView {
	t.Helper()
	for _, c := range st.CUJs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no CUJ %s in the state", name)
	return CUJView{}
}

func f64(v float64) *float64 { return &v }

func TestTheCUJTableIsTheSLOEnginesJudgement(t *testing.T) {
	f := newFixture(t, "")
	f.observe("update", "POST /update", 1000, 15) // 1.5%: burn 15, over the page threshold 14.4
	f.observe("send", "POST /messages", 1000, 14) // 1.4%: burn 14, under it but over 6, 3 and 1
	f.observe("read", "GET /messages", 100, 2)    // 2%: burn 20, over every threshold, but 2 bad < 5 (the low-traffic guard)
	f.tick(5 * time.Second)                       // 10:00:10: the first interval closes; nothing is flushed yet
	f.poll()
	st := f.state()
	if got := len(st.CUJs); got != 6 {
		t.Fatalf("%d CUJs, want the 6 of the spec (no _other)", got)
	}
	if want := time.Date(2026, 6, 1, 10, 0, 10, 0, time.UTC); st.Judged == nil || !st.Judged.Equal(want) || st.Source != "the test's store" {
		t.Errorf("judged at %v from %q, want %v from the test's store", st.Judged, st.Source, want)
	}
	if want := []string{"5m", "30m", "1h", "2h", "6h", "1d", "3d"}; !reflect.DeepEqual(st.Windows, want) {
		t.Errorf("windows %v, want %v", st.Windows, want)
	}
	// Every window holds the same 10 seconds, so each alert fires when its
	// factor is at most the burn rate.
	alerts := func(burn float64, bad uint64, states ...string) []AlertView {
		var out []AlertView
		for i, a := range []struct{ sev, pair, factor string }{{"page", "1h/5m", "14.4"}, {"page", "6h/30m", "6"}, {"ticket", "1d/2h", "3"}, {"ticket", "3d/6h", "1"}} {
			out = append(out, AlertView{SLO: "availability", Severity: a.sev, Pair: a.pair, Factor: a.factor, State: states[i],
				LongBurn: f64(burn), ShortBurn: f64(burn), LongBad: bad, MinBad: 5})
		}
		for _, a := range []struct{ sev, pair, factor string }{{"page", "1h/5m", "14.4"}, {"page", "6h/30m", "6"}, {"ticket", "1d/2h", "3"}, {"ticket", "3d/6h", "1"}} {
			out = append(out, AlertView{SLO: "latency", Severity: a.sev, Pair: a.pair, Factor: a.factor, State: "ok", LongBurn: f64(0), ShortBurn: f64(0), MinBad: 5})
		}
		return out
	}
	for _, tc := range []struct {
		cuj  string
		want []AlertView
	}{
		{"update", alerts(15, 15, "firing", "firing", "firing", "firing")},
		{"send", alerts(14, 14, "ok", "firing", "firing", "firing")},
		{"read", alerts(20, 2, "held", "held", "held", "held")},
	} {
		if got := cujOf(t, st, tc.cuj).Alerts; !alertsEqual(got, tc.want) {
			t.Errorf("%s alerts:\n got %s\nwant %s", tc.cuj, alertsText(got), alertsText(tc.want))
		}
	}
	u := cujOf(t, st, "update")
	a := u.Availability
	if !a.Judged || *a.SLI != 98.5 || a.Met || a.Events != (slo.Events{Total: 1000, Bad: 15}) || math.Abs(*a.BudgetRemaining-(-1400)) > 1e-9 ||
		!a.Exhausted || a.ExhaustedIn == nil || *a.ExhaustedIn != 0 || a.Objective.String() != "99.9%" || a.Window != "30d" {
		t.Errorf("update availability: %+v", *a)
	}
	// 1,000 requests at 99.9% allow one bad request: burning exactly at the
	// objective no window would hold the alerts' minimum of 5, so every
	// burn rate is too few to judge.
	for _, b := range a.Burn {
		if b.Total != 1000 || b.Bad != 15 || math.Abs(*b.Rate-15) > 1e-9 || !b.TooFew {
			t.Errorf("update burn over %s = %+v (rate %v), want 15 of 1000, burn 15, too few to judge", b.Window, b, *b.Rate)
		}
	}
	if l := u.Latency; !l.Judged || *l.SLI != 100 || !l.Met || *l.BudgetRemaining != 100 || l.ExhaustedIn != nil {
		t.Errorf("update latency: %+v", *l)
	}
	if l := cujOf(t, st, "login"); !l.Availability.Judged || l.Availability.SLI != nil || l.Availability.BudgetRemaining != nil || l.Availability.Burn[0].Rate != nil {
		t.Errorf("login without requests shows numbers: %+v", l.Availability)
	}
}

func alertsEqual(a, b []AlertView) bool { return alertsText(a) == alertsText(b) }

// alertsText writes alerts with their burn rates rounded, for comparing.
func alertsText(as []AlertView) string {
	var b strings.Builder
	r := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'f', 6, 64)
	}
	for _, a := range as {
		fmt.Fprintf(&b, "[%s %s %s ≥%s %s long %s short %s bad %d/%d] ", a.SLO, a.Severity, a.Pair, a.Factor, a.State, r(a.LongBurn), r(a.ShortBurn), a.LongBad, a.MinBad)
	}
	return b.String()
}

func TestWithoutAnEngineTheTableShowsTheSLOsAndTrafficOnly(t *testing.T) {
	f := newFixtureWith(t, "", func(*fixture) *Engine { return nil })
	f.observe("update", "POST /update", 100, 100)
	f.tick(5 * time.Second)
	f.poll()
	st := f.state()
	u := cujOf(t, st, "update")
	if st.Source != NoEngine || st.Judged != nil || len(st.Windows) != 0 || u.Availability.Judged || u.Availability.SLI != nil || u.Requests != 100 {
		t.Errorf("state without an engine: source %q, judged %v, windows %v, update %+v", st.Source, st.Judged, st.Windows, u)
	}
	for _, a := range u.Alerts {
		if a.State != "unknown" {
			t.Errorf("alert %+v judged without an engine", a)
		}
	}
}

// flaky is a source that fails when told to, and counts its reads.
type flaky struct {
	slo.Source
	fail  bool
	reads int
}

func (s *flaky) Events(ctx context.Context, r slo.Range) (map[slo.Key]slo.Events, error) {
	s.reads++
	if s.fail {
		return nil, errors.New("prometheus is down")
	}
	return s.Source.Events(ctx, r)
}

func TestTheEngineJudgesWhenItsInstantMovesAndKeepsItsLastViewWhenItFails(t *testing.T) {
	var src *flaky
	f := newFixtureWith(t, "", func(f *fixture) *Engine {
		src = &flaky{Source: f.flusher}
		return &Engine{Source: src, Instant: func(context.Context, time.Time) (time.Time, error) { return f.flusher.Instant(), nil }, Name: "flaky"}
	})
	f.observe("update", "POST /update", 100, 1)
	f.tick(5 * time.Second)
	f.poll()
	first := src.reads
	if first == 0 {
		t.Fatal("the engine read nothing")
	}
	f.now = f.now.Add(2 * time.Second) // same closed interval
	f.poll()
	if src.reads != first {
		t.Errorf("a poll at the same instant read the source again (%d reads, then %d)", first, src.reads)
	}
	f.now = f.now.Add(Rejudge)
	f.poll()
	if src.reads != 2*first {
		t.Errorf("after %v at the same instant: %d reads, want %d (judged again)", Rejudge, src.reads, 2*first)
	}
	src.fail = true
	f.tick(10 * time.Second)
	f.poll()
	st := f.state()
	if want := "reading events over "; !strings.Contains(st.EngineError, want) || !strings.Contains(st.EngineError, "prometheus is down") {
		t.Errorf("engine error %q, want one with %q and the cause", st.EngineError, want)
	}
	if u := cujOf(t, st, "update").Availability; st.Judged == nil || !u.Judged || *u.SLI != 99 {
		t.Errorf("after a failed judgement the table shows %+v, want the last view (SLI 99%%)", u)
	}
}

func TestChangesNeedTheTokenWhenOneIsSet(t *testing.T) {
	f := newFixture(t, "s3cret-s3cret-s3cret")
	f.poll()
	body := `{"cuj":"update","state":"page","duration":"5m"}`
	for name, h := range map[string]map[string]string{
		"no token":    {},
		"wrong token": {"Authorization": "Bearer nope"},
	} {
		if code, got := f.do("POST", "/api/simulations", body, h); code != 401 || !strings.Contains(got, "token") {
			t.Errorf("%s: %d %s, want 401", name, code, got)
		}
	}
	if len(f.faults.List()) != 0 {
		t.Fatal("a refused change installed a fault")
	}
	code, got := f.do("POST", "/api/simulations", body, map[string]string{"Authorization": "Bearer s3cret-s3cret-s3cret"})
	if code != 200 {
		t.Fatalf("with the token: %d %s", code, got)
	}
	faults := f.faults.List()
	if len(faults) != 1 || faults[0].Rule.Name != "sim-update" || faults[0].Rule.Rate.String() != "1.44%" ||
		faults[0].Rule.TTL != 5*time.Minute || faults[0].Rule.Status.Code != 503 || faults[0].Rule.Seed != 3 {
		t.Fatalf("faults after the simulation started: %+v", faults)
	}
	st := f.state()
	if len(st.Faults) != 1 || st.Faults[0].ExpiresIn != 300 || st.Faults[0].CUJ != "update" || st.Faults[0].Actions != "status 503" {
		t.Errorf("faults in the state: %+v", st.Faults)
	}
	if len(st.Audit) != 1 || st.Audit[0].Action != "put" || !strings.HasPrefix(st.Audit[0].Who, "dashboard (token:") {
		t.Errorf("audit: %+v", st.Audit)
	}
	if cujOf(t, st, "update").Simulation != "sim1" {
		t.Errorf("the update row does not name its simulation")
	}
	if code, got := f.do("DELETE", "/api/simulations/sim1", "", map[string]string{"Authorization": "Bearer s3cret-s3cret-s3cret"}); code != 200 {
		t.Fatalf("stopping: %d %s", code, got)
	}
	for _, s := range f.faults.List() {
		if s.State == fault.StateActive || s.State == fault.StatePending {
			t.Errorf("fault %s still %s after the simulation stopped", s.Rule.Name, s.State)
		}
	}
	if sims := f.state().Simulations; len(sims) != 1 || sims[0].Active || sims[0].StoppedBy != "stopped from the dashboard" {
		t.Errorf("simulations after stopping: %+v", sims)
	}
}

func TestWithoutATokenChangesNeedALoopbackHostAndAJSONBody(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	body := `{"cuj":"read","state":"objective"}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		code   int
	}{
		{"a plain form post from another site is refused", map[string]string{"Content-Type": "text/plain"}, 400},
		{"a rebinding host name is refused", map[string]string{"Host": "evil.example:8070"}, 403},
		{"the dashboard's own page is allowed", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
	} {
		if code, got := f.do("POST", "/api/simulations", body, tc.header); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, got, tc.code)
		}
	}
}

func TestThePanelExplainsEachStateInThePlannersWords(t *testing.T) {
	f := newFixture(t, "")
	page := "exactly at the threshold of the page alert (1h/5m ≥ 14.4): a window holds its share of failures rounded either way, so the alert may flap; measured traffic lets the plan add one failure per short window"
	for _, tc := range []struct {
		name, body, rate, want string
		notes                  []string
	}{
		{"exactly at the objective", `{"cuj":"update","state":"objective"}`, "0.1%",
			"1 in 1,000 update requests fails; at this rate the 30-day budget lasts exactly 30 days, and the ticket alert (3d/6h ≥ 1) fires after 3 days.", nil},
		{"a burn rate", `{"cuj":"update","state":"burn","value":"14.4"}`, "1.44%",
			"1.44% of update requests fail; at this rate (burn rate 14.4) the 30-day budget lasts exactly 2d2h, and the page alert (1h/5m ≥ 14.4) fires after 1h.", nil},
		{"an availability", `{"cuj":"upload","state":"availability","value":"99%"}`, "1%",
			"1 in 100 upload requests fails; at this rate (burn rate 2) the 30-day budget lasts exactly 15 days, and the ticket alert (3d/6h ≥ 1) fires after 1d12h.", nil},
		{"the latency boundary", `{"cuj":"read","state":"latency"}`, "1%",
			"1 in 100 read requests takes 330ms, above 300ms; at this rate the 30-day latency budget lasts exactly 30 days, and the ticket alert (3d/6h ≥ 1) fires after 3 days.", nil},
		{"the page alert", `{"cuj":"login","state":"page"}`, "0.72%",
			"0.72% of login requests fail; at this rate (burn rate 14.4) the 30-day budget lasts exactly 2d2h, and the page alert (1h/5m ≥ 14.4) fires after 1h.", []string{page}},
		{"the ticket alert", `{"cuj":"send","state":"ticket"}`, "0.3%",
			"0.3% of send requests fail; at this rate (burn rate 3) the 30-day budget lasts exactly 10 days, and the ticket alert (1d/2h ≥ 3) fires after 1 day.",
			[]string{"exactly at the threshold of the ticket alert (1d/2h ≥ 3): a window holds its share of failures rounded either way, so the alert may flap; measured traffic lets the plan add one failure per short window"}},
	} {
		code, body := f.do("POST", "/api/plan", tc.body, nil)
		var p slo.Plan
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Errorf("%s: %d %s", tc.name, code, body)
			continue
		}
		if p.Explanation != tc.want || !reflect.DeepEqual(p.Notes, tc.notes) || len(p.Rules) != 1 || p.Rules[0].Rate.String() != tc.rate {
			t.Errorf("%s:\n got %q %q (rate %s)\nwant %q %q (rate %s)", tc.name, p.Explanation, p.Notes, p.Rules[0].Rate, tc.want, tc.notes, tc.rate)
		}
	}
}

func TestAnAlertStateUsesTheMeasuredTraffic(t *testing.T) {
	f := newFixture(t, "")
	f.observe("update", "POST /update", 600, 0)
	f.tick(5 * time.Second) // 600 requests in the 10s the live windows cover: 3,600 a minute
	f.poll()
	code, body := f.do("POST", "/api/plan", `{"cuj":"update","state":"page"}`, nil)
	var p slo.Plan
	if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
		t.Fatalf("%d %s", code, body)
	}
	// 1.44% plus one failure per 5m window of 18,000 requests: 1,296/90,000 + 5/90,000.
	want := []string{"at about 3,600 requests a minute, one extra failure per 5m window keeps every window over the threshold of the page alert (1h/5m ≥ 14.4)"}
	if got := p.Rules[0].Rate; got != spec.NewRatio(1301, 90000) || !reflect.DeepEqual(p.Notes, want) {
		t.Errorf("rate %s, notes %q; want 1301/90000 and %q", got, p.Notes, want)
	}
}

func TestThePanelRefusesStatesThatCannotBeSimulated(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ body, want string }{
		{`{"cuj":"nope","state":"page"}`, `cuj: no CUJ "nope" (the CUJs are login, send, update, read, upload, task)`},
		{`{"cuj":"update","state":"weird"}`, `state: want one of objective, burn, availability, latency, page, ticket, got "weird"`},
		{`{"cuj":"update","state":"burn","value":"fast"}`, `value: want a positive burn rate such as 14.4, got "fast"`},
		{`{"cuj":"update","state":"burn","value":"2000"}`, `burn rate 2000 of a 99.9% SLO would fail more than every request (at most 1000.0)`},
		{`{"cuj":"update","state":"availability","value":"100%"}`, `that state fails no request; nothing to simulate`},
		{`{"cuj":"update","state":"page","duration":"2d"}`, `duration: want a duration up to 24h such as 15m, got "2d"`},
		{`{"cuj":"update","state":"page","extra":1}`, `request body: want {"cuj": "read", "state": "burn", "value": "14.4"}: json: unknown field "extra"`},
	} {
		code, body := f.do("POST", "/api/plan", tc.body, nil)
		var e httpapi.ErrorBody
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Error != tc.want {
			t.Errorf("%s: %d %q, want 400 %q", tc.body, code, e.Error, tc.want)
		}
	}
}

func TestTheSimulationChartShowsIntendedAndRealised(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	if code, body := f.do("POST", "/api/simulations", `{"cuj":"read","state":"availability","value":"90%"}`, nil); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	f.now = f.now.Add(time.Second)
	f.observe("read", "GET /messages", 200, 20)
	f.poll()
	code, body := f.do("GET", "/api/series?cuj=read", "", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var s struct {
		T         []float64  `json:"t"`
		Intended  []*float64 `json:"intended"`
		Realised  []*float64 `json:"realised"`
		Objective *float64   `json:"objective"`
		Factors   []float64  `json:"alertFactors"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	last := len(s.T) - 1
	if len(s.T) != 3 || s.Intended[0] != nil || *s.Intended[last] != 10 || *s.Realised[last] != 10 || *s.Objective != 99.9 ||
		!reflect.DeepEqual(s.Factors, []float64{14.4, 6, 3, 1}) {
		t.Errorf("series: %s", body)
	}
	if code, _ := f.do("GET", "/api/series?cuj=nope", "", nil); code != 404 {
		t.Errorf("series of an unknown CUJ: %d, want 404", code)
	}
}

func TestASimulationWhoseLeaseLapsesEndsByItself(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	if code, body := f.do("POST", "/api/simulations", `{"cuj":"task","state":"objective","duration":"1m"}`, nil); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if sims := f.state().Simulations; len(sims) != 1 || !sims[0].Active {
		t.Fatalf("simulations: %+v", sims)
	}
	f.now = f.now.Add(61 * time.Second)
	f.poll()
	st := f.state()
	if len(st.Faults) != 0 || st.Simulations[0].Active || st.Simulations[0].StoppedBy != "its lease ended or its rules were removed" {
		t.Errorf("after the lease: faults %+v, simulations %+v", st.Faults, st.Simulations)
	}
}

func TestTheHistoryKeepsTheLatestFramesInOrder(t *testing.T) {
	h := newHistory(3)
	base := time.Unix(1000, 0)
	for i := range 5 {
		h.add(frame{at: base.Add(time.Duration(i) * time.Second)})
	}
	var got []int64
	for _, f := range h.ordered() {
		got = append(got, f.at.Unix())
	}
	if !reflect.DeepEqual(got, []int64{1002, 1003, 1004}) {
		t.Errorf("frames %v, want the last three in order", got)
	}
}

func TestChartValuesWithoutDataAreNull(t *testing.T) {
	data, err := json.Marshal([]num{nan, 1.5, 99.95})
	if err != nil || string(data) != "[null,1.5,99.95]" {
		t.Errorf("%s %v", data, err)
	}
}

func TestTheDashboardPageAndItsFilesAreServed(t *testing.T) {
	f := newFixture(t, "")
	for path, want := range map[string]string{
		"/":                                "<title>slolab dashboard</title>",
		"/static/app.js":                   `api("GET", "api/state")`,
		"/static/vendor/uPlot.iife.min.js": "(v1.6.32)",
		"/static/vendor/uPlot.min.css":     ".uplot",
		"/static/app.css":                  ".charts",
		"/healthz":                         "ok",
	} {
		resp, err := f.srv.Client().Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(data), want) {
			t.Errorf("GET %s = %d, want 200 with %q", path, resp.StatusCode, want)
		}
	}
	if code, body := f.do("GET", "/api/state", "", nil); code != 503 || !strings.Contains(body, "has not read the proxy yet") {
		t.Errorf("state before the first poll: %d %s", code, body)
	}
}

func TestPollsFromChangesAndTheTickerDoNotCollide(t *testing.T) {
	f := newFixture(t, "")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			f.poll()
		}()
	}
	for range 8 {
		<-done
	}
	if got := len(f.dash.history.ordered()); got != 8 {
		t.Errorf("%d frames after 8 polls, want 8", got)
	}
	select {
	case <-f.dash.Polled():
	default:
		t.Error("Polled is not closed after polls")
	}
}
