package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
)

func freeOptions(rate string) *labOptions {
	return &labOptions{
		listen: "127.0.0.1:0", adminAddr: "127.0.0.1:0", dashboard: "127.0.0.1:0", app: "127.0.0.1:0",
		rate: rate, seed: 1, token: "t0k", poll: 100 * time.Millisecond, auditLog: "-", logLevel: "error",
	}
}

func TestALabStopsCleanlyAndLeavesNoFault(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := newLab(ctx, freeOptions("50/s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.run(ctx) }()
	<-l.dash.Polled()

	c, err := admin.NewClient(l.stack.adminURL(), "t0k")
	if err != nil {
		t.Fatal(err)
	}
	rule, err := spec.ParseFaultRule("test", []byte(`{"match": {"cuj": "read"}, "status": 500, "rate": "50%", "ttl": "1h"}`), "left-behind")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFault(ctx, rule); err != nil {
		t.Fatal(err)
	}
	// The app answers through the proxy, and the rule applies.
	resp, err := http.Get(l.stack.proxyURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the app through the proxy: %s", resp.Status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the lab stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the lab did not stop within 20s of Ctrl-C")
	}
	for _, st := range l.stack.faults.List() {
		if st.State == fault.StateActive || st.State == fault.StatePending {
			t.Errorf("fault %s is still %s after the lab stopped", st.Rule.Name, st.State)
		}
	}
	for name, addr := range map[string]string{"proxy": l.stack.proxyLn.Addr().String(), "admin": l.stack.adminLn.Addr().String(), "dashboard": l.dashLn.Addr().String(), "app": l.appLn.Addr().String()} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("the %s still listens on %s", name, addr)
		}
	}
}

func TestATakenDefaultPortFallsBackAndAGivenOneFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()

	o := freeOptions("0")
	o.dashboard = addr
	l, err := newLab(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatalf("a taken default: %v", err)
	}
	var out bytes.Buffer
	l.printURLs(&out)
	l.closeAll()
	if want := addr + " is taken: --dashboard uses 127.0.0.1:"; !strings.Contains(out.String(), want) || l.dashLn.Addr().String() == addr {
		t.Errorf("output %q, want a line with %q", out.String(), want)
	}

	o = freeOptions("0")
	o.dashboard, o.explicit = addr, map[string]bool{"dashboard": true}
	if _, err := newLab(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "--dashboard "+addr+": listen tcp "+addr) ||
		!strings.Contains(err.Error(), "choose another address, or 127.0.0.1:0 for any free port") {
		t.Errorf("a taken port given on purpose: %v", err)
	}
}

func TestTheLabPrintsWhereEverythingIs(t *testing.T) {
	l, err := newLab(context.Background(), freeOptions("20/s"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	var out bytes.Buffer
	l.printURLs(&out)
	want := strings.Join([]string{
		"slolab lab: service chat, 6 CUJs, load 20/s, seed 1",
		"",
		"  dashboard  " + l.dashboardURL() + "#token=t0k",
		"  app        " + l.stack.proxyURL() + "/  (the demo app, through the proxy)",
		"  admin API  " + l.stack.adminURL() + "/api/v1/  metrics " + l.stack.adminURL() + "/metrics",
		"  token      export SLOLAB_ADMIN_URL=" + l.stack.adminURL() + " SLOLAB_ADMIN_TOKEN=t0k",
		"",
		"Ctrl-C stops everything and removes every fault.",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestLabAndServeUsageMistakesExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lab", "--rate", "fast"}, `slolab: --rate "fast": `},
		{[]string{"lab", "--upstream", "ftp://x"}, `slolab: --upstream "ftp://x": want an http:// or https:// URL with a host`},
		{[]string{"lab", "extra"}, "slolab lab needs no arguments"},
		{[]string{"serve", "--listen", "0.0.0.0:8070"}, "the dashboard would listen on 0.0.0.0:8070, beyond loopback, without a token"},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestServeRebuildsTheCUJsFromTheProxy(t *testing.T) {
	l, err := newLab(context.Background(), freeOptions("0"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer l.closeAll()
	live := admin.Snapshot(l.svc, l.stack.routes, l.stack.faults, l.stack.recorder, time.Now())
	got, err := serviceFromLive(&live)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != l.svc.Name || !reflect.DeepEqual(got.CUJNames(), l.svc.CUJNames()) {
		t.Fatalf("service %s with %v, want %s with %v", got.Name, got.CUJNames(), l.svc.Name, l.svc.CUJNames())
	}
	for _, want := range l.svc.CUJs {
		c := got.CUJ(want.Name)
		if c.Owner != want.Owner || len(c.Routes) != len(want.Routes) ||
			!reflect.DeepEqual(*c.Availability, spec.AvailabilitySLO{Objective: want.Availability.Objective, Window: want.Availability.Window}) ||
			!reflect.DeepEqual(*c.Latency, spec.LatencySLO{Threshold: want.Latency.Threshold, Objective: want.Latency.Objective, Window: want.Latency.Window}) {
			t.Errorf("CUJ %s rebuilt as %+v", want.Name, c)
		}
	}
}

func TestDemoAppOnATakenPortFailsClearly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	code, _, errOut := runCLI(t, nil, "demo-app", "--listen", busy.Addr().String())
	want := "slolab: the demo app cannot listen on " + busy.Addr().String() + ": listen tcp " + busy.Addr().String()
	if code != ExitFailure || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, "(choose another with --listen)\n") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
