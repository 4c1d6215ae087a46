package tcpproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

const svcYAML = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: app}
spec:
  cujs: [{name: a, owner: t, routes: ["GET /a"], availability: {objective: 99%}}]
`

func registry(t *testing.T, listeners ...string) *fault.Registry {
	t.Helper()
	f, err := spec.Parse("svc.yaml", []byte(svcYAML))
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(f.Services[0])
	reg, err := fault.NewRegistry(fault.Config{Service: f.Services[0], Routes: routes, TCP: listeners})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func put(t *testing.T, reg *fault.Registry, js string) {
	t.Helper()
	r, err := spec.ParseFaultRule("rule", []byte(js), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Put(r); err != nil {
		t.Fatal(err)
	}
}

// echo serves connections that send back what they read.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	return ln.Addr().String()
}

// serve runs a proxy for listener db on loopback.
func serve(t *testing.T, reg *fault.Registry, upstream string) string {
	t.Helper()
	return serveWith(t, Config{Name: "db", Upstream: upstream, Faults: reg})
}

func serveWith(t *testing.T, cfg Config) string {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// roundTrip writes msg and reads its echo; it reports whether the echo came back whole.
func roundTrip(c net.Conn, msg string) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}

// Of 100 connections at 25% per connection, exactly the 4th, 8th, ... are
// reset, on real TCP.
func TestResetsPerConnectionAreExactOnLoopback(t *testing.T) {
	reg := registry(t, "db")
	addr := serve(t, reg, echo(t))
	put(t, reg, `{"name": "rst", "match": {"tcp": "db"}, "rate": "25%", "tcp": {"reset": true}}`)
	var reset []int
	for i := 1; i <= 100; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil || !roundTrip(c, "ping") {
			reset = append(reset, i) // the reset can beat the dial's return
		}
		if c != nil {
			c.Close()
		}
	}
	if len(reset) != 25 || reset[0] != 4 || reset[24] != 100 {
		t.Errorf("reset connections %v, want every fourth", reset)
	}
	if st, _ := reg.Get("rst"); st.Matched != 100 || st.Injected != 25 {
		t.Errorf("counters %d/%d, want 25/100", st.Injected, st.Matched)
	}
}

// Per chunk, 10% of the client's chunks reset their connection: exactly
// every tenth, counted over reconnections, on real TCP.
func TestResetsPerChunkAreExactOnLoopback(t *testing.T) {
	reg := registry(t, "db")
	addr := serve(t, reg, echo(t))
	put(t, reg, `{"name": "rst", "match": {"tcp": "db"}, "rate": "10%", "tcp": {"per": "chunk", "direction": "upstream", "reset": true}}`)
	var c net.Conn
	echoed, resets := 0, 0
	for range 100 {
		if c == nil {
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
		}
		if roundTrip(c, "query") {
			echoed++
			continue
		}
		resets++
		c.Close()
		c = nil
	}
	if c != nil {
		c.Close()
	}
	if echoed != 90 || resets != 10 {
		t.Errorf("%d echoed, %d reset; want 90 and 10", echoed, resets)
	}
}

// Rules naming no listener of the proxy are refused with the ones it has.
func TestARuleForAnUnknownListenerIsRefused(t *testing.T) {
	reg := registry(t, "db", "cache")
	r, _ := spec.ParseFaultRule("rule", []byte(`{"name": "x", "match": {"tcp": "kafka"}, "tcp": {"reset": true}}`), "")
	_, _, err := reg.Put(r)
	if slolab.KindOf(err) != slolab.Invalid || err.Error() != `fault x: match.tcp: the proxy has no TCP listener "kafka" (it has db, cache)` {
		t.Errorf("err = %v", err)
	}
	// A TCP rule never touches HTTP requests.
	put(t, reg, `{"name": "y", "match": {"tcp": "db"}, "tcp": {"reset": true}}`)
	if got := len(reg.Table().TCP("db")); got != 1 {
		t.Errorf("db has %d rules", got)
	}
}

// pipeLab runs a proxy over in-memory pipes inside a synctest bubble: the
// upstream echoes, every wait is exact.
type pipeLab struct {
	p   *Proxy
	reg *fault.Registry
	wg  sync.WaitGroup
	// closeUpstream makes the upstream close its side after the next read.
	closeUpstream chan struct{}
}

func newPipeLab(t *testing.T) *pipeLab {
	l := &pipeLab{reg: registry(t, "db"), closeUpstream: make(chan struct{}, 1)}
	var err error
	l.p, err = New(Config{Name: "db", Faults: l.reg, Dial: func(context.Context) (net.Conn, error) {
		mine, theirs := net.Pipe()
		l.wg.Go(func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := theirs.Read(buf)
				if err != nil {
					theirs.Close()
					return
				}
				theirs.Write(buf[:n])
				select {
				case <-l.closeUpstream:
					theirs.Close()
					return
				default:
				}
			}
		})
		return mine, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.wg.Wait)
	return l
}

// dial opens a client connection through the proxy.
func (l *pipeLab) dial() net.Conn {
	client, proxySide := net.Pipe()
	l.wg.Go(func() { l.p.Handle(context.Background(), proxySide) })
	return client
}

// elapsed returns how long a round trip of msg takes, or -1 when it breaks.
func elapsed(c net.Conn, msg []byte) time.Duration {
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := c.Write(msg); done <- err }()
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
		return -1
	}
	if <-done != nil {
		return -1
	}
	return time.Since(start)
}

func TestLatencyAndJitterDelayExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPipeLab(t)
		put(t, l.reg, `{"name": "slow", "match": {"tcp": "db"}, "seed": 7, "tcp": {"latency": "100ms", "jitter": "20ms"}}`)
		c := l.dial()
		defer c.Close()
		var got []time.Duration
		for range 3 {
			got = append(got, elapsed(c, []byte("select 1")))
		}
		// Downstream only: each answer waits 100ms ± 20ms, drawn from the
		// seed and the chunk, so the same every run.
		for i, d := range got {
			if d < 80*time.Millisecond || d > 120*time.Millisecond {
				t.Errorf("round trip %d took %v, want 100ms±20ms", i, d)
			}
		}
		if got[0] == got[1] && got[1] == got[2] {
			t.Errorf("no jitter: %v", got)
		}
		// Removing the rule stops it on the open connection at once.
		l.reg.Delete("slow")
		if d := elapsed(c, []byte("select 2")); d != 0 {
			t.Errorf("after removal a round trip took %v", d)
		}
	})
}

func TestBandwidthPacesBytesExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPipeLab(t)
		put(t, l.reg, `{"name": "thin", "match": {"tcp": "db"}, "tcp": {"bandwidth": "10KB/s", "direction": "both"}}`)
		c := l.dial()
		defer c.Close()
		// 20000 bytes up at 10KB/s go in 20 pieces of 1000 bytes, 100ms
		// each; the echo sends each piece back as it comes, paced the same
		// way, one piece behind: 2.1s in all.
		if d := elapsed(c, make([]byte, 20000)); d != 2100*time.Millisecond {
			t.Errorf("20000 bytes both ways took %v, want 2.1s", d)
		}
	})
}

func TestSlowCloseHoldsTheCloseAndBlackholesTimeOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPipeLab(t)
		put(t, l.reg, `{"name": "lingering", "match": {"tcp": "db"}, "tcp": {"slowClose": "3s"}}`)
		c := l.dial()
		l.closeUpstream <- struct{}{}
		if d := elapsed(c, []byte("bye")); d != 0 {
			t.Fatalf("round trip %v", d)
		}
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after the upstream closed: %v", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("the close arrived after %v, want 3s", d)
		}
		c.Close()
		l.reg.Delete("lingering")

		put(t, l.reg, `{"name": "hang", "match": {"tcp": "db"}, "tcp": {"blackhole": true, "direction": "both", "timeout": "10s"}}`)
		c = l.dial()
		defer c.Close()
		start = time.Now()
		go c.Write([]byte("anyone there?"))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a blackholed connection answered")
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("the blackhole closed after %v, want 10s", d)
		}
	})
}

// A per-connection blackhole whose lease lapses ends the connection: data
// was lost, so it cannot simply flow again.
func TestABlackholeWhoseLeaseLapsesClosesTheConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newPipeLab(t)
		put(t, l.reg, `{"name": "hang", "match": {"tcp": "db"}, "ttl": "5s", "tcp": {"blackhole": true}}`)
		c := l.dial()
		defer c.Close()
		c.Write([]byte("one")) // reaches the upstream; its answer is dropped
		time.Sleep(6 * time.Second)
		go c.Write([]byte("two"))
		n, err := c.Read(make([]byte, 16))
		if n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
			t.Errorf("after the lease: read %d, %v; want the connection closed", n, err)
		}
	})
}

func TestParseListener(t *testing.T) {
	name, listen, upstream, err := ParseListener("postgres=127.0.0.1:15432,db.internal:5432")
	if err != nil || name != "postgres" || listen != "127.0.0.1:15432" || upstream != "db.internal:5432" {
		t.Errorf("got %q %q %q %v", name, listen, upstream, err)
	}
	for in, want := range map[string]string{
		"postgres":                    `want NAME=LISTEN,UPSTREAM such as postgres=127.0.0.1:15432,127.0.0.1:5432, got "postgres"`,
		"Postgres=:1,:2":              `"Postgres=:1,:2": the name "Postgres" must be lower-case letters, digits, '-' and '_', as fault rules name it in match.tcp`,
		"pg=127.0.0.1,127.0.0.1:5432": `"pg=127.0.0.1,127.0.0.1:5432": listen address: address 127.0.0.1: missing port in address`,
		"pg=127.0.0.1:1,db.internal":  `"pg=127.0.0.1:1,db.internal": upstream address: address db.internal: missing port in address`,
	} {
		if _, _, _, err := ParseListener(in); err == nil || err.Error() != want {
			t.Errorf("ParseListener(%q) = %v\nwant %s", in, err, want)
		}
	}
}

// Reset connections are an injected error class of CUJ tcp:db; a dependency
// that cannot be dialled is one of its own.
func TestTCPFailuresAreErrorClasses(t *testing.T) {
	reg := registry(t, "db")
	classes := errclass.New(errclass.Config{})
	addr := serveWith(t, Config{Name: "db", Upstream: echo(t), Faults: reg, Classes: classes})
	put(t, reg, `{"name": "rst", "match": {"tcp": "db"}, "rate": "25%", "tcp": {"reset": true}}`)
	for range 20 {
		if c, err := net.Dial("tcp", addr); err == nil {
			roundTrip(c, "ping")
			c.Close()
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	addr = serveWith(t, Config{Name: "db", Upstream: dead, Faults: registry(t, "db"), Classes: classes})
	if c, err := net.Dial("tcp", addr); err == nil {
		roundTrip(c, "ping")
		c.Close()
	}
	got := map[string]errclass.Class{}
	for _, c := range classes.Classes() {
		got[c.Signature] = c
	}
	if c := got["connection reset"]; c.CUJ != "tcp:db" || c.Kind != errclass.KindTCP || !c.Injected || c.Count != 5 || c.Example.Fault != "rst" {
		t.Errorf("reset class = %+v", c)
	}
	if c := got["upstream unreachable"]; c.Injected || c.Count != 1 || c.Route != dead {
		t.Errorf("unreachable class = %+v", c)
	}
}
