package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

func TestTheSLIEndpointAnswersAnyWindowPerGroup(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 17, 12, 0, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes, Now: clock})
	rec := sli.New(sli.Config{Service: svc, Routes: routes, Now: clock})
	update := routes.Route("update", "POST /update")
	observe := func(g match.Group, code int, latency time.Duration, n int) {
		for range n {
			rec.Observe(sli.Observation{Route: update, Group: g, Method: "POST", Code: code, Latency: latency})
		}
	}
	observe(match.GroupExperiment, 500, 20*time.Millisecond, 3)
	observe(match.GroupExperiment, 200, 1500*time.Millisecond, 2)
	observe(match.GroupControl, 200, 20*time.Millisecond, 45)
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: faults, Recorder: rec, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := admin.NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}

	got, err := c.SLI(context.Background(), "update", "experiment", "", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got.CUJ != "update" || got.Group != "experiment" || got.Window != spec.Duration(2*time.Minute) || got.Span != spec.Duration(5*time.Second) ||
		got.Total != 5 || got.Bad != 3 || got.Slow != 2 || len(got.Hist) != len(got.Bounds)+1 {
		t.Errorf("experiment group = %+v", got)
	}
	all, err := c.SLI(context.Background(), "update", "", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if all.Group != "all" || all.Total != 50 || all.Bad != 3 || all.Slow != 2 {
		t.Errorf("all = %+v", all)
	}

	// Since 12:00:00 (5s ago), the start of the live interval, the window is
	// the live interval alone; since 11:59:40 it reaches back two more.
	since, err := c.SLISince(context.Background(), "update", "all", "", now.Add(-5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if since.Window != spec.Duration(10*time.Second) || since.Total != 50 {
		t.Errorf("since 5s ago = %+v", since)
	}
	if since, _ := c.SLISince(context.Background(), "update", "all", "", now.Add(-25*time.Second)); since.Window != spec.Duration(30*time.Second) {
		t.Errorf("since 25s ago: window %s, want 30s", since.Window)
	}

	bad := []struct {
		query string
		code  int
		want  string
	}{
		{"", 400, "cuj: required, e.g. /api/v1/sli?cuj=update&window=5m"},
		{"cuj=checkout", 404, `service chat has no CUJ "checkout" (it has login, send, update, read, upload, task and _other)`},
		{"cuj=update&window=7h", 400, "window: must be between 1s and 6h (what the proxy keeps), got 7h"},
		{"cuj=update&window=soon", 400, `window: want a duration such as 250ms, 5m or 30d, got "soon"`},
		{"cuj=update&group=canary", 400, `group: want all, experiment, control or none, got "canary"`},
		{"cuj=update&window=1m&since=2026-11-17T12:00:00Z", 400, "give window or since, not both"},
		{"cuj=update&since=yesterday", 400, `since: want an RFC 3339 time such as 2026-11-17T12:00:00Z, got "yesterday"`},
	}
	for _, tt := range bad {
		code, body := call(t, "GET", srv.URL+"/api/v1/sli?"+tt.query, "", "")
		var eb struct{ Error string }
		json.Unmarshal([]byte(body), &eb)
		if code != tt.code || eb.Error != tt.want {
			t.Errorf("GET /api/v1/sli?%s = %d %s, want %d %q", tt.query, code, strings.TrimSpace(body), tt.code, tt.want)
		}
	}
}
