package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// TestAStoppedProxysStoreIsReadWithItAlone: a proxy writes its store under
// a spec and serves 30 requests; once it has stopped gracefully, 'slo
// status --store' alone (no --spec) judges every CUJ of that spec and counts
// the 30 requests at once, the last, partial minute included: the store
// says the proxy stopped cleanly, so nothing more is coming.
func TestAStoppedProxysStoreIsReadWithItAlone(t *testing.T) {
	svc, err := spec.LoadService(chatSpec)
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	up, _ := url.Parse(app.URL)
	db := filepath.Join(t.TempDir(), "slolab.db")
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", store: db}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	for range 30 {
		resp, err := http.Post(stack.proxyURL()+"/update", "application/json", strings.NewReader(`{"id": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	stop()
	wg.Wait()

	code, out, errOut := runCLI(t, nil, "slo", "status", "--store", db, "-o", "json")
	if code != 0 {
		t.Fatalf("slo status --store alone: exit %d: %s", code, errOut)
	}
	var st slo.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.SLOs) != 12 || st.Service != "chat" {
		t.Fatalf("status of %s with %d SLOs, want chat's 12", st.Service, len(st.SLOs))
	}
	for _, s := range st.SLOs {
		if s.CUJ == "update" && s.Events.Total != 30 {
			t.Errorf("update %s holds %d requests just after the stop, want all 30", s.Kind, s.Events.Total)
		}
	}

	code, _, errOut = runCLI(t, nil, "slo", "status", "--store", db, "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if code != ExitUsage || !strings.Contains(errOut, "is in the future") {
		t.Errorf("--at an hour ahead: exit %d %q, want a usage error saying it is in the future", code, errOut)
	}
}
