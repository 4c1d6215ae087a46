package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/errclass"
	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// Two bodies that differ only in ids are one class, a third is a second;
// a class the baseline saw is not new; an injected one is kept apart.
// 'slolab errors' lists the two with their exact counts and first
// sightings, and posts the summary to a webhook.
func TestErrorsListsNewClassesWithCountsAndFirstSightings(t *testing.T) {
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		switch r.URL.Path {
		case "/update":
			fmt.Fprintf(w, `{"error":"user %s not found","request":"%s"}`, r.URL.Query().Get("id"), r.URL.Query().Get("req"))
		case "/messages":
			fmt.Fprint(w, `{"error":{"code":"QUOTA","message":"quota exceeded for room 'general'"}}`)
		default:
			fmt.Fprint(w, `{"error":"session store down"}`)
		}
	}))
	defer app.Close()
	up, _ := url.Parse(app.URL)
	db := filepath.Join(t.TempDir(), "slolab.db")

	// The baseline: the login failure was seen two days ago.
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: db})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	sig := "error=session store down"
	known := errclass.Class{ID: errclass.ID("login", "POST /login", 500, errclass.KindStatus, sig, false), CUJ: "login", Route: "POST /login",
		Status: 500, Kind: errclass.KindStatus, Signature: sig, FirstSeen: old, LastSeen: old, Count: 7}
	if err := st.AddErrorClasses(context.Background(), []errclass.Class{known}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", store: db, errorClasses: 100}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	var sent []time.Time // before each request
	post := func(path string) {
		sent = append(sent, time.Now())
		resp, err := http.Post(stack.proxyURL()+path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	post("/update?id=123&req=7f0c1e2a-9b3d-4c5e-8f6a-0b1c2d3e4f50")
	post("/update?id=456&req=0b1c2d3e-9b3d-4c5e-8f6a-7f0c1e2a4f50")
	post("/messages")
	post("/login")
	put := `{"name": "sim", "match": {"cuj": "read"}, "status": 503}`
	rule, err := spec.ParseFaultRule("rule", []byte(put), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := stack.faults.Put(rule); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp, err := http.Get(stack.proxyURL() + "/messages/general")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	done := time.Now()
	stop()
	wg.Wait()

	code, out, errOut := runCLI(t, nil, "errors", "--store", db, "-o", "json")
	if code != 0 {
		t.Fatalf("errors: exit %d: %s", code, errOut)
	}
	var ne rpt.NewErrors
	if err := json.Unmarshal([]byte(out), &ne); err != nil {
		t.Fatal(err)
	}
	if len(ne.Classes) != 2 {
		t.Fatalf("new classes = %+v, want 2", ne.Classes)
	}
	first, second := ne.Classes[0], ne.Classes[1]
	if first.CUJ != "update" || first.Route != "POST /update" || first.Count != 2 || first.Signature != "error=user <n> not found" ||
		first.FirstSeen.Before(sent[0]) || !first.FirstSeen.Before(sent[1]) || first.LastSeen.Before(sent[1]) ||
		!strings.Contains(first.Example.Body, "user 123 not found") || first.Example.Path != "/update" {
		t.Errorf("first class = %+v", first)
	}
	if second.CUJ != "send" || second.Count != 1 || second.Signature != "error.code=QUOTA error.message=quota exceeded for room <q>" ||
		second.FirstSeen.Before(sent[2]) || !second.FirstSeen.Before(sent[3]) {
		t.Errorf("second class = %+v", second)
	}
	if len(ne.Injected) != 1 || ne.Injected[0].Count != 3 || ne.Injected[0].Example.Fault != "sim" || ne.Injected[0].FirstSeen.After(done) {
		t.Errorf("injected = %+v, want the one class of fault sim, 3 requests", ne.Injected)
	}
	if len(ne.Impact) != 2 || ne.Impact[0].CUJ != "send" || ne.Impact[0].Bad != 1 || ne.Impact[0].NewBad != 1 || ne.Impact[0].Budget == nil ||
		ne.Impact[1].CUJ != "update" || ne.Impact[1].Bad != 2 || *first.SharePercent != 100 {
		t.Errorf("impact = %+v", ne.Impact)
	}

	// The table names both with their counts and first sightings.
	code, out, errOut = runCLI(t, nil, "errors", "--store", db, "--since", "1d", "--baseline", "7d")
	if code != 0 {
		t.Fatalf("errors: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"chat: 2 new error classes in the last 1d (not seen in the 1w before)",
		"update  POST /update    500     2      100%   " + first.FirstSeen.UTC().Format("2006-01-02 15:04:05 UTC"),
		"send    POST /messages  500     1      100%   " + second.FirstSeen.UTC().Format("2006-01-02 15:04:05 UTC"),
		"Injected by fault rules, kept apart: 1 new class, 3 requests",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// --webhook posts the summary, Slack-compatibly.
	var got struct{ Text string }
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
	}))
	defer hook.Close()
	if code, _, errOut := runCLI(t, nil, "errors", "--store", db, "--webhook", hook.URL); code != 0 {
		t.Fatalf("errors --webhook: exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(got.Text, "chat: 2 new error classes in the last 1d") || !strings.Contains(got.Text, "• update `POST /update` 500 ×2 since") {
		t.Errorf("webhook text = %q", got.Text)
	}

	// The review report ends with them.
	code, out, errOut = runCLI(t, nil, "slo", "report", "--store", db, "--window", "7d")
	if code != 0 {
		t.Fatalf("slo report: exit %d: %s", code, errOut)
	}
	if want := "## New errors\n\n3 error classes appeared in the last 1w that the 1w before never saw:\n\n" +
		"- **login** `POST /login` 500, 8 requests since " + known.FirstSeen.UTC().Format("2006-01-02 15:04:05 UTC") + ": `error=session store down`\n" +
		"- **update** `POST /update` 500, 2 requests since " + first.FirstSeen.UTC().Format("2006-01-02 15:04:05 UTC") + ": `error=user <n> not found`\n"; !strings.Contains(out, want) {
		t.Errorf("the review lacks %q:\n%s", want, out)
	}

	// So do its page and its JSON.
	code, out, errOut = runCLI(t, nil, "slo", "report", "--store", db, "--window", "7d", "--format", "html")
	if code != 0 {
		t.Fatalf("slo report --format html: exit %d: %s", code, errOut)
	}
	if want := "<tr><td>update</td><td><code>POST /update</code></td><td>500</td><td class=\"n\">2</td><td>" +
		first.FirstSeen.UTC().Format("2006-01-02 15:04:05 UTC") + "</td><td><code>error=user &lt;n&gt; not found</code></td>"; !strings.Contains(out, "<h2>New errors</h2>") || !strings.Contains(out, want) {
		t.Errorf("the review page lacks its new errors (%q):\n%s", want, out)
	}
	code, out, errOut = runCLI(t, nil, "slo", "report", "--store", db, "--window", "7d", "--format", "json")
	if code != 0 {
		t.Fatalf("slo report --format json: exit %d: %s", code, errOut)
	}
	var review struct {
		Service   string        `json:"service"`
		NewErrors rpt.NewErrors `json:"newErrors"`
	}
	if err := json.Unmarshal([]byte(out), &review); err != nil {
		t.Fatal(err)
	}
	if review.Service != "chat" || len(review.NewErrors.Classes) != 3 || review.NewErrors.Classes[1].ID != first.ID || review.NewErrors.Classes[1].Count != 2 {
		t.Errorf("the review's JSON: service %q, new errors %+v", review.Service, review.NewErrors.Classes)
	}

	if code, _, errOut := runCLI(t, nil, "errors", "--store", db, "--since", "0"); code != ExitUsage || !strings.Contains(errOut, "--since must be positive") {
		t.Errorf("--since 0: exit %d %q", code, errOut)
	}
}
