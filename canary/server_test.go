package canary_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/canary"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/argoanalysis"
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

// argoPhase measures like Argo Rollouts' web metric provider, with the
// port of its rules in internal/argoanalysis.
func argoPhase(t *testing.T, status int, body []byte, path, success, failure string) string {
	t.Helper()
	m := argoanalysis.Metric{SuccessCondition: success, FailureCondition: failure}
	m.Provider.Web = &argoanalysis.WebProvider{JSONPath: path}
	p, err := argoanalysis.Web(status, body, m)
	if err != nil && p != argoanalysis.Error {
		t.Fatal(err)
	}
	return string(p)
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

// flagger plays Flagger's canary loop on the webhooks, after
// pkg/controller/scheduler.go (advanceCanary) of fluxcd/flagger: every
// iteration first rolls back once the failed checks reach the threshold,
// then runs the rollout hooks (a non-2xx answer counts a failed check and
// ends the iteration), then, below the maximum weight, the
// confirm-traffic-increase hooks (non-2xx holds the weight) before
// stepping up; at the maximum weight the confirm-promotion hooks
// (scheduler_hooks.go, runConfirmPromotionHooks: non-2xx holds) gate the
// promotion. It returns "promoted", "rolled back" or "held" after at most
// iterations iterations.
func flagger(t *testing.T, base string, confirmHooks bool, query string, iterations int) string {
	t.Helper()
	const threshold, step, maxWeight = 3, 10, 50
	call := func(path string) int {
		resp, err := http.Post(base+path+query, "application/json", strings.NewReader(`{"name": "chat", "namespace": "prod", "phase": "Progressing", "metadata": {}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ok := func(code int) bool { return code >= 200 && code < 300 }
	failed, weight := 0, 0
	for range iterations {
		if failed >= threshold {
			return "rolled back"
		}
		if !ok(call(canary.FlaggerRolloutPath)) {
			failed++
			continue
		}
		if weight < maxWeight {
			if confirmHooks && !ok(call(canary.FlaggerConfirmPath)) {
				continue
			}
			weight += step
			continue
		}
		if confirmHooks && !ok(call(canary.FlaggerConfirmPath)) {
			continue
		}
		return "promoted"
	}
	return "held"
}

func TestFlaggerNeverPromotesAnIdleCanary(t *testing.T) {
	for _, tc := range []struct {
		name    string
		canaryN int
		query   string
		want    string
	}{
		{"an idle canary is held for a human by default", 0, "", "held"},
		{"an idle canary is rolled back with no-data fail", 0, "?no-data=fail", "rolled back"},
		{"a canary with too little traffic is held", 100, "", "held"},
		{"a canary with enough clean traffic is promoted", 6000, "", "promoted"},
		{"a canary with enough clean traffic is promoted with no-data fail", 6000, "?no-data=fail", "promoted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			if tc.canaryN > 0 {
				l.everyCUJ(tc.canaryN, 0)
			}
			if got := flagger(t, l.verdict.URL, true, tc.query, 20); got != tc.want {
				t.Errorf("Flagger's loop: %s, want %s", got, tc.want)
			}
		})
	}
	// The rollout hook alone cannot hold without counting failed checks:
	// by default it answers 2xx while inconclusive, which is why a Canary
	// must list the confirm-promotion hook; with no-data fail it is safe
	// alone.
	l := newLab(t)
	if got := flagger(t, l.verdict.URL, false, "?no-data=fail", 20); got != "rolled back" {
		t.Errorf("rollout hook alone with no-data fail: %s, want rolled back", got)
	}
	if code, _ := get(t, l.verdict.URL+canary.FlaggerRolloutPath+"?no-data=maybe"); code != 400 {
		t.Errorf("an unknown no-data policy: %d, want 400", code)
	}
}

// An idle canary measured by the generated verdict templates through the
// real endpoint, every measurement assessed with Argo Rollouts' rules.
func TestArgoPausesARolloutWhoseCanaryServedNothing(t *testing.T) {
	l := newLab(t)
	status, body := get(t, l.verdict.URL+canary.VerdictPath)
	data, err := os.ReadFile("../gen/argo/testdata/chat/analysistemplate-login-verdict.yaml")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := argoanalysis.Metrics(data)
	if err != nil {
		t.Fatal(err)
	}
	run := argoanalysis.Analyze(metrics, 100, func(m argoanalysis.Metric, _ int) argoanalysis.Phase {
		p, err := argoanalysis.Web(status, body, m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
	if run.Phase != argoanalysis.Inconclusive || run.Metrics[0].Inconclusive != 5 {
		t.Errorf("analysis of an idle canary: %+v, want Inconclusive after 5 inconclusive measurements", run)
	}
}
