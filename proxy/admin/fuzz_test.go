package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

var fuzzMethods = []string{"GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"}

// state is what a request may change: the rules with their leases, the
// grouping and the canary's weight.
func state(reg *fault.Registry, sp *split.Split) string {
	var b strings.Builder
	for _, st := range reg.List() {
		fmt.Fprintf(&b, "%s %s %d|", st.Rule.Name, st.State, st.ExpiresAt.UnixNano())
	}
	for _, g := range reg.Groupings() {
		fmt.Fprintf(&b, "grouping %s %s %d|", g.Grouping.Run, g.Grouping.By, g.ExpiresAt.UnixNano())
	}
	return b.String() + "weight " + sp.Weight().String()
}

// FuzzAdminAPI sends the admin API any method, path, Host, content type,
// body and token. Whatever they are, it answers JSON (on /api/) with a
// status that is the client's or a success, never 500; a request it
// refuses changes nothing; and every rule it holds has a valid name.
func FuzzAdminAPI(f *testing.F) {
	rule := []byte(`{"match": {"cuj": "update"}, "status": 503, "rate": "10%", "ttl": "30s"}`)
	for _, s := range []struct {
		method      byte
		path, host  string
		ctype       string
		body        []byte
		sendToken   bool
		rightHeader bool
	}{
		{1, "/api/v1/faults/a", "127.0.0.1:9090", "application/json", rule, true, true},
		{1, "/api/v1/faults/evil", "attacker.example:9090", "application/json", rule, false, true},
		{2, "/api/v1/faults/a/renew", "127.0.0.1:9090", "text/plain", []byte(`{"ttl":"23h"}=`), true, true},
		{2, "/api/v1/faults/a/renew", "localhost", "application/json", []byte(`{"ttl":"5m"} x`), true, true},
		{1, "/api/v1/faults/a%00b", "127.0.0.1", "application/json", rule, true, true},
		{1, "/api/v1/faults/" + strings.Repeat("a", 300), "127.0.0.1", "application/yaml", []byte("abort: true\n"), true, true},
		{1, "/api/v1/grouping", "127.0.0.1", "application/json", []byte(`{"by": "header:X-User", "experiment": "10%"}`), true, true},
		{1, "/api/v1/canary", "127.0.0.1", "application/json", []byte(`{"weight": "0x10%"}`), true, true},
		{1, "/api/v1/faults/bomb", "127.0.0.1", "application/yaml", []byte("abort: true\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"), true, true},
		{3, "/api/v1/faults/a", "127.0.0.1", "", nil, false, false},
		{0, "/api/v1/audit?limit=-1", "127.0.0.1", "", nil, true, true},
		{0, "/api/v1/sli?cuj=read&window=1e9h", "127.0.0.1", "", nil, true, true},
		{0, "/metrics", "127.0.0.1", "", nil, true, false},
	} {
		f.Add(s.method, s.path, s.host, s.ctype, s.body, s.sendToken, s.rightHeader)
	}
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		f.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, MaxTTL: time.Hour})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	st, _ := url.Parse("http://127.0.0.1:3001")
	ca, _ := url.Parse("http://127.0.0.1:3002")
	sp, _ := split.New(split.Config{Stable: st, Canary: ca, CUJs: len(routes.CUJs())})
	const token = "fuzz-token-fuzz-token"
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec, Split: sp, Token: token,
		Listen: "127.0.0.1:9090", Audit: admin.NewAudit(nil, 10), Metrics: http.NotFoundHandler()})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, m byte, path, host, ctype string, body []byte, sendToken, rightToken bool) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t") || strings.ContainsAny(host, " \r\n\t/\\@") {
			return // the server refuses these before any handler
		}
		req := httptest.NewRequest(method, "http://127.0.0.1:9090"+u.RequestURI(), bytes.NewReader(body))
		req.Host = host
		if ctype != "" && !strings.ContainsAny(ctype, "\r\n") {
			req.Header.Set("Content-Type", ctype)
		}
		if sendToken {
			tok := token
			if !rightToken {
				tok = "not-the-token"
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		before := state(faults, sp)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		if w.Code >= 500 {
			t.Errorf("%s %q Host %q: %d %s", method, path, host, w.Code, w.Body)
		}
		if strings.HasPrefix(u.Path, "/api/") && method != "HEAD" && !json.Valid(w.Body.Bytes()) {
			t.Errorf("%s %q: %d, body is not JSON: %q", method, path, w.Code, w.Body)
		}
		if w.Code >= 400 {
			if after := state(faults, sp); after != before {
				t.Errorf("%s %q refused with %d changed the state:\n%s\n%s", method, path, w.Code, before, after)
			}
		}
		for _, st := range faults.List() {
			if !spec.ValidName(st.Rule.Name) {
				t.Errorf("%s %q made a rule named %q", method, path, st.Rule.Name)
			}
		}
	})
}
