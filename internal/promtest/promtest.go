// Package promtest runs a real Prometheus on loopback for integration
// tests, found like every real tool with testtool.Path (skipped when
// missing, a failure when SLOLAB_REQUIRE_TOOLS=1).
package promtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab/internal/testtool"
)

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs Prometheus with the given configuration and data directory
// until the test ends, waits until it is ready, and returns its URL. Its
// log is shown when the test fails.
func Start(t testing.TB, config, dataDir string) string {
	t.Helper()
	bin := testtool.Path(t, "prometheus")
	cfgPath := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+dataDir,
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=400d", "--log.level=warn")
	logs, err := os.Create(filepath.Join(t.TempDir(), "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	url := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if i == 300 {
			t.Fatalf("prometheus at %s not ready after 30s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
