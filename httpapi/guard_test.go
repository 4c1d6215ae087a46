package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/httpapi"
)

const token = "a-token-of-twenty-six-chars"

// serve answers ok behind a guard.
func guarded(t *testing.T, cfg httpapi.Config) http.Handler {
	t.Helper()
	g, err := httpapi.NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "%v", err))
			return
		}
		io.WriteString(w, "ok")
	}))
}

// request builds a request that arrived at local, from remote.
func request(method, target, host, local, remote string, header map[string]string, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body == "" {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	r.Host, r.RemoteAddr = host, remote
	if local != "" {
		addr, _ := net.ResolveTCPAddr("tcp", local)
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

func status(h http.Handler, r *http.Request) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestTheHostMustNameTheListenerOrAnAllowedName(t *testing.T) {
	tests := []struct {
		name, listen, host, local string
		allow                     []string
		ok                        bool
	}{
		{"the loopback IP it listens on", "127.0.0.1:9090", "127.0.0.1:9090", "127.0.0.1:9090", nil, true},
		{"localhost on loopback", "127.0.0.1:9090", "localhost:9090", "127.0.0.1:9090", nil, true},
		{"localhost in capitals with a trailing dot", "127.0.0.1:9090", "LocalHost.:9090", "127.0.0.1:9090", nil, true},
		{"another port, as port forwarding makes it", "127.0.0.1:9090", "localhost:19090", "127.0.0.1:9090", nil, true},
		{"a rebound DNS name", "127.0.0.1:9090", "attacker.example:9090", "127.0.0.1:9090", nil, false},
		{"a subdomain of localhost", "127.0.0.1:9090", "evil.localhost:9090", "127.0.0.1:9090", nil, false},
		{"no Host", "127.0.0.1:9090", "", "127.0.0.1:9090", nil, false},
		{"IPv6 loopback", "[::1]:9090", "[::1]:9090", "[::1]:9090", nil, true},
		{"any IP when listening on every address", ":9090", "10.1.2.3:9090", "10.0.0.7:9090", nil, true},
		{"any IP when listening on 0.0.0.0", "0.0.0.0:9090", "10.96.0.12", "10.0.0.7:9090", nil, true},
		{"a DNS name when listening on every address", "0.0.0.0:9090", "slolab-admin.monitoring.svc:9090", "10.0.0.7:9090", nil, false},
		{"an allowed DNS name", "0.0.0.0:9090", "slolab-admin.monitoring.svc:9090", "10.0.0.7:9090", []string{"slolab-admin.monitoring.svc"}, true},
		{"any name with *", "0.0.0.0:9090", "anything.example", "10.0.0.7:9090", []string{"*"}, true},
		{"another IP of a specific listener", "10.0.0.7:9090", "10.0.0.8:9090", "10.0.0.7:9090", nil, false},
		{"the IP a request arrived at, unnamed", "", "127.0.0.1:41234", "127.0.0.1:41234", nil, true},
		{"localhost with no listener named, on loopback", "", "localhost:41234", "127.0.0.1:41234", nil, true},
		{"a host name it listens on", "dash.internal:8070", "dash.internal:8070", "10.0.0.7:8070", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := guarded(t, httpapi.Config{Listen: tt.listen, AllowHosts: tt.allow, AllowHostFlag: "--admin-allow-host"})
			code, body := status(h, request("GET", "/api/v1/faults", tt.host, tt.local, "127.0.0.1:5555", nil, ""))
			if ok := code == http.StatusOK; ok != tt.ok {
				t.Errorf("Host %q on %q: %d %s", tt.host, tt.listen, code, body)
			}
			if !tt.ok && (code != http.StatusForbidden || !strings.Contains(body, "allow that name with --admin-allow-host")) {
				t.Errorf("refusal: %d %s", code, body)
			}
		})
	}
}

func TestChangesMustBeJSONOrYAMLFromTheSameOrigin(t *testing.T) {
	h := guarded(t, httpapi.Config{Name: "the admin API", Listen: "127.0.0.1:9090"})
	tests := []struct {
		name, method string
		header       map[string]string
		body         string
		want         int
	}{
		{"a JSON change from a program", "PUT", map[string]string{"Content-Type": "application/json; charset=utf-8"}, `{}`, 200},
		{"a YAML change from a program", "PUT", map[string]string{"Content-Type": "application/yaml"}, `a: 1`, 200},
		{"a change without a body", "DELETE", nil, "", 200},
		{"a change from the page itself", "POST", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:9090"}, `{}`, 200},
		{"a text/plain form", "POST", map[string]string{"Content-Type": "text/plain"}, `{"ttl":"23h"}=`, 400},
		{"a urlencoded form", "POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `a=b`, 400},
		{"a multipart form", "POST", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "--x--", 400},
		{"a body without a type", "POST", nil, `{}`, 400},
		{"an unparsable type", "POST", map[string]string{"Content-Type": "application/json; ="}, `{}`, 400},
		{"a cross-site page", "POST", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, `{}`, 403},
		{"another origin by Origin alone", "PUT", map[string]string{"Content-Type": "application/json", "Origin": "http://attacker.example"}, `{}`, 403},
		{"another port of the same machine", "DELETE", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3000"}, "", 403},
		{"a cross-site read", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := status(h, request(tt.method, "/api/v1/faults/x", "127.0.0.1:9090", "127.0.0.1:9090", "127.0.0.1:5555", tt.header, tt.body))
			if code != tt.want {
				t.Errorf("%d %s, want %d", code, body, tt.want)
			}
		})
	}
}

func TestBodiesAreBounded(t *testing.T) {
	h := guarded(t, httpapi.Config{Listen: "127.0.0.1:9090", MaxBody: 10})
	code, body := status(h, request("PUT", "/x", "127.0.0.1", "", "127.0.0.1:1", map[string]string{"Content-Type": "application/json"}, `{"a": "0123456789"}`))
	if code != http.StatusBadRequest || !strings.Contains(body, "request body too large") {
		t.Errorf("%d %s", code, body)
	}
}

func TestTheTokenGuardsEveryPathButTheOpenOnes(t *testing.T) {
	h := guarded(t, httpapi.Config{Name: "the dashboard", Listen: "127.0.0.1:8070", Token: token, TokenHint: "enter the token", Open: []string{"/{$}", "/static/", "/healthz"}})
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/", "", 200},
		{"/static/app.js", "", 200},
		{"/healthz", "", 200},
		{"/healthz/x", "", 401},
		{"/api/state", "", 401},
		{"/api/state", "Bearer " + token, 200},
		{"/api/state", "Bearer wrong", 401},
		{"/api/state", "Basic " + token, 401},
		{"/staticx", "", 401},
	}
	for _, tt := range tests {
		code, body := status(h, request("GET", tt.path, "127.0.0.1:8070", "", "127.0.0.1:1", map[string]string{"Authorization": tt.auth}, ""))
		if code != tt.want {
			t.Errorf("GET %s with %q: %d %s, want %d", tt.path, tt.auth, code, body, tt.want)
		}
	}
	_, body := status(h, request("GET", "/api/state", "127.0.0.1:8070", "", "127.0.0.1:1", nil, ""))
	if want := `"error": "the dashboard needs its token and none was sent: enter the token"`; !strings.Contains(body, want) {
		t.Errorf("without a token: %s, want %s", body, want)
	}
	_, body = status(h, request("GET", "/api/state", "127.0.0.1:8070", "", "127.0.0.1:1", map[string]string{"Authorization": "Bearer nope"}, ""))
	if want := `"error": "the token sent is not the dashboard's token: enter the token"`; !strings.Contains(body, want) {
		t.Errorf("with a wrong token: %s, want %s", body, want)
	}
}

func TestShortTokensAndBadNamesAreRefused(t *testing.T) {
	for _, cfg := range []httpapi.Config{
		{Token: "short"},
		{AllowHosts: []string{"http://x.example"}},
		{AllowHosts: []string{"x.example:80"}},
		{Listen: "no-port"},
	} {
		if _, err := httpapi.NewGuard(cfg); err == nil || slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("NewGuard(%+v) = %v, want an Invalid error", cfg, err)
		}
	}
}

// Failed attempts are logged with the client's address and, past a burst,
// refused without being checked, one more per second; other addresses are
// served meanwhile, and the right token works again once the address's
// allowance is back.
func TestWrongTokensAreLoggedAndSlowedPerAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		h := guarded(t, httpapi.Config{Name: "the admin API", Listen: "0.0.0.0:9090", Token: token,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
		try := func(remote, tok string) (int, http.Header) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request("GET", "/api/v1/faults", "10.0.0.7:9090", "", remote, map[string]string{"Authorization": "Bearer " + tok}, ""))
			return w.Code, w.Header()
		}
		for i := range httpapi.FailureBurst {
			if code, _ := try("203.0.113.9:4000", "guess"); code != http.StatusUnauthorized {
				t.Fatalf("wrong token %d: %d, want 401", i+1, code)
			}
		}
		code, hdr := try("203.0.113.9:4001", "guess")
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") != "1" {
			t.Errorf("the attempt after the burst: %d Retry-After %q, want 429 after 1s", code, hdr.Get("Retry-After"))
		}
		// Refused without being checked: the right token is refused too
		// from that address, so guesses cannot go faster than the pace.
		if code, _ := try("203.0.113.9:4002", token); code != http.StatusTooManyRequests {
			t.Errorf("the right token from the refused address: %d, want 429", code)
		}
		// Another address is served as usual.
		if code, _ := try("198.51.100.4:5000", token); code != http.StatusOK {
			t.Errorf("another address with the right token: %d, want 200", code)
		}
		// One more attempt per second.
		time.Sleep(time.Second)
		if code, _ := try("203.0.113.9:4003", "guess"); code != http.StatusUnauthorized {
			t.Errorf("a second later: %d, want one more attempt (401)", code)
		}
		if code, _ := try("203.0.113.9:4004", "guess"); code != http.StatusTooManyRequests {
			t.Errorf("at once again: %d, want 429", code)
		}
		time.Sleep(time.Duration(httpapi.FailureBurst) * time.Second)
		if code, _ := try("203.0.113.9:4005", token); code != http.StatusOK {
			t.Errorf("the right token once the allowance is back: %d, want 200", code)
		}
		out := logs.String()
		if n := strings.Count(out, `level=WARN msg="the admin API: a wrong token was sent" remote=203.0.113.9:`); n != httpapi.FailureBurst+1 {
			t.Errorf("%d wrong tokens logged with the address, want %d:\n%s", n, httpapi.FailureBurst+1, out)
		}
		if !strings.Contains(out, `msg="the admin API: refusing token attempts" remote=203.0.113.9 retryAfter=1s`) {
			t.Errorf("the refusal is not logged:\n%s", out)
		}
	})
}

