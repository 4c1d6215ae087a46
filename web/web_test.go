package web

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/examples"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// fixture is a dashboard over a real admin API, registry and recorder,
// all on one hand-moved clock.
type fixture struct {
	t      *testing.T
	now    time.Time
	svc    *spec.Service
	routes *match.Table
	faults *fault.Registry
	rec    *sli.Recorder
	dash   *Dashboard
	srv    *httptest.Server
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
	f := &fixture{t: t, now: time.Date(2026, 6, 1, 10, 0, 5, 0, time.UTC), svc: chat(t)}
	clock := func() time.Time { return f.now }
	var err error
	if f.routes, err = match.Compile(f.svc); err != nil {
		t.Fatal(err)
	}
	if f.faults, err = fault.NewRegistry(fault.Config{Service: f.svc, Routes: f.routes, Now: clock}); err != nil {
		t.Fatal(err)
	}
	f.rec = sli.New(sli.Config{Service: f.svc, Routes: f.routes, Now: clock})
	adminSrv := httptest.NewServer(admin.NewHandler(admin.Config{
		Service: f.svc, Routes: f.routes, Faults: f.faults, Recorder: f.rec, Token: token, Now: clock,
	}))
	t.Cleanup(adminSrv.Close)
	client, err := admin.NewClient(adminSrv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	client.SetActor("dashboard")
	if f.dash, err = New(Config{Service: f.svc, Admin: client, Token: token, Now: clock, Seed: 3}); err != nil {
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

func (f *fixture) do(method, path, body string, header map[string]string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
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
	code, body := f.do("GET", "/api/state", "", nil)
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

func TestTheStateJudgesBurnRatesAndThePageAlertExactly(t *testing.T) {
	f := newFixture(t, "")
	f.observe("update", "POST /update", 1000, 15) // 1.5%: burn 15, over the page threshold 14.4
	f.observe("send", "POST /messages", 1000, 14) // 1.4%: burn 14, under it
	f.observe("read", "GET /messages", 100, 2)    // 2%: burn 20, but 2 bad < 5 (the low-traffic guard)
	f.poll()
	st := f.state()
	if got := len(st.CUJs); got != 6 {
		t.Fatalf("%d CUJs, want the 6 of the spec (no _other)", got)
	}
	wantAlerts := func(page string) []AlertView {
		var out []AlertView
		for _, slo := range []string{"availability", "latency"} {
			state := "ok"
			if slo == "availability" {
				state = page
			}
			out = append(out,
				AlertView{SLO: slo, Severity: "page", Pair: "1h/5m", Factor: "14.4", State: state},
				AlertView{SLO: slo, Severity: "page", Pair: "6h/30m", Factor: "6", State: "unknown"},
				AlertView{SLO: slo, Severity: "ticket", Pair: "1d/2h", Factor: "3", State: "unknown"},
				AlertView{SLO: slo, Severity: "ticket", Pair: "3d/6h", Factor: "1", State: "unknown"})
		}
		return out
	}
	for _, tc := range []struct {
		cuj  string
		page string
	}{{"update", "firing"}, {"send", "ok"}, {"read", "ok"}, {"login", "ok"}} {
		if got := cujOf(t, st, tc.cuj).Alerts; !reflect.DeepEqual(got, wantAlerts(tc.page)) {
			t.Errorf("%s alerts:\n got %+v\nwant %+v", tc.cuj, got, wantAlerts(tc.page))
		}
	}
	u := cujOf(t, st, "update")
	a := u.Availability
	if *a.SLI != 98.5 || math.Abs(*a.BudgetRemaining-(-1400)) > 1e-9 || a.SLIWindow != "last 5s" || a.Objective.String() != "99.9%" {
		t.Errorf("update availability: SLI %v over %s, budget %v, objective %s; want 98.5 over last 5s, -1400, 99.9%%", *a.SLI, a.SLIWindow, *a.BudgetRemaining, a.Objective)
	}
	wantBurn := []BurnView{{"1m", f64(15), 1000, 15}, {"5m", f64(15), 1000, 15}, {"1h", f64(15), 1000, 15}}
	for i := range wantBurn {
		g, w := a.Burn[i], wantBurn[i]
		if g.Window != w.Window || g.Total != w.Total || g.Bad != w.Bad || math.Abs(*g.Rate-*w.Rate) > 1e-9 {
			t.Errorf("update burn %d = %+v (rate %v), want %+v (rate %v)", i, g, *g.Rate, w, *w.Rate)
		}
	}
	if l := cujOf(t, st, "login"); l.Availability.SLI != nil || l.Availability.BudgetRemaining != nil || l.Availability.Burn[0].Rate != nil {
		t.Errorf("login without requests shows numbers: %+v", l.Availability)
	}
}

func TestChangesNeedTheTokenWhenOneIsSet(t *testing.T) {
	f := newFixture(t, "s3cret")
	f.poll()
	body := `{"cuj":"update","state":"page","duration":"5m"}`
	for name, h := range map[string]map[string]string{
		"no token":    {MutationHeader: "1"},
		"wrong token": {"Authorization": "Bearer nope"},
	} {
		if code, got := f.do("POST", "/api/simulations", body, h); code != 401 || !strings.Contains(got, "needs the admin token") {
			t.Errorf("%s: %d %s, want 401", name, code, got)
		}
	}
	if len(f.faults.List()) != 0 {
		t.Fatal("a refused change installed a fault")
	}
	code, got := f.do("POST", "/api/simulations", body, map[string]string{"Authorization": "Bearer s3cret"})
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
	if code, got := f.do("DELETE", "/api/simulations/sim1", "", map[string]string{"Authorization": "Bearer s3cret"}); code != 200 {
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

func TestWithoutATokenChangesNeedTheHeaderAndALoopbackHost(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	body := `{"cuj":"read","state":"objective"}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		code   int
	}{
		{"a plain form post from another site is refused", map[string]string{}, 401},
		{"a rebinding host name is refused", map[string]string{MutationHeader: "1", "Host": "evil.example:8070"}, 401},
		{"the dashboard's own page is allowed", map[string]string{MutationHeader: "1"}, 200},
	} {
		if code, got := f.do("POST", "/api/simulations", body, tc.header); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, got, tc.code)
		}
	}
}

func TestThePanelExplainsEachStateInPlainWords(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct {
		name, body, rate, want string
	}{
		{"exactly at the objective", `{"cuj":"update","state":"objective"}`, "0.1%",
			"0.1% of update requests fail with 503: burn rate 1. At this rate the availability SLO's 30d budget (99.9%) lasts 30 days."},
		{"a burn rate", `{"cuj":"update","state":"burn","value":"14.4"}`, "1.44%",
			"1.44% of update requests fail with 503: burn rate 14.4. At this rate the availability SLO's 30d budget (99.9%) lasts about 2d2h."},
		{"an availability", `{"cuj":"upload","state":"availability","value":"99%"}`, "1%",
			"1% of upload requests fail with 503: burn rate 2. At this rate the availability SLO's 30d budget (99.5%) lasts 15 days."},
		{"the latency boundary", `{"cuj":"read","state":"latency"}`, "1%",
			"1% of read requests take 330ms, just above 300ms: the latency SLO (99% under 300ms) is met exactly, and its 30d budget lasts 30 days."},
		{"the page alert", `{"cuj":"login","state":"page"}`, "0.72%",
			"0.72% of login requests fail with 503: burn rate 14.4, the threshold of the page alert (14.4 over 1h, confirmed over 5m). At this rate the availability SLO's 30d budget (99.95%) lasts about 2d2h."},
		{"the ticket alert", `{"cuj":"send","state":"ticket"}`, "0.3%",
			"0.3% of send requests fail with 503: burn rate 3, the threshold of the ticket alert (3 over 1d, confirmed over 2h). At this rate the availability SLO's 30d budget (99.9%) lasts 10 days."},
	} {
		code, body := f.do("POST", "/api/plan", tc.body, nil)
		var p Plan
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Errorf("%s: %d %s", tc.name, code, body)
			continue
		}
		if p.Explanation != tc.want || len(p.Rules) != 1 || p.Rules[0].Rate.String() != tc.rate {
			t.Errorf("%s:\n got %q (rate %s)\nwant %q (rate %s)", tc.name, p.Explanation, p.Rules[0].Rate, tc.want, tc.rate)
		}
	}
}

func TestThePanelRefusesStatesThatCannotBeSimulated(t *testing.T) {
	f := newFixture(t, "")
	for _, tc := range []struct{ body, want string }{
		{`{"cuj":"nope","state":"page"}`, `cuj: no CUJ "nope" (the CUJs are login, send, update, read, upload, task)`},
		{`{"cuj":"update","state":"weird"}`, `state: want one of objective, burn, availability, latency, page, ticket, got "weird"`},
		{`{"cuj":"update","state":"burn","value":"fast"}`, `value: want a positive burn rate such as 14.4, got "fast"`},
		{`{"cuj":"update","state":"burn","value":"2000"}`, `burn rate 2000 of a 99.9% SLO would fail more than every request`},
		{`{"cuj":"update","state":"availability","value":"100%"}`, `that state fails no request: nothing to simulate`},
		{`{"cuj":"update","state":"page","duration":"2d"}`, `duration: want a duration up to 24h such as 15m, got "2d"`},
		{`{"cuj":"update","state":"page","extra":1}`, `request body: json: unknown field "extra"`},
	} {
		code, body := f.do("POST", "/api/plan", tc.body, nil)
		var e errorBody
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Error != tc.want {
			t.Errorf("%s: %d %q, want 400 %q", tc.body, code, e.Error, tc.want)
		}
	}
}

func TestTheSimulationChartShowsIntendedAndRealised(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	if code, body := f.do("POST", "/api/simulations", `{"cuj":"read","state":"availability","value":"90%"}`, map[string]string{MutationHeader: "1"}); code != 200 {
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
	if code, body := f.do("POST", "/api/simulations", `{"cuj":"task","state":"objective","duration":"1m"}`, map[string]string{MutationHeader: "1"}); code != 200 {
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
	if code, body := f.do("GET", "/api/state", "", nil); code != 502 || !strings.Contains(body, "has not read the proxy yet") {
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
