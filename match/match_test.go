package match_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

func chat(t testing.TB) *match.Table {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := match.Compile(svc)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestRequestsMapToTheirCUJWithNetHTTPSemantics(t *testing.T) {
	svc, err := spec.Parse("t.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: read, owner: o, routes: ["GET /messages/{id}", "GET /messages/latest"], availability: {objective: 99%}}
    - {name: files, owner: o, routes: ["GET /files/{path...}", "/static/"], availability: {objective: 99%}}
    - {name: admin, owner: o, routes: ["GET admin.example.com/"], availability: {objective: 99%}}
    - {name: root, owner: o, routes: ["GET /{$}"], availability: {objective: 99%}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := match.Compile(svc.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, target, host string
		cuj, pattern         string
	}{
		{"GET", "/messages/42", "", "read", "GET /messages/{id}"},
		{"HEAD", "/messages/42", "", "read", "GET /messages/{id}"}, // GET patterns match HEAD
		{"GET", "/messages/latest", "", "read", "GET /messages/latest"},
		{"POST", "/messages/42", "", "_other", ""}, // net/http would answer 405
		{"GET", "/files/a/b/c.txt", "", "files", "GET /files/{path...}"},
		{"DELETE", "/static/x.css", "", "files", "/static/"},
		{"GET", "/static", "", "_other", ""}, // net/http would redirect to /static/
		{"GET", "/", "admin.example.com", "admin", "GET admin.example.com/"},
		{"GET", "/", "", "root", "GET /{$}"},
		{"GET", "/nothing", "", "_other", ""},
		{"GET", "/messages//42", "", "_other", ""}, // unclean path: net/http redirects
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.host != "" {
			r.Host = tt.host
		}
		got := tbl.Match(r)
		if got.CUJName != tt.cuj || got.Pattern != tt.pattern {
			t.Errorf("%s %s%s → %s %q, want %s %q", tt.method, tt.host, tt.target, got.CUJName, got.Pattern, tt.cuj, tt.pattern)
		}
	}
}

func TestGroupsAreStableAndNearTheirShare(t *testing.T) {
	g := match.NewGrouper(&spec.Grouping{By: "header:X-User-ID", Experiment: spec.NewRatio(1, 10), Salt: "exp-1"})
	in := 0
	const users = 100_000
	for i := range users {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User-ID", fmt.Sprintf("user-%d", i))
		first := g.Group(r, "")
		if again := g.Group(r, ""); again != first {
			t.Fatalf("user-%d moved from %v to %v", i, first, again)
		}
		if first == match.GroupExperiment {
			in++
		}
	}
	// A fair hash puts 10% ± 4σ (σ = sqrt(n·p·(1−p)) ≈ 95) of users in the experiment.
	if in < 10_000-380 || in > 10_000+380 {
		t.Errorf("%d of %d users in the experiment group, want about 10%%", in, users)
	}
	r := httptest.NewRequest("GET", "/", nil)
	if got := g.Group(r, ""); got != match.GroupControl {
		t.Errorf("a client without the header is in %v, want control", got)
	}
}

func TestClientIPTrustsForwardedForOnlyWhenTold(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "10.1.2.3, 127.0.0.1")
	if got := match.ClientIP(r, false); got != "127.0.0.1" {
		t.Errorf("untrusted: %s", got)
	}
	if got := match.ClientIP(r, true); got != "10.1.2.3" {
		t.Errorf("trusted: %s", got)
	}
}

func BenchmarkMatch(b *testing.B) {
	tbl := chat(b)
	reqs := []*http.Request{
		httptest.NewRequest("POST", "/update", nil),
		httptest.NewRequest("GET", "/messages/123", nil),
		httptest.NewRequest("GET", "/files/abc", nil),
		httptest.NewRequest("GET", "/unknown/path", nil),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tbl.Match(reqs[i%len(reqs)])
	}
}

func TestRevisionHeaderValuesMapToCanaryOrStable(t *testing.T) {
	for value, want := range map[string]match.Revision{
		"canary": match.RevisionCanary, " Canary ": match.RevisionCanary, "TRUE": match.RevisionCanary,
		"1": match.RevisionCanary, "yes": match.RevisionCanary, "on": match.RevisionCanary,
		"": match.RevisionStable, "stable": match.RevisionStable, "false": match.RevisionStable,
		"0": match.RevisionStable, "v2": match.RevisionStable, "canaryish": match.RevisionStable,
	} {
		if got := match.RevisionOf(value); got != want {
			t.Errorf("RevisionOf(%q) = %q, want %q", value, got, want)
		}
	}
	for _, r := range []match.Revision{match.RevisionNone, match.RevisionStable, match.RevisionCanary} {
		if got, ok := match.ParseRevision(r.String()); !ok || got != r {
			t.Errorf("ParseRevision(%q) = %v %v", r, got, ok)
		}
	}
	if _, ok := match.ParseRevision("blue"); ok {
		t.Error("ParseRevision accepted blue")
	}
}