// An IPv6 client is one /64: it cannot escape the pace by changing the
// low bits of its address.
func TestAnIPv6ClientIsCountedByItsSlash64(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := guarded(t, httpapi.Config{Listen: "[::]:9090", Token: token})
		for i := range httpapi.FailureBurst + 1 {
			w := httptest.NewRecorder()
			remote := fmt.Sprintf("[2001:db8::%x]:4000", i+1)
			h.ServeHTTP(w, request("GET", "/x", "[::1]:9090", "", remote, map[string]string{"Authorization": "Bearer guess"}, ""))
			want := http.StatusUnauthorized
			if i == httpapi.FailureBurst {
				want = http.StatusTooManyRequests
			}
			if w.Code != want {
				t.Errorf("attempt %d from the same /64: %d, want %d", i+1, w.Code, want)
			}
		}
	})
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestOneJSONValuePerBody(t *testing.T) {
	type ttl struct {
		TTL string `json:"ttl"`
	}
	tests := []struct{ body, want string }{
		{`{"ttl": "10m"}`, ""},
		{"{\"ttl\": \"10m\"}\n\t ", ""},
		{`{"ttl":"23h"}=`, `request body: want one JSON value such as {"ttl": "10m"}, got more after its end at byte 13`},
		{`{"ttl":"23h"}{"ttl":"1h"}`, `request body: want one JSON value such as {"ttl": "10m"}, got more after its end at byte 13`},
		{`{"tll":"23h"}`, `request body: want {"ttl": "10m"}: json: unknown field "tll"`},
		{``, `request body: empty; want {"ttl": "10m"}`},
	}
	for _, tt := range tests {
		var v ttl
		err := httpapi.DecodeJSON([]byte(tt.body), &v, `{"ttl": "10m"}`)
		if got := errString(err); got != tt.want {
			t.Errorf("DecodeJSON(%q) = %q, want %q", tt.body, got, tt.want)
		}
		if err != nil && slolab.KindOf(err) != slolab.Invalid {
			t.Errorf("DecodeJSON(%q): kind %v, want invalid", tt.body, slolab.KindOf(err))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestKindsAndStatusesMapBothWays(t *testing.T) {
	for _, k := range []slolab.Kind{slolab.Invalid, slolab.NotFound, slolab.Conflict, slolab.Unauthorized, slolab.Forbidden, slolab.Unavailable, slolab.Internal} {
		st := httpapi.Status(&slolab.Error{Kind: k, Msg: "x"})
		if back := httpapi.KindOf(st); back != k {
			t.Errorf("%v → %d → %v", k, st, back)
		}
	}
	if st := httpapi.Status(errors.New("plain")); st != http.StatusInternalServerError {
		t.Errorf("an unclassified error: %d", st)
	}
}

// A flood of wrong tokens from ever new addresses is remembered in bounded
// memory: beyond 10,000 addresses, new ones share one allowance, while the
// addresses already known keep their own.
func TestAFloodFromManyAddressesIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := guarded(t, httpapi.Config{Listen: "0.0.0.0:9090", Token: token})
		try := func(i int, tok string) int {
			w := httptest.NewRecorder()
			remote := fmt.Sprintf("10.%d.%d.%d:4000", i>>16&255, i>>8&255, i&255)
			h.ServeHTTP(w, request("GET", "/x", "10.0.0.7", "", remote, map[string]string{"Authorization": "Bearer " + tok}, ""))
			return w.Code
		}
		const known = 10_000
		for i := range known {
			try(i, "guess")
		}
		codes := map[int]int{}
		for i := range httpapi.FailureBurst + 5 {
			codes[try(known+i, "guess")]++
		}
		if codes[http.StatusUnauthorized] != httpapi.FailureBurst || codes[http.StatusTooManyRequests] != 5 {
			t.Errorf("new addresses beyond the bound: %v, want %d checked and 5 refused", codes, httpapi.FailureBurst)
		}
		if code := try(7, token); code != http.StatusOK {
			t.Errorf("a known address with the right token: %d", code)
		}
	})
}
