package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
)

// TestPrometheusFiresTheGeneratedPageAlertOnTheProxysMetrics is issue 5's
// end-to-end check, all through the real binary: `slolab gen prometheus`
// writes the rules (windows scaled 60 times by the test-only
// --test-time-scale, so the 1h/5m page becomes 1m/5s), a real Prometheus
// loads them and scrapes a running `slolab proxy`, `slolab simulate update
// --availability 90%` fails exactly 10% of the update CUJ's requests while
// traffic flows, and the page alert for update fires. The read CUJ, which
// gets the same traffic without faults, must not alert.
func TestPrometheusFiresTheGeneratedPageAlertOnTheProxysMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the proxy and a real Prometheus for about 20 seconds")
	}
	prometheus := testtool.Path(t, "prometheus")
	bin := build(t)
	dir := t.TempDir()

	rules, err := exec.Command(bin, "gen", "prometheus", "-f", "../../examples/chat.yaml", "--test-time-scale", "60").Output()
	if err != nil {
		t.Fatalf("gen prometheus: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	proxyCmd := exec.Command(bin, "proxy", "--spec", "../../examples/chat.yaml", "--upstream", app.URL,
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--audit-log", "-", "--store", filepath.Join(dir, "slolab.db"))
	stderr, _ := proxyCmd.StderrPipe()
	if err := proxyCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = proxyCmd.Process.Kill()
		_ = proxyCmd.Wait()
	}()
	rd, proxyURL, adminURL := readBanner(t, stderr)
	go func() { _, _ = io.Copy(io.Discard, rd) }()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// simulate holds its rule until Ctrl-C, which it gets when the test ends.
	simulate := exec.CommandContext(ctx, bin, "simulate", "update", "--availability", "90%", "--admin", adminURL, "--spec", "../../examples/chat.yaml")
	simulate.Cancel = func() error { return simulate.Process.Signal(os.Interrupt) }
	simulate.WaitDelay = 10 * time.Second
	var simLog strings.Builder
	simulate.Stdout, simulate.Stderr = &simLog, &simLog
	if err := simulate.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = simulate.Wait() // the context's error: Ctrl-C is how simulate ends
		if code := simulate.ProcessState.ExitCode(); code != 0 || !strings.Contains(simLog.String(), "slolab simulate: removed sim-update") {
			t.Errorf("simulate exited %d without removing its rule:\n%s", code, simLog.String())
		}
	}()

	config := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: slolab
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(adminURL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddr(t)
	promCmd := exec.CommandContext(ctx, prometheus, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)
	var promLog strings.Builder
	promCmd.Stdout, promCmd.Stderr = &promLog, &promLog
	if err := promCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = promCmd.Process.Kill()
		_ = promCmd.Wait()
	}()

	// Steady traffic, 100 requests a second to each of two CUJs, until the
	// test ends (bounded by ctx).
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, req := range []struct{ method, path string }{{"POST", "/update"}, {"GET", "/messages"}} {
				r, _ := http.NewRequestWithContext(ctx, req.method, proxyURL+req.path, nil)
				if resp, err := http.DefaultClient.Do(r); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	type alert struct {
		Labels map[string]string
		State  string
	}
	var last []alert
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get("http://" + promAddr + "/api/v1/alerts")
		if err != nil {
			continue
		}
		var body struct{ Data struct{ Alerts []alert } }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		last = body.Data.Alerts
		for _, a := range last {
			if a.Labels["cuj"] == "read" {
				t.Fatalf("the read CUJ, which had no faults, alerted: %v", a.Labels)
			}
			if a.State == "firing" && a.Labels["cuj"] == "update" && a.Labels["slo"] == "availability" &&
				a.Labels["severity"] == "page" && a.Labels["long_window"] == "1m" && a.Labels["short_window"] == "5s" {
				return
			}
		}
	}
	t.Fatalf("no page alert for update within 90s; alerts: %+v\nsimulate:\n%s\nprometheus:\n%s", last, simLog.String(), promLog.String())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
