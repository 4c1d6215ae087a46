package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

func TestProxyTimeoutAndConnectionFlagsRefuseNegativeValues(t *testing.T) {
	for _, flag := range []string{"--upstream-timeout", "--read-header-timeout", "--idle-timeout", "--max-conns"} {
		val := "-1s"
		if flag == "--max-conns" {
			val = "-1"
		}
		code, _, errOut := runCLI(t, nil, "proxy", "--spec", "../../examples/chat.yaml", "--upstream", "http://127.0.0.1:1", flag, val)
		if code != ExitUsage || !strings.Contains(errOut, flag) {
			t.Errorf("%s %s: exit %d, stderr %q", flag, val, code, errOut)
		}
	}
}

// The spec's per-CUJ upstreamTimeout reaches the proxy over the
// --upstream-timeout flag's value.
func TestASpecsCUJUpstreamTimeoutOverridesTheFlag(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	f, err := spec.Parse("chat.yaml", []byte(strings.Replace(chatWithReadTimeout, "READ_TIMEOUT", "100ms", 1)))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(up.URL)
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-", store: "-", upstreamTimeout: time.Hour}
	stack, err := newProxyStack(f.Services[0], u, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { stack.run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	for _, c := range []struct {
		path string
		want int
	}{{"/messages", 504}, {"/tasks", 200}} {
		resp, err := http.Get(stack.proxyURL() + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.want)
		}
	}
}

const chatWithReadTimeout = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: chat}
spec:
  cujs:
    - name: read
      owner: messaging
      routes: ["GET /messages"]
      availability: {objective: 99.9%}
      upstreamTimeout: READ_TIMEOUT
    - name: task
      owner: tasks
      routes: ["GET /tasks"]
      availability: {objective: 99.9%}
`
