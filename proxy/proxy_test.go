package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

type stack struct {
	url    string
	addr   string
	faults *fault.Registry
	rec    *sli.Recorder
	routes *match.Table
	stop   func() error // shuts the proxy down and returns what Serve returned
}

// forwarding is one of the proxy's two ways to forward a request: its own
// HTTP/1.1 path, or net/http's server and httputil.ReverseProxy (what it
// uses for everything the dedicated path does not handle, and for every
// request when a Transport is set).
type forwarding struct {
	name string
	cfg  func(*proxy.Config)
}

var forwardings = []forwarding{
	{"dedicated", func(*proxy.Config) {}},
	{"net/http", func(c *proxy.Config) { c.Transport = proxy.NewTransport() }},
}

// bothPaths runs a test against each way of forwarding.
func bothPaths(t *testing.T, test func(t *testing.T, fw forwarding)) {
	for _, fw := range forwardings {
		t.Run(fw.name, func(t *testing.T) { test(t, fw) })
	}
}

// start runs a proxy for the chat example in front of upstream, forwarding
// fw's way, with its config and serving options changed by tweak.
func start(t *testing.T, fw forwarding, upstream string, tweak ...func(*proxy.Config, *proxy.ServeOptions)) *stack {
	t.Helper()
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, _ := match.Compile(svc)
	faults, _ := fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	rec := sli.New(sli.Config{Service: svc, Routes: routes})
	u, _ := url.Parse(upstream)
	cfg := proxy.Config{Upstream: u, Routes: routes, Faults: faults, Recorder: rec}
	fw.cfg(&cfg)
	opts := proxy.ServeOptions{Drain: 5 * time.Second, H2C: true}
	for _, f := range tweak {
		f(&cfg, &opts)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln, opts) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	addr := ln.Addr().String()
	return &stack{url: "http://" + addr, addr: addr, faults: faults, rec: rec, routes: routes, stop: stop}
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

func okServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok %s %s\n", r.Method, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return s
}

func keepAliveClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

// 10,000 POST /update over 32 keep-alive connections at 0.1%: exactly 10
// answers are 500, every prefix (checked at each wave of 32) is within one of
// 0.1%, and requests to other routes never see a 500.
func TestExactRateOverConcurrentKeepAliveConnections(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := okServer(t)
		s := start(t, fw, up.URL)
		put(t, s.faults, `{"name": "upd-500", "match": {"cuj": "update"}, "status": 500, "rate": "0.1%"}`)
		client := keepAliveClient(32)
		var fivehundreds, otherBad atomic.Int64
		p := spec.NewRatio(1, 1000)
		const waves = 10_000 / 32
		sent := 0
		for w := 0; w <= waves; w++ {
			n := 32
			if w == waves {
				n = 10_000 - sent
			}
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					resp, err := client.Post(s.url+"/update", "application/json", strings.NewReader(`{"id": 1}`))
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 500 {
						fivehundreds.Add(1)
					}
				})
			}
			wg.Go(func() { // an untargeted route in the same waves
				resp, err := client.Get(s.url + "/messages")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					otherBad.Add(1)
				}
			})
			wg.Wait()
			sent += n
			got, lo := uint64(fivehundreds.Load()), p.FloorMul(uint64(sent))
			if got != lo && got != lo+1 {
				t.Fatalf("after %d requests %d were 500, want %d or %d", sent, got, lo, lo+1)
			}
		}
		if fivehundreds.Load() != 10 || otherBad.Load() != 0 {
			t.Fatalf("500s: %d (want exactly 10); untargeted non-200: %d (want 0)", fivehundreds.Load(), otherBad.Load())
		}
		st, _ := s.faults.Get("upd-500")
		if st.Matched != 10_000 || st.Injected != 10 {
			t.Errorf("rule counted %d matched, %d injected", st.Matched, st.Injected)
		}
		w := s.rec.Window(s.routes.CUJIndex("update"), sli.AllGroups, time.Hour)
		if w.Total != 10_000 || w.Bad != 10 {
			t.Errorf("recorder: %d total, %d bad; want 10000 and 10", w.Total, w.Bad)
		}
	})
}

