package main_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/store/sqlite"
)

// build compiles the real binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slolab")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var listening = regexp.MustCompile(`^slolab proxy: (http://\S+) → .*\nslolab proxy: admin API (http://\S+)/api/v1/`)

// readBanner reads the proxy's two start-up lines and returns the reader
// after them, with the proxy's URL and the admin API's.
func readBanner(t *testing.T, stderr io.Reader) (rd *bufio.Reader, proxyURL, adminURL string) {
	t.Helper()
	rd = bufio.NewReader(stderr)
	var head string
	for range 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the proxy's banner: %v (%q)", err, head)
		}
		head += line
	}
	m := listening.FindStringSubmatch(head)
	if m == nil {
		t.Fatalf("banner: %q", head)
	}
	return rd, m[1], m[2]
}

// The real binary proxies, takes a rule through the CLI, and on SIGINT drains,
// removes every rule and exits 0.
func TestProxyEndToEndThroughTheRealBinary(t *testing.T) {
	bin := build(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	defer app.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "proxy", "--spec", "../../examples/chat.yaml", "--upstream", app.URL,
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--audit-log", filepath.Join(dir, "audit.jsonl"),
		"--store", filepath.Join(dir, "slolab.db"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	rd, proxyURL, adminURL := readBanner(t, stderr)
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(rd); rest <- string(b) }()

	add := exec.Command(bin, "fault", "add", "always", "--admin", adminURL, "--cuj", "update", "--status", "503")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("fault add: %v\n%s", err, out)
	}
	// A rule whose lease lapses: the proxy records the lapse in the audit log.
	brief := exec.Command(bin, "fault", "add", "brief", "--admin", adminURL, "--cuj", "read", "--abort", "--ttl", "1s")
	if out, err := brief.CombinedOutput(); err != nil {
		t.Fatalf("fault add: %v\n%s", err, out)
	}
	auditPath := filepath.Join(dir, "audit.jsonl")
	lapsed := func() bool {
		b, _ := os.ReadFile(auditPath)
		return strings.Contains(string(b), `"action":"expire","fault":"brief"`)
	}
	for deadline := time.Now().Add(10 * time.Second); !lapsed() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
	}
	if !lapsed() {
		b, _ := os.ReadFile(auditPath)
		t.Errorf("the lapse of brief's lease is not in the audit log:\n%s", b)
	}
	resp, err := http.Post(proxyURL+"/update", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("POST /update: %d, want the injected 503", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the proxy did not stop within 20s of SIGINT")
	}
	log := <-rest
	if !strings.Contains(log, `msg="fault rule removed on shutdown" fault=always matched=1 injected=1`) || !strings.HasSuffix(log, "slolab proxy: stopped; no fault rule remains\n") {
		t.Errorf("shutdown log:\n%s", log)
	}
	// The request, still in the recorder's open interval at SIGINT, was
	// flushed to the store on the way out.
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "slolab.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ev, err := st.Events(context.Background(), slo.Range{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
	if got := ev[slo.Key{CUJ: "update", Kind: slo.Availability}]; err != nil || got != (slo.Events{Total: 1, Bad: 1}) {
		t.Errorf("stored update events %+v (%v), want the one failed request", got, err)
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if !strings.Contains(string(audit), `"action":"put","fault":"always"`) ||
		!strings.Contains(string(audit), `"identity":"slolab","actor":"shutdown","action":"delete","fault":"always","detail":{"injected":1,"matched":1,"state":"active"}}`) {
		t.Errorf("audit log, want the put and the removal on shutdown: %s", audit)
	}
}
