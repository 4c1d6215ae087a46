package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// rawUpstream answers every HTTP/1.1 request on a keep-alive connection with
// "200 ok" straight from the socket, so that in a benchmark the upstream
// costs next to nothing and allocates nothing.
func rawUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns { // the proxy's idle keep-alive connections
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveRaw(c) })
		}
	})
	return ln.Addr().String()
}

var rawResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")

func serveRaw(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	for {
		var n int64
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
				n, _ = strconv.ParseInt(string(bytes.TrimSpace(line[15:])), 10, 64)
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return
		}
		if _, err := c.Write(rawResponse); err != nil {
			return
		}
	}
}

// BenchmarkProxyLoopback is the request path as a client meets it: keep-alive
// connections over loopback to a running proxy, which forwards to a raw
// upstream. Allocations per request are the proxy's own (the client and the
// upstream allocate nothing per request); run it with -cpuprofile to see
// where the proxy spends its time.
func BenchmarkProxyLoopback(b *testing.B) {
	for _, tc := range []struct {
		name  string
		rules []string
	}{
		{"no rules", nil},
		{"one active rule on another route", []string{`{"name": "other", "match": {"cuj": "read", "route": "GET /messages/{id}"}, "delay": "1ms"}`}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := startBench(b, tc.rules)
			const conns = 8
			b.ReportAllocs()
			b.SetParallelism(conns / max(1, 2)) // 8 client connections on GOMAXPROCS 2
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				req := []byte("GET /messages HTTP/1.1\r\nHost: chat.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if err := readRawResponse(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// readRawResponse reads one response with a Content-Length body.
func readRawResponse(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	n := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if n < 0 {
		return fmt.Errorf("a response without Content-Length")
	}
	_, err = io.CopyN(io.Discard, r, int64(n))
	return err
}

func startBench(b *testing.B, rules []string) string {
	b.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		b.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	for _, js := range rules {
		r, err := spec.ParseFaultRule("", []byte(js), "")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := faults.Put(r); err != nil {
			b.Fatal(err)
		}
	}
	u, _ := url.Parse("http://" + rawUpstream(b))
	p, err := proxy.New(proxy.Config{Upstream: u, Routes: routes, Faults: faults, Recorder: sli.New(sli.Config{Service: svc, Routes: routes})})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, proxy.ServeOptions{Drain: time.Second, H2C: true}) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}
