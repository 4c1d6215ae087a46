package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

type canaryEnv struct {
	*env
	rec    *sli.Recorder
	routes *match.Table
	split  *split.Split
}

func setupCanary(t *testing.T, token string, sp func(cujs int) *split.Split) *canaryEnv {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	var s *split.Split
	if sp != nil {
		s = sp(len(routes.CUJs()))
	}
	var buf bytes.Buffer
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec, Split: s, Audit: admin.NewAudit(&buf, 10), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &canaryEnv{env: &env{srv: srv, faults: faults, audit: &buf}, rec: rec, routes: routes, split: s}
}

func weightSplit(t *testing.T) func(int) *split.Split {
	return func(cujs int) *split.Split {
		st, _ := url.Parse("http://127.0.0.1:3001")
		ca, _ := url.Parse("http://127.0.0.1:3002")
		s, err := split.New(split.Config{Stable: st, Canary: ca, CUJs: cujs, Weight: spec.NewRatio(1, 10)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestTheCanaryWeightChangesThroughTheAPIWithTheTokenAndIsAudited(t *testing.T) {
	e := setupCanary(t, "s3cret-s3cret-s3cret", weightSplit(t))
	if code, body := call(t, "PUT", e.srv.URL+"/api/v1/canary", "", `{"weight": "25%"}`); code != 401 {
		t.Errorf("without a token: %d %s", code, body)
	}
	code, body := call(t, "PUT", e.srv.URL+"/api/v1/canary", "s3cret-s3cret-s3cret", `{"weight": "25%"}`)
	var st split.Status
	json.Unmarshal([]byte(body), &st)
	if code != 200 || st.Mode != "weight" || st.Weight.String() != "25%" || st.Canary != "http://127.0.0.1:3002" || st.Stable != "http://127.0.0.1:3001" {
		t.Errorf("put: %d %s", code, body)
	}
	// A bare number is a percentage, as in Argo Rollouts' setWeight.
	for _, tc := range [][2]string{{`{"weight": 50}`, "50%"}, {`{"weight": "0"}`, "0%"}, {`{"weight": "100"}`, "100%"}, {`{"weight": "0.5%"}`, "0.5%"}} {
		code, resp := call(t, "PUT", e.srv.URL+"/api/v1/canary", "s3cret-s3cret-s3cret", tc[0])
		json.Unmarshal([]byte(resp), &st)
		if code != 200 || st.Weight.String() != tc[1] {
			t.Errorf("%s: %d %s, want weight %s", tc[0], code, resp, tc[1])
		}
	}
	for body, want := range map[string]string{
		`{"weight": "150%"}`: "request body: weight: must be at most 100%, got 150%",
		`{"weight": "lots"}`: `request body: weight: want a non-negative number or percentage such as 0.1% or 0.001, got "lots"`,
		`{"wieght": "5%"}`:   `request body: want {"weight": "25%"}: json: unknown field "wieght"`,
		``:                   `request body: empty; want {"weight": "25%"}`,
		`{}`:                 `request body: want {"weight": "25%"}`,
	} {
		code, resp := call(t, "PUT", e.srv.URL+"/api/v1/canary", "s3cret-s3cret-s3cret", body)
		var eb struct{ Error string }
		json.Unmarshal([]byte(resp), &eb)
		if code != 400 || eb.Error != want {
			t.Errorf("%s: %d %q, want 400 %q", body, code, eb.Error, want)
		}
	}
	if w := e.split.Weight(); w.String() != "0.5%" {
		t.Errorf("weight after refused changes: %s, want the last accepted 0.5%%", w)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(e.audit.String()), "\n") {
		var a struct {
			Action string
			Detail map[string]string
		}
		json.Unmarshal([]byte(line), &a)
		actions = append(actions, fmt.Sprintf("%s %s←%s", a.Action, a.Detail["weight"], a.Detail["previous"]))
	}
	want := "[canary.weight 25%←10% canary.weight 50%←25% canary.weight 0%←50% canary.weight 100%←0% canary.weight 0.5%←100%]"
	if fmt.Sprint(actions) != want {
		t.Errorf("audit: %v\nwant %s", actions, want)
	}
}

func TestWithoutASplitTheCanaryEndpointSaysHowToGetOne(t *testing.T) {
	e := setupCanary(t, "", nil)
	want := "the proxy does not split traffic: start it with --upstream stable=URL --upstream canary=URL, or --revision-header NAME"
	for _, method := range []string{"GET", "PUT"} {
		code, body := call(t, method, e.srv.URL+"/api/v1/canary", "", `{"weight": "5%"}`)
		var eb struct{ Error string }
		json.Unmarshal([]byte(body), &eb)
		if code != 404 || eb.Error != want {
			t.Errorf("%s: %d %s", method, code, body)
		}
	}
	c, _ := admin.NewClient(e.srv.URL, "")
	if _, err := c.Canary(context.Background()); slolab.KindOf(err) != slolab.NotFound {
		t.Errorf("client: %v", err)
	}
}

func TestAMeshSplitRefusesWeightChanges(t *testing.T) {
	e := setupCanary(t, "", func(cujs int) *split.Split {
		s, _ := split.New(split.Config{Header: "X-Canary", CUJs: cujs})
		return s
	})
	c, _ := admin.NewClient(e.srv.URL, "")
	_, err := c.SetCanaryWeight(context.Background(), spec.NewRatio(1, 2))
	if slolab.KindOf(err) != slolab.Conflict || !strings.Contains(err.Error(), "X-Canary header") {
		t.Errorf("set weight in header mode: %v", err)
	}
	st, err := c.Canary(context.Background())
	if err != nil || st.Mode != "header" || st.Header != "X-Canary" {
		t.Errorf("status: %+v %v", st, err)
	}
}

// Counts over an arbitrary window per CUJ × revision, and the live view's
// per-revision windows, from the same recorder.
func TestCountsPerRevisionOverAnyWindow(t *testing.T) {
	e := setupCanary(t, "", weightSplit(t))
	c, _ := admin.NewClient(e.srv.URL, "")
	upd := e.routes.Route("update", "POST /update")
	for i := range 100 {
		rev, code, lat := match.RevisionStable, 200, 10*time.Millisecond
		if i%10 == 0 {
			rev, code, lat = match.RevisionCanary, 503, 2*time.Second
		}
		e.rec.Observe(sli.Observation{Route: upd, Revision: rev, Method: "POST", Code: code, Latency: lat})
	}
	got, err := c.Counts(context.Background(), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got.Service != "chat" || got.Window.String() != "5m" || got.Split == nil || got.Split.Weight.String() != "10%" ||
		len(got.Bounds) != len(e.rec.Bounds()) || len(got.CUJs) != 7 || got.CUJs[6].CUJ != "_other" || len(got.CUJs[6].Revisions) != 0 {
		t.Fatalf("counts: %+v", got)
	}
	update := got.CUJs[2]
	var summary []string
	for _, r := range update.Revisions {
		var sum uint64
		for _, v := range r.Hist {
			sum += v
		}
		summary = append(summary, fmt.Sprintf("%s %d/%d/%d hist=%d", r.Revision, r.Total, r.Bad, r.Slow, sum))
	}
	if update.CUJ != "update" || fmt.Sprint(summary) != "[stable 90/0/0 hist=90 canary 10/10/10 hist=10]" {
		t.Errorf("update: %v", summary)
	}
	cujs, _ := c.CUJs(context.Background())
	revs := cujs.CUJs[2].Revisions
	if len(revs) != 2 || revs[0].Revision != "stable" || revs[1].Revision != "canary" || revs[1].Windows[0].Total != 10 || *revs[1].Windows[0].Availability != 0 {
		t.Errorf("live view per revision: %+v", revs)
	}
	for q, want := range map[string]string{
		"":            "window: required, e.g. ?window=5m",
		"?window=7h":  "window: must be in (0, 6h], the history the proxy keeps in memory, got 7h",
		"?window=0s":  "window: must be in (0, 6h], the history the proxy keeps in memory, got 0s",
		"?window=abc": `window: want a duration such as 250ms, 5m or 30d, got "abc"`,
	} {
		code, body := call(t, "GET", e.srv.URL+"/api/v1/counts"+q, "", "")
		var eb struct{ Error string }
		json.Unmarshal([]byte(body), &eb)
		if code != 400 || eb.Error != want {
			t.Errorf("%q: %d %q, want %q", q, code, eb.Error, want)
		}
	}
}

// A 10s window asked 800 ms into an interval covers the interval before as
// well: at least 10s of requests, never the live 800 ms alone.
func TestCountsCoverAtLeastTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc, err := spec.LoadService("../../examples/chat.yaml")
		if err != nil {
			t.Fatal(err)
		}
		routes, _ := match.Compile(svc)
		rec := sli.New(sli.Config{Service: svc, Routes: routes})
		upd := routes.Route("update", "POST /update")
		observe := func(n int) {
			for range n {
				rec.Observe(sli.Observation{Route: upd, Method: "POST", Code: 200, Latency: time.Millisecond})
			}
		}
		// Synctest's clock starts on a whole second: move to 3s into an interval.
		time.Sleep(10*time.Second - time.Duration(time.Now().UnixNano()%int64(10*time.Second)) + 3*time.Second)
		observe(5)
		time.Sleep(7*time.Second + 800*time.Millisecond) // 800 ms into the next interval
		rec.Close(time.Now())
		observe(2)
		got := admin.Counts(svc, routes, rec, nil, 10*time.Second, time.Now())
		if time.Duration(got.Span) < 10*time.Second || got.CUJs[2].Revisions[0].Total != 7 {
			t.Errorf("10s window: span %s, %d requests; want at least 10s and all 7", got.Span, got.CUJs[2].Revisions[0].Total)
		}
	})
}
