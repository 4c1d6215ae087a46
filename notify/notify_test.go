package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/notify"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

var t0 = time.Date(2026, 3, 6, 9, 5, 0, 0, time.UTC)

// transitions are a page firing on update, then resolving 32 minutes later.
func transitions() (fired, resolved slo.Transition) {
	long, short := 15.25, 20.5
	a := slo.AlertState{Severity: "page", Long: spec.Duration(time.Hour), Short: spec.Duration(5 * time.Minute), Factor: "14.4",
		LongBurn: &long, ShortBurn: &short, Firing: true}
	fired = slo.Transition{Key: slo.Key{CUJ: "update", Kind: slo.Availability}, Owner: "messaging-team", Alert: a, Firing: true, At: t0, Since: t0}
	calm, calmer := 13.0, 0.0
	b := a
	b.LongBurn, b.ShortBurn, b.Firing = &calm, &calmer, false
	resolved = slo.Transition{Key: fired.Key, Owner: fired.Owner, Alert: b, Firing: false, At: t0.Add(32 * time.Minute), Since: t0}
	return fired, resolved
}

func TestWebhookPostsSlackCompatibleJSON(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	fired, resolved := transitions()
	wh := &notify.Webhook{URL: srv.URL}
	ctx := context.Background()
	if err := wh.Notify(ctx, notify.Notice{Service: "chat", At: t0, Changes: []slo.Transition{fired}}); err != nil {
		t.Fatal(err)
	}
	if err := wh.Notify(ctx, notify.Notice{Service: "chat", At: resolved.At, Changes: []slo.Transition{resolved}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"text":"[FIRING] chat/update availability SLO: page alert 1h/5m ≥ 14.4. The budget burns 15.2 times as fast as allowed over 1h and 20.5 over 5m. Owner: messaging-team.","status":"firing","service":"chat","cuj":"update","slo":"availability","owner":"messaging-team","severity":"page","windows":"1h/5m","burnRate":"14.4","longBurnRate":15.25,"shortBurnRate":20.5,"firedAt":"2026-03-06T09:05:00Z"}`,
		`{"text":"[RESOLVED] chat/update availability SLO: page alert 1h/5m ≥ 14.4, after 32m. Burn rate now 13.0 over 1h and 0.0 over 5m. Owner: messaging-team.","status":"resolved","service":"chat","cuj":"update","slo":"availability","owner":"messaging-team","severity":"page","windows":"1h/5m","burnRate":"14.4","longBurnRate":13,"shortBurnRate":0,"firedAt":"2026-03-06T09:05:00Z","resolvedAt":"2026-03-06T09:37:00Z"}`,
	}
	if strings.Join(bodies, "\n") != strings.Join(want, "\n") {
		t.Errorf("webhook bodies:\n%s\nwant:\n%s", strings.Join(bodies, "\n"), strings.Join(want, "\n"))
	}
}

func TestWebhookReportsAFailingReceiver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such channel", http.StatusNotFound)
	}))
	defer srv.Close()
	fired, _ := transitions()
	err := (&notify.Webhook{URL: srv.URL}).Notify(context.Background(), notify.Notice{Service: "chat", Changes: []slo.Transition{fired}})
	if err == nil || !strings.HasSuffix(err.Error(), ": 404 Not Found: no such channel") {
		t.Errorf("error %v, want the receiver's 404 and message", err)
	}
}

// amWebhook is what Alertmanager's webhook receiver posts.
type amWebhook struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// TestAlertmanagerRoutesFireAndResolve runs a real Alertmanager whose only
// receiver is a webhook on loopback: a fired page arrives as a firing
// notification with slolab's labels, its resolution as a resolved one.
func TestAlertmanagerRoutesFireAndResolve(t *testing.T) {
	got := make(chan amWebhook, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m amWebhook
		if err := json.NewDecoder(r.Body).Decode(&m); err == nil {
			got <- m
		}
	}))
	defer hook.Close()
	url := testtool.Alertmanager(t, fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, service, cuj]
  group_wait: 100ms
  group_interval: 100ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: true}]
`, hook.URL))

	fired, resolved := transitions()
	now := time.Now().UTC().Truncate(time.Second)
	fired.At, fired.Since = now, now
	am := &notify.Alertmanager{URL: url, GeneratorURL: "http://127.0.0.1:8081/"}
	ctx := context.Background()
	if err := am.Notify(ctx, notify.Notice{Service: "chat", At: now, Changes: []slo.Transition{fired}, Firing: []slo.Transition{fired}}); err != nil {
		t.Fatal(err)
	}
	wait := func(status string) amWebhook {
		t.Helper()
		select {
		case m := <-got:
			if m.Status != status {
				t.Fatalf("alertmanager notified %q, want %q: %+v", m.Status, status, m)
			}
			return m
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s notification from alertmanager within 30s", status)
		}
		return amWebhook{}
	}
	m := wait("firing")
	wantLabels := map[string]string{"alertname": notify.AlertName, "service": "chat", "cuj": "update", "slo": "availability",
		"severity": "page", "long_window": "1h", "short_window": "5m", "burn_rate": "14.4", "owner": "messaging-team"}
	if len(m.Alerts) != 1 || fmt.Sprint(m.Alerts[0].Labels) != fmt.Sprint(wantLabels) {
		t.Errorf("firing alerts %+v, want one with labels %v", m.Alerts, wantLabels)
	}
	if len(m.Alerts) == 1 && !strings.HasPrefix(m.Alerts[0].Annotations["summary"], "[FIRING] chat/update availability SLO") {
		t.Errorf("summary %q", m.Alerts[0].Annotations["summary"])
	}
	// Alertmanager takes a resolution only when its end is not in the future.
	time.Sleep(time.Second)
	resolved.At, resolved.Since = time.Now().UTC(), now
	if err := am.Notify(ctx, notify.Notice{Service: "chat", At: resolved.At, Changes: []slo.Transition{resolved}}); err != nil {
		t.Fatal(err)
	}
	m = wait("resolved")
	if len(m.Alerts) != 1 || m.Alerts[0].Status != "resolved" || m.Alerts[0].Labels["cuj"] != "update" {
		t.Errorf("resolved alerts %+v", m.Alerts)
	}
}
