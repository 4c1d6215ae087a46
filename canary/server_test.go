package canary_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"
	"k8s.io/client-go/util/jsonpath"

	"slolab.dev/slolab/canary"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// lab is a recorder behind a real admin API, and the verdict endpoint
// reading it: what `slolab proxy` and `slolab canary serve` run.
type lab struct {
	svc     *spec.Service
	routes  *match.Table
	rec     *sli.Recorder
	verdict *httptest.Server
}

func newLab(t *testing.T) *lab {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	adm := httptest.NewServer(h)
	t.Cleanup(adm.Close)
	client, _ := admin.NewClient(adm.URL, "")
	v := httptest.NewServer(canary.NewHandler(canary.ServerConfig{Service: svc, Source: &canary.Admin{Client: client, URL: adm.URL}, Window: 5 * time.Minute}))
	t.Cleanup(v.Close)
	return &lab{svc: svc, routes: routes, rec: rec, verdict: v}
}

// feed records n requests of a CUJ's first route on a revision, bad of them 500s.
func (l *lab) feed(cuj string, rev match.Revision, n, bad int) {
	rt := l.routes.Route(cuj, l.svc.CUJ(cuj).Routes[0].Pattern)
	for i := range n {
		code := 200
		if i < bad {
			code = 500
		}
		l.rec.Observe(sli.Observation{Route: rt, Revision: rev, Method: "POST", Code: code, Latency: 20 * time.Millisecond})
	}
}