func digest(t *testing.T, r io.Reader) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

// Untargeted responses through the proxy are byte-identical to direct ones.
func TestResponsesAreByteIdenticalToDirect(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		const big = 100 << 20
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/files/big": // a 100 MB body streamed in pieces, never in memory at once
				w.Header().Set("Content-Length", fmt.Sprint(big))
				chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
				for sent := 0; sent < big; sent += len(chunk) {
					for i := range chunk[:16] {
						chunk[i] = byte(sent >> (i % 8))
					}
					w.Write(chunk)
				}
			case "/messages": // chunked, flushed piece by piece, with a trailer
				w.Header().Set("Trailer", "X-Checksum")
				for i := range 50 {
					fmt.Fprintf(w, "message %d\n", i)
					w.(http.Flusher).Flush()
				}
				w.Header().Set("X-Checksum", "abc123")
			}
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		for _, path := range []string{"/files/big", "/messages"} {
			direct, err := http.Get(up.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			dsum, dn := digest(t, direct.Body)
			direct.Body.Close()
			via, err := http.Get(s.url + path)
			if err != nil {
				t.Fatal(err)
			}
			vsum, vn := digest(t, via.Body)
			via.Body.Close()
			if dsum != vsum || dn != vn || direct.StatusCode != via.StatusCode {
				t.Errorf("%s: direct %d bytes %s status %d, via proxy %d bytes %s status %d", path, dn, dsum[:12], direct.StatusCode, vn, vsum[:12], via.StatusCode)
			}
			if path == "/messages" {
				if len(via.TransferEncoding) == 0 || via.TransferEncoding[0] != "chunked" {
					t.Errorf("the chunked response arrived as %v", via.TransferEncoding)
				}
				if via.Trailer.Get("X-Checksum") != "abc123" {
					t.Errorf("trailer lost: %v", via.Trailer)
				}
			}
			for _, h := range []string{"Content-Type", "Content-Length"} {
				if direct.Header.Get(h) != via.Header.Get(h) {
					t.Errorf("%s: header %s direct %q via %q", path, h, direct.Header.Get(h), via.Header.Get(h))
				}
			}
		}
	})
}

func TestWebSocketEchoPassesThrough(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(1 << 20)
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				if err := c.Write(r.Context(), typ, msg); err != nil {
					return
				}
			}
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		for i := range 100 {
			msg := bytes.Repeat([]byte{byte(i)}, 1+i*1000)
			if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("message %d came back different", i)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
		// The upgrade is recorded as a 101, not as a failure.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if w := s.rec.Window(0, sli.AllGroups, time.Hour); w.Total == 1 {
				if w.Bad != 0 {
					t.Errorf("the WebSocket session counted as bad")
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Error("the WebSocket session was not recorded")
	})
}

// A 100 MB upload streams to the upstream: it starts receiving before the
// client has sent everything, and gets every byte.
func TestLargeUploadsStreamWithoutBuffering(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		const size = 100 << 20
		firstMiB := make(chan struct{})
		var gotSum string
		var gotN int64
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			n, _ := io.CopyN(h, r.Body, 1<<20)
			close(firstMiB)
			m, _ := io.Copy(h, r.Body)
			gotSum, gotN = fmt.Sprintf("%x", h.Sum(nil)), n+m
			w.WriteHeader(201)
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		pr, pw := io.Pipe()
		want := sha256.New()
		go func() {
			buf := bytes.Repeat([]byte("slolab!!"), 1<<17) // 1 MiB
			for i := 0; i < size/len(buf); i++ {
				if i == 1 {
					select { // the upstream must see the first MiB before we send the second
					case <-firstMiB:
					case <-time.After(10 * time.Second):
						pw.CloseWithError(errors.New("the upstream saw nothing of the upload: the proxy buffers"))
						return
					}
				}
				buf[0] = byte(i)
				want.Write(buf)
				pw.Write(buf)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", s.url+"/files", pr)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 || gotN != size || gotSum != fmt.Sprintf("%x", want.Sum(nil)) {
			t.Errorf("status %d, upstream got %d bytes (want %d), digests match: %v", resp.StatusCode, gotN, size, gotSum == fmt.Sprintf("%x", want.Sum(nil)))
		}
	})
}

