package cli

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

// slolab proxy --tcp forwards a dependency; a TCP fault rule added through
// the ordinary fault command degrades it and shows in fault ls.
func TestTCPListenersTakeFaultRulesThroughTheAdminAPI(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { echo.Close(); wg.Wait() }()
	wg.Go(func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	svc, _ := spec.LoadService("../../examples/chat.yaml")
	up, _ := url.Parse("http://127.0.0.1:1")
	o := &proxyOptions{listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", maxTTL: time.Hour, drain: time.Second, auditLog: "-", faultHeader: "-",
		tcp: []string{"db=127.0.0.1:0," + echo.Addr().String()}}
	if _, err := o.check(); err == nil {
		t.Fatal("check passed without --spec")
	}
	stack, err := newProxyStack(svc, up, o, newTestLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var sw sync.WaitGroup
	sw.Go(func() { stack.run(ctx) })
	defer func() { cancel(); sw.Wait() }()
	dbAddr := stack.tcp[0].ln.Addr().String()

	ping := func() bool {
		c, err := net.Dial("tcp", dbAddr)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		return err == nil && string(buf) == "ping"
	}
	if !ping() {
		t.Fatal("the TCP listener does not forward")
	}
	rule := writeFile(t, t.TempDir(), "rule.yaml", "match: {tcp: db}\ntcp: {reset: true}\nttl: 1m\n")
	code, out, errOut := runCLI(t, nil, "fault", "add", "db-reset", "-f", rule, "--admin", stack.adminURL())
	if code != ExitOK {
		t.Fatalf("fault add: exit %d %s %s", code, out, errOut)
	}
	if ping() {
		t.Error("a connection got through a 100% reset")
	}
	code, out, _ = runCLI(t, nil, "fault", "ls", "--admin", stack.adminURL())
	if code != ExitOK || !strings.Contains(out, "db-reset") || !strings.Contains(out, "tcp reset downstream per connection") {
		t.Errorf("fault ls: exit %d\n%s", code, out)
	}
	runCLI(t, nil, "fault", "rm", "db-reset", "--admin", stack.adminURL())
	if !ping() {
		t.Error("the listener still resets after the rule was removed")
	}
}

func TestBadTCPFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"proxy", "--spec", "x.yaml", "--upstream", "http://x", "--tcp", "db"},
		{"proxy", "--spec", "x.yaml", "--upstream", "http://x", "--tcp", "db=:1,:2", "--tcp", "db=:3,:4"},
	} {
		code, _, errOut := runCLI(t, nil, args...)
		if code != ExitUsage || !strings.HasPrefix(errOut, "slolab: --tcp") {
			t.Errorf("%v: exit %d %q", args, code, errOut)
		}
	}
}