// everyCUJ gives every CUJ enough canary traffic for a decision (login's
// 99.95% needs 5,990), task's canary failing bad of its requests.
func (l *lab) everyCUJ(canaryN, taskBad int) {
	for _, c := range l.svc.CUJs {
		bad := 0
		if c.Name == "task" {
			bad = taskBad
		}
		l.feed(c.Name, match.RevisionCanary, canaryN, bad)
		l.feed(c.Name, match.RevisionStable, 3*canaryN, 0)
	}
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// argoPhase measures like Argo Rollouts' web metric provider: a non-2xx
// answer is an Error; the body is decoded as JSON, the JSONPath's first
// match (k8s jsonpath, as Argo uses) becomes `result`, and the conditions
// are evaluated with expr-lang/expr in Argo's environment, giving
// Successful, Failed or Inconclusive as Argo's evaluate package does.
func argoPhase(t *testing.T, status int, body []byte, path, success, failure string) string {
	t.Helper()
	if status < 200 || status >= 300 {
		return "Error"
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	jp := jsonpath.New("metric")
	if err := jp.Parse(path); err != nil {
		t.Fatal(err)
	}
	found, err := jp.FindResults(data)
	if err != nil || len(found) == 0 || len(found[0]) == 0 {
		return "Error"
	}
	result := found[0][0].Interface() // Argo keeps the first match only
	env := map[string]any{
		"result":  result,
		"isNaN":   math.IsNaN,
		"isInf":   func(f float64) bool { return math.IsInf(f, 0) },
		"asFloat": func(v any) float64 { f, _ := v.(float64); return f },
	}
	eval := func(cond string) bool {
		out, err := expr.Eval(cond, env)
		if err != nil {
			t.Fatalf("%s: %v", cond, err)
		}
		b, ok := out.(bool)
		if !ok {
			t.Fatalf("%s gave %T", cond, out)
		}
		return b
	}
	ok, bad := eval(success), eval(failure)
	switch {
	case bad:
		return "Failed"
	case ok:
		return "Successful"
	}
	return "Inconclusive"
}

// The conditions docs/canary.md documents. One metric judges every CUJ:
// all(...) over the array, never a wildcard path (Argo keeps only the first
// match of a wildcard).
const (
	allPath    = "{$.cujs}"
	allSuccess = `len(result) > 0 && all(result, {.verdict == "pass"})`
	allFailure = `any(result, {.verdict == "fail"})`
	topPath    = "{$.verdict}"
	topSuccess = `result == "pass"`
	topFailure = `result == "fail"`
)

// generatedVerdictMetric reads the metric `slolab gen argo-rollouts` writes
// for a CUJ, so the generator and the endpoint are tested against each other.
func generatedVerdictMetric(t *testing.T, cuj string) (path, success, failure string) {
	t.Helper()
	data, err := os.ReadFile("../gen/argo/testdata/chat/analysistemplate-" + cuj + "-verdict.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Spec struct {
			Metrics []struct {
				SuccessCondition string `yaml:"successCondition"`
				FailureCondition string `yaml:"failureCondition"`
				Provider         struct {
					Web struct {
						JSONPath string `yaml:"jsonPath"`
					} `yaml:"web"`
				} `yaml:"provider"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &tmpl); err != nil || len(tmpl.Spec.Metrics) != 1 {
		t.Fatalf("generated template: %v", err)
	}
	m := tmpl.Spec.Metrics[0]
	return m.Provider.Web.JSONPath, m.SuccessCondition, m.FailureCondition
}

func TestArgoConditionsOnTheEndpointGiveTheExpectedPhases(t *testing.T) {
	for _, tc := range []struct {
		name             string
		canaryN, taskBad int
		verdict          string
		all, top, task   string // phases: every CUJ in one metric, the top verdict, the generated task template
		login            string // the generated login template: login passes or lacks traffic
	}{
		{"a canary as good as stable", 6000, 0, "pass", "Successful", "Successful", "Successful", "Successful"},
		{"a canary that breaks the task CUJ", 6000, 60, "fail", "Failed", "Failed", "Failed", "Successful"},
		{"a canary with too little traffic", 100, 0, "inconclusive", "Inconclusive", "Inconclusive", "Inconclusive", "Inconclusive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			l.everyCUJ(tc.canaryN, tc.taskBad)
			status, body := get(t, l.verdict.URL+canary.VerdictPath)
			if status != 200 || !json.Valid(body) || strings.Contains(string(body), "null") || strings.Contains(string(body), "NaN") {
				t.Fatalf("%d %s", status, body)
			}
			var res canary.Result
			json.Unmarshal(body, &res)
			if string(res.Verdict) != tc.verdict {
				t.Errorf("verdict %s, want %s: %v", res.Verdict, tc.verdict, res.Reasons)
			}
			taskPath, taskOK, taskBad := generatedVerdictMetric(t, "task")
			loginPath, loginOK, loginBad := generatedVerdictMetric(t, "login")
			got := []string{
				argoPhase(t, status, body, allPath, allSuccess, allFailure),
				argoPhase(t, status, body, topPath, topSuccess, topFailure),
				argoPhase(t, status, body, taskPath, taskOK, taskBad),
				argoPhase(t, status, body, loginPath, loginOK, loginBad),
			}
			want := []string{tc.all, tc.top, tc.task, tc.login}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("phases (all CUJs, top verdict, task template, login template) = %v, want %v", got, want)
			}
		})
	}
}

// Why the docs never use a wildcard: Argo keeps the first match, so a
// release whose first CUJ passes looks successful while task fails.
func TestAWildcardPathWouldPassAFailingCanary(t *testing.T) {
	l := newLab(t)
	l.everyCUJ(6000, 60)
	status, body := get(t, l.verdict.URL+canary.VerdictPath)
	if got := argoPhase(t, status, body, "{$.cujs[*].verdict}", topSuccess, topFailure); got != "Successful" {
		t.Errorf("wildcard phase %s: Argo's first-match rule changed; revisit docs/canary.md", got)
	}
	if got := argoPhase(t, status, body, allPath, allSuccess, allFailure); got != "Failed" {
		t.Errorf("all(...) phase %s, want Failed", got)
	}
}

func TestAnUnreachableSourceIsAnErrorNotAVerdict(t *testing.T) {
	svc, _ := spec.LoadService("../examples/chat.yaml")
	client, _ := admin.NewClient("http://127.0.0.1:1", "")
	v := httptest.NewServer(canary.NewHandler(canary.ServerConfig{Service: svc, Source: &canary.Admin{Client: client, URL: "http://127.0.0.1:1"}}))
	defer v.Close()
	status, body := get(t, v.URL+canary.VerdictPath)
	var eb struct{ Error string }
	json.Unmarshal(body, &eb)
	if status != 503 || !strings.Contains(eb.Error, "connection refused") || argoPhase(t, status, body, topPath, topSuccess, topFailure) != "Error" {
		t.Errorf("%d %s", status, body)
	}
}

func TestTheEndpointNarrowsToCUJsAndWindows(t *testing.T) {
	l := newLab(t)
	l.everyCUJ(100, 0)
	l.feed("task", match.RevisionCanary, 600, 0)
	l.feed("task", match.RevisionStable, 1800, 0)
	status, body := get(t, l.verdict.URL+canary.VerdictPath+"?cuj=task&window=1m")
	var res canary.Result
	json.Unmarshal(body, &res)
	if status != 200 || res.Verdict != canary.Pass || len(res.CUJs) != 1 || res.CUJs[0].CUJ != "task" || res.Window.String() != "1m" || res.Checks != 4 {
		t.Errorf("%d %s", status, body)
	}
	for q, want := range map[string]string{
		"?cuj=checkout": `cuj: service chat has no CUJ "checkout" (it has login, send, update, read, upload, task)`,
		"?window=soon":  `window: want a duration such as 250ms, 5m or 30d, got "soon"`,
		"?window=7h":    "window: must be in (0, 6h], the history the proxy keeps in memory, got 7h",
	} {
		status, body := get(t, l.verdict.URL+canary.VerdictPath+q)
		var eb struct{ Error string }
		json.Unmarshal(body, &eb)
		if status != 400 || eb.Error != want {
			t.Errorf("%s: %d %q, want 400 %q", q, status, eb.Error, want)
		}
	}
}

// Flagger reads only the status: its rollout hook fails only on fail, its
// confirm hooks advance only on pass.
func TestFlaggerWebhooksAnswer2xxOrNot(t *testing.T) {
	for _, tc := range []struct {
		name             string
		canaryN, taskBad int
		rollout, confirm int
	}{
		{"pass", 6000, 0, 200, 200},
		{"fail", 6000, 60, canary.StatusFailed, canary.StatusFailed},
		{"inconclusive", 100, 0, 200, canary.StatusTooEarly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			l.everyCUJ(tc.canaryN, tc.taskBad)
			payload := `{"name": "chat", "namespace": "prod", "phase": "Progressing", "metadata": {}}`
			var got []int
			for _, path := range []string{canary.FlaggerRolloutPath, canary.FlaggerConfirmPath} {
				resp, err := http.Post(l.verdict.URL+path, "application/json", strings.NewReader(payload))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got = append(got, resp.StatusCode)
			}
			if fmt.Sprint(got) != fmt.Sprint([]int{tc.rollout, tc.confirm}) {
				t.Errorf("rollout, confirm = %v, want %d %d", got, tc.rollout, tc.confirm)
			}
		})
	}
	// The payload's metadata narrows the judgment: login alone passes.
	l := newLab(t)
	l.everyCUJ(6000, 60)
	resp, err := http.Post(l.verdict.URL+canary.FlaggerConfirmPath, "application/json", strings.NewReader(`{"name": "chat", "metadata": {"cuj": "login,read"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var res canary.Result
	json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(res.CUJs) != 2 || res.Verdict != canary.Pass {
		t.Errorf("narrowed to login and read: %d %+v", resp.StatusCode, res)
	}
	resp, err = http.Post(l.verdict.URL+canary.FlaggerRolloutPath, "application/json", strings.NewReader(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a payload that is not JSON: %d, want 400", resp.StatusCode)
	}
}