func TestAnUnreachableUpstreamGets502WithAReason(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		// Port 1 (tcpmux): nothing listens there, and unlike a port just
		// freed, the kernel never hands it to the proxy's own listener,
		// which would make the proxy forward to itself.
		const addr = "127.0.0.1:1"
		s := start(t, fw, "http://"+addr)
		resp, err := http.Post(s.url+"/update", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("slolab proxy: upstream %s unreachable: dial tcp %s: connect: connection refused\n", addr, addr)
		if resp.StatusCode != 502 || string(body) != want || resp.Header.Get("X-Slolab-Error") != "upstream unreachable" {
			t.Errorf("got %d %q (%s)\nwant 502 %q", resp.StatusCode, body, resp.Header.Get("X-Slolab-Error"), want)
		}
		if w := s.rec.Window(s.routes.CUJIndex("update"), sli.AllGroups, time.Hour); w.Total != 1 || w.Bad != 1 {
			t.Errorf("recorded %d total, %d bad; want the 502 as one bad request", w.Total, w.Bad)
		}
	})
}

func TestAbortClosesTheConnectionWithoutAResponse(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := okServer(t)
		s := start(t, fw, up.URL)
		put(t, s.faults, `{"name": "cut", "match": {"cuj": "send"}, "abort": true}`)
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(conn)
		if len(got) != 0 || err != nil {
			t.Errorf("read %q, %v; want nothing and a closed connection", got, err)
		}
		if w := s.rec.Window(s.routes.CUJIndex("send"), sli.AllGroups, time.Hour); w.Total != 1 || w.Bad != 1 {
			t.Errorf("recorded %d total, %d bad; want the abort as one bad request", w.Total, w.Bad)
		}
	})
}

func TestReplaceAndPatchRewriteRequestsAndResponses(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s?%s x-extra=%s body=%s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Extra"), body)
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		put(t, s.faults, `{"name": "a-rewrite", "match": {"cuj": "update", "route": "POST /update"},
		  "replace": {"request": {"path": "/v2/update", "query": "dry=1", "body": "{}"}},
		  "patch": {"request": {"headers": {"X-Extra": "yes"}, "query": {"trace": "on"}}, "response": {"headers": {"X-Patched": "1"}, "body": " [patched]"}}}`)
		put(t, s.faults, `{"name": "b-status", "match": {"cuj": "update", "route": "POST /update"}, "replace": {"response": {"status": 418}}}`)
		resp, err := http.Post(s.url+"/update?x=1", "text/plain", strings.NewReader("original"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "POST /v2/update?dry=1&trace=on x-extra=yes body={} [patched]"
		if resp.StatusCode != 418 || string(body) != want || resp.Header.Get("X-Patched") != "1" || resp.Header.Get("X-Slolab-Fault") != "a-rewrite, b-status" {
			t.Errorf("got %d %q headers %v\nwant 418 %q", resp.StatusCode, body, resp.Header, want)
		}
		if resp.ContentLength != int64(len(want)) {
			t.Errorf("content length %d, want %d", resp.ContentLength, len(want))
		}
	})
}

func TestStatusAndDelayCombine(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := okServer(t)
		s := start(t, fw, up.URL)
		put(t, s.faults, `{"name": "slow-503", "match": {"cuj": "read"}, "status": {"code": 503, "body": "busy", "headers": {"Retry-After": "5"}}, "delay": "200ms"}`)
		t0 := time.Now()
		resp, err := http.Get(s.url + "/messages")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || string(body) != "busy" || resp.Header.Get("Retry-After") != "5" || time.Since(t0) < 200*time.Millisecond {
			t.Errorf("got %d %q after %v", resp.StatusCode, body, time.Since(t0))
		}
		w := s.rec.Window(s.routes.CUJIndex("read"), sli.AllGroups, time.Hour)
		if w.Total != 1 || w.Bad != 1 || w.Hist[0] != 0 {
			t.Errorf("recorded %+v; want one bad request slower than 200ms", w)
		}
	})
}

