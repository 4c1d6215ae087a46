package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

type env struct {
	srv    *httptest.Server
	faults *fault.Registry
	audit  *bytes.Buffer
}

func setup(t *testing.T, token string) *env {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	var buf bytes.Buffer
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec, Audit: admin.NewAudit(&buf, 10), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{srv: srv, faults: faults, audit: &buf}
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadRulesGet400WithTheReason(t *testing.T) {
	e := setup(t, "")
	tests := []struct{ name, body, want string }{
		{"a rate above 100%", `{"status": 500, "rate": "150%"}`, `request body:1:25: rate: must be at most 100%, got 150%`},
		{"an unknown field", `{"status": 500, "ratio": "1%"}`, `request body:1:17: ratio: unknown field; did you mean "rate"?`},
		{"a CUJ the service lacks", `{"status": 500, "match": {"cuj": "checkout"}}`, `fault x: match.cuj: service chat has no CUJ "checkout" (it has login, send, update, read, upload, task)`},
		{"a lease beyond the cap", `{"abort": true, "ttl": "2h"}`, `fault x: ttl: 2h exceeds the proxy's maximum lease of 1h`},
		{"not JSON", `{"status": 500`, `request body:1: YAML syntax: did not find expected ',' or '}'`},
		{"an empty body", ``, `the request body is empty: send a fault rule as JSON, e.g. {"match": {"cuj": "update"}, "status": 500, "rate": "0.1%"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, "PUT", e.srv.URL+"/api/v1/faults/x", "", tt.body)
			var eb struct{ Error string }
			json.Unmarshal([]byte(body), &eb)
			if code != 400 || eb.Error != tt.want {
				t.Errorf("got %d %s\nwant 400 %q", code, body, tt.want)
			}
		})
	}
}

func TestMutationsNeedTheTokenWhenOneIsSet(t *testing.T) {
	e := setup(t, "s3cret-s3cret-s3cret")
	rule := `{"match": {"cuj": "update"}, "status": 500, "rate": "0.1%"}`
	if code, _ := call(t, "PUT", e.srv.URL+"/api/v1/faults/a", "", rule); code != 401 {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, _ := call(t, "PUT", e.srv.URL+"/api/v1/faults/a", "wrong", rule); code != 401 {
		t.Errorf("with a wrong token: %d, want 401", code)
	}
	if code, body := call(t, "PUT", e.srv.URL+"/api/v1/faults/a", "s3cret-s3cret-s3cret", rule); code != 201 {
		t.Errorf("with the token: %d %s, want 201", code, body)
	}
	if code, _ := call(t, "PUT", e.srv.URL+"/api/v1/faults/a", "s3cret-s3cret-s3cret", rule); code != 200 {
		t.Errorf("replacing: %d, want 200", code)
	}
	if code, _ := call(t, "GET", e.srv.URL+"/api/v1/faults", "", ""); code != 401 {
		t.Errorf("reading without a token: %d, want 401", code)
	}
	if code, _ := call(t, "DELETE", e.srv.URL+"/api/v1/faults/a", "", ""); code != 401 {
		t.Errorf("deleting without a token: %d, want 401", code)
	}
	// The audit log names a fingerprint of the token, never the token.
	var entries []admin.AuditEntry
	for _, line := range strings.Split(strings.TrimSpace(e.audit.String()), "\n") {
		var a admin.AuditEntry
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		entries = append(entries, a)
	}
	if len(entries) != 2 || entries[0].Action != "put" || entries[1].Action != "replace" || entries[0].Fault != "a" ||
		!strings.HasPrefix(entries[0].Identity, "token:") || strings.Contains(e.audit.String(), "s3cret-s3cret-s3cret") {
		t.Errorf("audit log:\n%s", e.audit.String())
	}
}

func TestTheAdminAPIRefusesToListenBeyondLoopbackWithoutAToken(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true, "0.0.0.0:9090": false, ":9090": false, "10.0.0.5:9090": false} {
		err := admin.CheckListen(addr, "")
		if (err == nil) != ok {
			t.Errorf("CheckListen(%s, no token) = %v", addr, err)
		}
		if err := admin.CheckListen(addr, "a-random-token-of-26-chars"); err != nil {
			t.Errorf("CheckListen(%s, token) = %v", addr, err)
		}
	}
}

// A one-character token was accepted; a token must be long enough not to
// be guessed at the rate failed attempts are allowed.
func TestShortTokensAreRefused(t *testing.T) {
	for _, tok := range []string{"t", "s3cret", "fifteen-chars!!"} {
		err := admin.CheckListen("0.0.0.0:9090", tok)
		if want := fmt.Sprintf("the token has %d characters: use at least 16, random (openssl rand -hex 16 prints 32)", len(tok)); err == nil || err.Error() != want {
			t.Errorf("CheckListen with token %q: %v, want %q", tok, err, want)
		}
	}
	if err := admin.CheckListen("0.0.0.0:9090", "sixteen-chars!!!"); err != nil {
		t.Errorf("a 16-character token: %v", err)
	}
}

func TestTheClientRoundTripsRulesAndErrors(t *testing.T) {
	e := setup(t, "tok-tok-tok-tok-tok")
	c, err := admin.NewClient(e.srv.URL, "tok-tok-tok-tok-tok")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rule, _ := spec.ParseFaultRule("r", []byte(`{"name": "slow", "match": {"cuj": "read"}, "delay": "p50=10ms p99=900ms", "rate": "1%", "ttl": "5m"}`), "")
	st, err := c.PutFault(ctx, rule)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "active" || st.Rule.Delay.String() != "p50=10ms p99=900ms" || st.Rule.Rate != spec.NewRatio(1, 100) {
		t.Errorf("put returned %+v", st)
	}
	list, err := c.ListFaults(ctx)
	if err != nil || len(list) != 1 || list[0].Rule.Name != "slow" {
		t.Errorf("list: %v %v", list, err)
	}
	if _, err := c.GetFault(ctx, "nope"); slolab.KindOf(err) != slolab.NotFound || err.Error() != `no fault rule "nope"` {
		t.Errorf("get missing: %v (kind %v)", err, slolab.KindOf(err))
	}
	bad := *rule
	bad.Match.CUJ = "nope"
	if _, err := c.PutFault(ctx, &bad); slolab.KindOf(err) != slolab.Invalid {
		t.Errorf("put invalid: %v", err)
	}
	if _, err := c.RenewFault(ctx, "slow", 30*time.Minute); err != nil {
		t.Error(err)
	}
	if _, err := c.RenewFault(ctx, "slow", 3*time.Hour); slolab.KindOf(err) != slolab.Invalid {
		t.Errorf("renew beyond the cap: %v", err)
	}
	cujs, err := c.CUJs(ctx)
	if err != nil || cujs.Service != "chat" || len(cujs.CUJs) != 7 || cujs.CUJs[3].Name != "read" || len(cujs.CUJs[3].Faults) != 1 || cujs.CUJs[6].Name != "_other" {
		t.Errorf("cujs: %+v %v", cujs, err)
	}
	if _, err := c.SetGrouping(ctx, &spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(1, 10), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if cujs, _ := c.CUJs(ctx); len(cujs.CUJs[0].Groups) != 2 {
		t.Errorf("no per-group SLIs while a grouping is active: %+v", cujs.CUJs[0])
	}
	if _, err := c.DeleteFault(ctx, "slow"); err != nil {
		t.Error(err)
	}
	unreachable, _ := admin.NewClient("http://127.0.0.1:1", "")
	if _, err := unreachable.ListFaults(ctx); slolab.KindOf(err) != slolab.Unavailable {
		t.Errorf("unreachable: %v", err)
	}
	entries, err := c.Audit(ctx, 10)
	if err != nil || len(entries) != 4 {
		t.Errorf("audit: %d entries, %v", len(entries), err)
	}
}

func TestUnknownEndpointsAnswerJSON(t *testing.T) {
	e := setup(t, "")
	code, body := call(t, "GET", e.srv.URL+"/api/v1/nope", "", "")
	if code != 404 || !strings.Contains(body, `"error": "no such endpoint: GET /api/v1/nope"`) {
		t.Errorf("got %d %s", code, body)
	}
}
