package admin_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// do sends one request to the test server with the headers given, and
// returns the status and body.
func do(t *testing.T, method, url, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const jsonType = "application/json"

var rule = `{"match": {"cuj": "update"}, "status": 503, "ttl": "30s"}`

// A web page whose DNS name the attacker rebinds to 127.0.0.1 reaches the
// loopback admin API with its own name in Host; the API must not obey it.
func TestARebindingPageCannotChangeRules(t *testing.T) {
	e := setup(t, "")
	port := e.srv.URL[strings.LastIndex(e.srv.URL, ":"):]
	code, body := do(t, "PUT", e.srv.URL+"/api/v1/faults/evil", rule, map[string]string{"Host": "attacker.example" + port, "Content-Type": jsonType})
	if code != http.StatusForbidden {
		t.Errorf("PUT with Host attacker.example: %d %s, want 403", code, body)
	}
	if _, err := e.faults.Get("evil"); err == nil {
		t.Error("the rebinding page created a rule")
	}
	// Nor read the rules, the audit log or the CUJs.
	for _, path := range []string{"/api/v1/faults", "/api/v1/audit", "/api/v1/cujs"} {
		if code, _ := do(t, "GET", e.srv.URL+path, "", map[string]string{"Host": "attacker.example" + port}); code != http.StatusForbidden {
			t.Errorf("GET %s with Host attacker.example: %d, want 403", path, code)
		}
	}
	// The address it listens on, and localhost, still work.
	for _, host := range []string{"127.0.0.1" + port, "localhost" + port, "LOCALHOST."} {
		if code, body := do(t, "GET", e.srv.URL+"/api/v1/faults", "", map[string]string{"Host": host}); code != http.StatusOK {
			t.Errorf("GET with Host %s: %d %s", host, code, body)
		}
	}
}

// A cross-site page can post a form without asking (text/plain, no
// preflight); {"ttl":"45m"}= was read as JSON and the trailing "=" ignored.
func TestAFormPostCannotExtendALease(t *testing.T) {
	e := setup(t, "")
	if code, body := call(t, "PUT", e.srv.URL+"/api/v1/faults/short", "", rule); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, body)
	}
	before, _ := e.faults.Get("short")
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain"},
		{"Content-Type": "application/x-www-form-urlencoded"},
		{"Content-Type": "multipart/form-data; boundary=x"},
		{"Content-Type": "text/plain", "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
	} {
		code, body := do(t, "POST", e.srv.URL+"/api/v1/faults/short/renew", `{"ttl":"45m"}=`, h)
		if code < 400 {
			t.Errorf("renew with %v: %d %s, want it refused", h, code, body)
		}
	}
	if after, _ := e.faults.Get("short"); !after.ExpiresAt.Equal(before.ExpiresAt) {
		t.Errorf("the lease moved from %s to %s", before.ExpiresAt, after.ExpiresAt)
	}
}

// Exactly one JSON value per body: anything after it is refused, even with
// the right content type.
func TestBodiesWithTrailingBytesAreRefused(t *testing.T) {
	e := setup(t, "")
	if code, body := call(t, "PUT", e.srv.URL+"/api/v1/faults/short", "", rule); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, body)
	}
	for path, body := range map[string]string{
		"/api/v1/faults/short/renew": `{"ttl":"45m"}=`,
		"/api/v1/faults/other":       `{"match": {"cuj": "update"}, "abort": true}{"abort": true}`,
	} {
		method := "PUT"
		if strings.HasSuffix(path, "/renew") {
			method = "POST"
		}
		code, out := do(t, method, e.srv.URL+path, body, map[string]string{"Content-Type": jsonType})
		if code != http.StatusBadRequest || !strings.Contains(out, "want one JSON value such as ") || !strings.Contains(out, "got more after its end at byte") {
			t.Errorf("%s %s %s: %d %s, want 400 saying what follows the JSON value", method, path, body, code, out)
		}
	}
	// The same bytes are a JSON value and more wherever a YAML parser reads
	// the body: the message speaks of JSON, not of a YAML document start.
	code, out := do(t, "PUT", e.srv.URL+"/api/v1/grouping", `{"cujs": ["update"], "by": "header:X-User-ID", "experiment": "20%", "ttl": "1m"} x`, map[string]string{"Content-Type": jsonType})
	if want := "got more after its end at byte 80"; code != http.StatusBadRequest || !strings.Contains(out, want) {
		t.Errorf("PUT /api/v1/grouping with trailing bytes: %d %s, want 400 saying %q", code, out, want)
	}
	c := setupCanary(t, "", weightSplit(t))
	if code, out := do(t, "PUT", c.srv.URL+"/api/v1/canary", `{"weight": "50%"} x`, map[string]string{"Content-Type": jsonType}); code != http.StatusBadRequest {
		t.Errorf("PUT /api/v1/canary with trailing bytes: %d %s, want 400", code, out)
	}
}

// A page on another origin (even another port of the same machine) cannot
// change rules, whatever its content type.
func TestCrossOriginChangesAreRefused(t *testing.T) {
	e := setup(t, "")
	for _, h := range []map[string]string{
		{"Content-Type": jsonType, "Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"},
		{"Content-Type": jsonType, "Origin": "http://127.0.0.1:3000", "Sec-Fetch-Site": "same-site"},
		{"Content-Type": jsonType, "Origin": "http://attacker.example"},
	} {
		if code, body := do(t, "PUT", e.srv.URL+"/api/v1/faults/x", rule, h); code != http.StatusForbidden {
			t.Errorf("PUT with %v: %d %s, want 403", h, code, body)
		}
		if code, _ := do(t, "DELETE", e.srv.URL+"/api/v1/grouping", "", h); code != http.StatusForbidden {
			t.Errorf("DELETE with %v: %d, want 403", h, code)
		}
	}
	if _, err := e.faults.Get("x"); err == nil {
		t.Error("a cross-origin page created a rule")
	}
}

// With a token set, reads need it too: the rules, the audit log, the CUJs
// and the metrics tell an attacker what to break.
func TestReadsNeedTheTokenWhenOneIsSet(t *testing.T) {
	e := setup(t, "a-token-of-16-chars")
	for _, path := range []string{"/api/v1/faults", "/api/v1/audit", "/api/v1/cujs", "/api/v1/sli?cuj=read&window=1m", "/healthz"} {
		if code, body := call(t, "GET", e.srv.URL+path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %s, want 401", path, code, body)
		}
		if code, body := call(t, "GET", e.srv.URL+path, "a-token-of-16-chars", ""); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", path, code, body)
		}
	}
}

// Names are checked on the server by the rule the CLI uses: NUL, a
// newline, a slash, an escape sequence or 200,000 characters once made
// the list unreadable to fault ls, fault rm --all and the dashboard.
func TestRuleNamesAreCheckedOnTheServer(t *testing.T) {
	e := setup(t, "")
	for _, name := range []string{"a%00b", "a%0Ab", "a%2Fb", "%1B%5B31mred", "Upper", "-dash", strings.Repeat("a", 200_000)} {
		code, body := do(t, "PUT", e.srv.URL+"/api/v1/faults/"+name, rule, map[string]string{"Content-Type": jsonType})
		if code != http.StatusBadRequest || !strings.Contains(body, "not a valid name") {
			t.Errorf("PUT %.40q: %d %.200s, want 400 naming the rule", name, code, body)
		}
	}
	if n := len(e.faults.List()); n != 0 {
		t.Errorf("%d rules were created", n)
	}
}