func TestForwardingHeaders(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		var got http.Header
		var host string
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, host = r.Header.Clone(), r.Host
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		req, _ := http.NewRequest("GET", s.url+"/messages", nil)
		req.Host = "chat.example.com"
		req.Header.Set("X-Forwarded-For", "10.9.8.7")
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "must not pass")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if host != "chat.example.com" || got.Get("X-Forwarded-For") != "10.9.8.7, 127.0.0.1" ||
			got.Get("X-Forwarded-Host") != "chat.example.com" || got.Get("X-Forwarded-Proto") != "http" || got.Get("X-Hop") != "" {
			t.Errorf("upstream saw Host %q and headers %v", host, got)
		}
	})
}

func TestH2CClientsAreServed(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := okServer(t)
		s := start(t, fw, up.URL)
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		resp, err := (&http.Client{Transport: tr}).Get(s.url + "/messages")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "ok GET /messages\n" {
			t.Errorf("got %s %q", resp.Proto, body)
		}
	})
}

// Shutdown lets an in-flight request finish.
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		release := make(chan struct{})
		arrived := make(chan struct{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-release
			io.WriteString(w, "finished")
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		type result struct {
			body string
			err  error
		}
		res := make(chan result, 1)
		go func() {
			resp, err := http.Get(s.url + "/messages")
			if err != nil {
				res <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res <- result{body: string(b)}
		}()
		<-arrived
		served := make(chan error, 1)
		go func() { served <- s.stop() }() // shut down while the request is in flight
		deadline := time.Now().Add(5 * time.Second)
		for { // the listener closes first
			c, err := net.DialTimeout("tcp", s.addr, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("the proxy still accepts connections while draining")
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(release)
		if r := <-res; r.err != nil || r.body != "finished" {
			t.Errorf("in-flight request: %q, %v", r.body, r.err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// A client that leaves during an injected delay is recorded as 499, which
// does not count against availability.
func TestClientsThatLeaveAreNotCountedAsFailures(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := okServer(t)
		s := start(t, fw, up.URL)
		put(t, s.faults, `{"name": "slow", "match": {"cuj": "read"}, "delay": "5s"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/messages", nil)
		if _, err := http.DefaultClient.Do(req); err == nil {
			t.Fatal("the request finished despite the delay")
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if w := s.rec.Window(s.routes.CUJIndex("read"), sli.AllGroups, time.Hour); w.Total == 1 {
				if w.Bad != 0 {
					t.Error("a client leaving counted against availability")
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Error("the request was not recorded")
	})
}

// TestAReplacedBodyGetsATypeThatFitsIt: a JSON API's answer replaced with
// plain text is served as text/plain, not under the upstream's
// application/json; a rule that names a Content-Type keeps it; a replaced
// request body is typed for the upstream the same way.
func TestAReplacedBodyGetsATypeThatFitsIt(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		var sent string
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent = r.Header.Get("Content-Type")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok": true}`)
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		for _, c := range []struct {
			rule, wantType, wantSent string
		}{
			{`{"name": "r", "match": {"cuj": "update"}, "replace": {"response": {"body": "service degraded, try later\n"}, "request": {"body": "plain"}}}`,
				"text/plain; charset=utf-8", "text/plain; charset=utf-8"},
			{`{"name": "r", "match": {"cuj": "update"}, "replace": {"response": {"body": "{\"error\": \"degraded\"}"}}}`,
				"application/json", "application/json"},
			{`{"name": "r", "match": {"cuj": "update"}, "replace": {"response": {"body": "<b>no</b>", "headers": {"content-type": "text/x-custom"}}}}`,
				"text/x-custom", "application/json"},
		} {
			put(t, s.faults, c.rule)
			resp, err := http.Post(s.url+"/update", "application/json", strings.NewReader(`{"id": 1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Content-Type"); got != c.wantType || sent != c.wantSent {
				t.Errorf("%s:\nthe client got Content-Type %q, want %q; the upstream got %q, want %q", c.rule, got, c.wantType, sent, c.wantSent)
			}
		}
	})
}
