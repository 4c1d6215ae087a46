package web

import (
	"net/http"
	"strings"
	"testing"
)

const jsonType = "application/json"

// A page that rebinds its DNS name to 127.0.0.1 sends its own name in
// Host: it could read the state (the rules, the audit log) and plan changes.
func TestARebindingPageCannotUseTheDashboard(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	evil := map[string]string{"Host": "evil.example:8070", "Content-Type": jsonType}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/state", ""},
		{"GET", "/api/series?cuj=read", ""},
		{"POST", "/api/plan", `{"cuj":"read","state":"objective"}`},
		{"POST", "/api/simulations", `{"cuj":"read","state":"objective"}`},
	} {
		if code, body := f.do(r.method, r.path, r.body, evil); code != http.StatusForbidden {
			t.Errorf("%s %s with Host evil.example: %d %s, want 403", r.method, r.path, code, body)
		}
	}
	if len(f.faults.List()) != 0 {
		t.Error("the rebinding page started a simulation")
	}
}

// With a token, the dashboard's API needs it for reads too (the page and
// its files load, and ask for it).
func TestTheDashboardsReadsNeedTheTokenWhenOneIsSet(t *testing.T) {
	f := newFixture(t, "s3cret-s3cret-s3cret")
	f.poll()
	for _, path := range []string{"/api/state", "/api/series?cuj=read", "/api/experiments"} {
		if code, body := f.do("GET", path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %s, want 401", path, code, body)
		}
		if code, body := f.do("GET", path, "", map[string]string{"Authorization": "Bearer s3cret-s3cret-s3cret"}); code != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/", "/static/app.js", "/healthz"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without the token: %d, want the page", path, resp.StatusCode)
		}
	}
}

// One JSON value per body, of type JSON: what follows it, and form or text
// bodies, are refused.
func TestTheDashboardReadsOneJSONValue(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	for _, r := range []struct{ path, body, ctype string }{
		{"/api/plan", `{"cuj":"read","state":"objective"}=`, jsonType},
		{"/api/plan", `{"cuj":"read","state":"objective"} {"cuj":"update"}`, jsonType},
		{"/api/simulations", `{"cuj":"read","state":"objective"}x`, jsonType},
		{"/api/simulations", `{"cuj":"read","state":"objective"}`, "text/plain"},
		{"/api/simulations", `{"cuj":"read","state":"objective"}`, "application/x-www-form-urlencoded"},
	} {
		code, body := f.do("POST", r.path, r.body, map[string]string{"Content-Type": r.ctype, "X-Slolab-Dashboard": "1"})
		if code != http.StatusBadRequest {
			t.Errorf("POST %s %s (%s): %d %s, want 400", r.path, r.body, r.ctype, code, body)
		}
	}
	if len(f.faults.List()) != 0 {
		t.Error("a refused body started a simulation")
	}
}

// A page of another origin cannot start or stop anything, whatever
// headers it manages to send.
func TestTheDashboardRefusesCrossOriginChanges(t *testing.T) {
	f := newFixture(t, "")
	f.poll()
	h := map[string]string{"Content-Type": jsonType, "X-Slolab-Dashboard": "1", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
	if code, body := f.do("POST", "/api/simulations", `{"cuj":"read","state":"objective"}`, h); code != http.StatusForbidden || !strings.Contains(body, "another web origin") {
		t.Errorf("cross-origin POST: %d %s, want 403", code, body)
	}
	if len(f.faults.List()) != 0 {
		t.Error("a cross-origin page started a simulation")
	}
}
