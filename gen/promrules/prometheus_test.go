package promrules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

// TestARealPrometheusFiresThePageAlert loads the generated rules into a real
// Prometheus, with windows scaled down 60 times (the test-only TimeScale:
// the 1h/5m page becomes 1m/5s), scrapes a loopback exporter whose CUJ
// fails 10% of 100 requests a second, and waits for the page alert. The CUJ
// "healthy" serves without errors and must not alert.
func TestARealPrometheusFiresThePageAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Prometheus for about 15 seconds")
	}
	prometheus := testtool.Path(t, "prometheus")
	svc, err := spec.Parse("shop.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Service
metadata: {name: shop}
spec:
  cujs:
    - {name: spike, owner: t, routes: ["GET /spike"], availability: {objective: 99.9%}}
    - {name: healthy, owner: t, routes: ["GET /healthy"], availability: {objective: 99.9%}}
`))
	if err != nil {
		t.Fatal(err)
	}
	one, _ := svc.Service()
	rules := generate(t, one, promrules.Options{TimeScale: 60})

	// The exporter: counters that grow with every scrape, 100 requests
	// per scrape per CUJ, 10 of spike's answered 500.
	var scrapes atomic.Int64
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		fmt.Fprintf(w, "# TYPE slolab_requests_total counter\n")
		fmt.Fprintf(w, "slolab_requests_total{cuj=\"spike\",route=\"GET /spike\",method=\"GET\",code=\"200\",group=\"none\"} %d\n", 90*n)
		fmt.Fprintf(w, "slolab_requests_total{cuj=\"spike\",route=\"GET /spike\",method=\"GET\",code=\"500\",group=\"none\"} %d\n", 10*n)
		fmt.Fprintf(w, "slolab_requests_total{cuj=\"healthy\",route=\"GET /healthy\",method=\"GET\",code=\"200\",group=\"none\"} %d\n", 100*n)
	}))
	defer exporter.Close()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: slolab
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(exporter.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prometheus,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	type alert struct {
		Labels map[string]string
		State  string
	}
	var last []alert
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/api/v1/alerts")
		if err != nil {
			continue
		}
		var body struct {
			Data struct{ Alerts []alert }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		last = body.Data.Alerts
		for _, a := range last {
			if a.Labels["cuj"] == "healthy" {
				t.Fatalf("the healthy CUJ alerted: %v", a.Labels)
			}
			if a.State == "firing" && a.Labels["cuj"] == "spike" && a.Labels["severity"] == "page" &&
				a.Labels["long_window"] == "1m" && a.Labels["short_window"] == "5s" {
				t.Logf("the 1h/5m page (scaled to 1m/5s) fired after %d scrapes", scrapes.Load())
				return
			}
		}
	}
	t.Fatalf("no page alert within 90s; alerts: %+v\nprometheus:\n%s", last, logs.String())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
