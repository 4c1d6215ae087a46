package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/sli"
)

// hangingUpstream answers GET /messages never (until the test ends), and
// every other request at once.
func hangingUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && r.URL.Path == "/messages" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(func() { close(release); up.Close() })
	return up
}

func withTimeout(d time.Duration, cujs map[string]time.Duration) func(*proxy.Config, *proxy.ServeOptions) {
	return func(c *proxy.Config, _ *proxy.ServeOptions) { c.UpstreamTimeout, c.CUJTimeouts = d, cujs }
}

// waitRecorded waits until the CUJ's window holds n requests and returns it.
func waitRecorded(t *testing.T, s *stack, cuj string, n uint64) sli.Counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := s.rec.Window(s.routes.CUJIndex(cuj), sli.AllGroups, time.Hour)
		if w.Total >= n || time.Now().After(deadline) {
			if w.Total != n {
				t.Fatalf("%s: %d requests recorded, want %d", cuj, w.Total, n)
			}
			return w
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// latencies counts a window's requests at or under d and over it.
func latencies(t *testing.T, s *stack, w sli.Counts, d time.Duration) (under, over uint64) {
	t.Helper()
	i := slices.Index(s.rec.Bounds(), d)
	if i < 0 {
		t.Fatalf("%s is not a bucket bound", d)
	}
	for j, n := range w.Hist {
		if j <= i {
			under += n
		} else {
			over += n
		}
	}
	return under, over
}

func TestAnUpstreamThatDoesNotAnswerInTimeGets504AndCountsAgainstAvailability(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := hangingUpstream(t)
		s := start(t, fw, up.URL, withTimeout(200*time.Millisecond, nil))
		resp, err := http.Get(s.url + "/messages")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("slolab proxy: upstream %s timed out: no response head within 200ms\n", strings.TrimPrefix(up.URL, "http://"))
		if resp.StatusCode != 504 || string(body) != want || resp.Header.Get("X-Slolab-Error") != "upstream timed out" {
			t.Errorf("got %d %q (%s)\nwant 504 %q", resp.StatusCode, body, resp.Header.Get("X-Slolab-Error"), want)
		}
		if w := waitRecorded(t, s, "read", 1); w.Bad != 1 {
			t.Errorf("the 504 was recorded as good")
		}
	})
}

func TestACUJsOwnUpstreamTimeoutOverridesTheProxys(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond) // longer than read's timeout, far shorter than the proxy's
			io.WriteString(w, "ok")
		}))
		defer up.Close()
		s := start(t, fw, up.URL, withTimeout(time.Hour, map[string]time.Duration{"read": 100 * time.Millisecond}))
		for _, c := range []struct {
			method string
			want   int
		}{{"GET", 504}, {"POST", 200}} { // GET /messages is CUJ read, POST /messages CUJ send
			req, _ := http.NewRequest(c.method, s.url+"/messages", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s /messages: %d, want %d", c.method, resp.StatusCode, c.want)
			}
		}
	})
}

// A client that gives up on an upstream that never answers is recorded
// when the upstream's timeout ends: as a 504 (bad), with the latency the
// client waited (over the CUJ's 300ms threshold, so bad for latency too).
func TestAClientThatGivesUpOnAHungUpstreamCountsAgainstAvailability(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := hangingUpstream(t)
		s := start(t, fw, up.URL, withTimeout(1500*time.Millisecond, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/messages", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("the client got %s from a hung upstream", resp.Status)
		}
		w := waitRecorded(t, s, "read", 1)
		if w.Bad != 1 {
			t.Errorf("a hang the client gave up on counted as good")
		}
		if under, _ := latencies(t, s, w, 300*time.Millisecond); under != 0 {
			t.Errorf("recorded under the 300ms threshold; the client waited 600ms")
		}
		if _, over := latencies(t, s, w, time.Second); over != 0 {
			t.Errorf("recorded over 1s: the upstream's timeout, not the client's wait")
		}
	})
}

// A client that gives up before an upstream that does answer in time is
// the client's choice: 499, not bad for availability; its wait still
// counts for latency.
func TestAClientThatGivesUpBeforeAnAnswerInTimeIsNotCountedBad(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Second)
			io.WriteString(w, "late")
		}))
		defer up.Close()
		s := start(t, fw, up.URL, withTimeout(5*time.Second, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/messages", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("the client got an answer it had given up on")
		}
		w := waitRecorded(t, s, "read", 1)
		if w.Bad != 0 {
			t.Errorf("a client leaving counted against availability")
		}
		if under, _ := latencies(t, s, w, 300*time.Millisecond); under != 0 {
			t.Errorf("recorded under the 300ms threshold; the client waited 600ms")
		}
	})
}

func TestRequestTrailersReachTheUpstream(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		got := make(chan string, 1)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			got <- fmt.Sprintf("%s checksum=%s", body, r.Trailer.Get("X-Checksum"))
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", s.url+"/files", pr)
		req.Trailer = http.Header{"X-Checksum": nil}
		go func() {
			io.WriteString(pw, "part one, ")
			io.WriteString(pw, "part two")
			req.Trailer.Set("X-Checksum", "abc123") // known once the body is sent
			pw.Close()
		}()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if g := <-got; g != "part one, part two checksum=abc123" {
			t.Errorf("upstream got %q", g)
		}
	})
}

// Forwarded (RFC 7239) is kept and extended with this hop, as
// X-Forwarded-For is; the proxy adds none when the client sent none.
func TestForwardedIsExtendedLikeXForwardedFor(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		seen := make(chan []string, 2)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Values("Forwarded")
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		for _, c := range []struct {
			sent []string
			want string
		}{
			{[]string{"for=192.0.2.60;proto=https", "for=198.51.100.17"}, `[for=192.0.2.60;proto=https, for=198.51.100.17, for=127.0.0.1;host="chat.example.com";proto=http]`},
			{nil, "[]"},
		} {
			req, _ := http.NewRequest("GET", s.url+"/messages", nil)
			req.Host = "chat.example.com"
			for _, v := range c.sent {
				req.Header.Add("Forwarded", v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := fmt.Sprint(<-seen); got != c.want {
				t.Errorf("sent %q: upstream saw %s, want %s", c.sent, got, c.want)
			}
		}
	})
}

// A client that sends part of a request head and stops is disconnected
// after the header timeout.
func TestASlowRequestHeadIsCutOffAfterTheHeaderTimeout(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL, func(_ *proxy.Config, o *proxy.ServeOptions) { o.ReadHeaderTimeout = 200 * time.Millisecond })
		for _, first := range []bool{true, false} {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if !first { // a keep-alive connection's second request
				fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n")
				if err := readResponse(br, 200); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = br.ReadByte()
			if isTimeout(err) {
				t.Errorf("first request %v: a half-sent head held the connection for 10s", first)
			}
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func readResponse(br *bufio.Reader, want int) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}

// At the connection cap a new connection waits until one closes.
func TestTheConnectionCapHoldsNewConnectionsBack(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL, func(_ *proxy.Config, o *proxy.ServeOptions) { o.MaxConns = 2 })
		var conns []net.Conn
		var readers []*bufio.Reader
		for range 3 {
			c, err := net.Dial("tcp", s.addr) // the kernel completes the handshake: the backlog
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n")
			conns, readers = append(conns, c), append(readers, bufio.NewReader(c))
		}
		for i := range 2 {
			if err := readResponse(readers[i], 200); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		conns[2].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := readers[2].Peek(1); !isTimeout(err) {
			t.Fatalf("a third connection was served at a cap of 2 (%v)", err)
		}
		conns[0].Close()
		conns[2].SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := readResponse(readers[2], 200); err != nil {
			t.Errorf("the third connection once the first closed: %v", err)
		}
	})
}

// rawUpstreamFunc serves each accepted connection with serve, for
// upstreams that misbehave in ways net/http's server would not.
func rawUpstreamFunc(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
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
			wg.Go(func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return "http://" + ln.Addr().String()
}

// readRequestHead reads one request head (and no body) and returns its method.
func readRequestHead(br *bufio.Reader) (string, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return "", err
	}
	if _, err := tp.ReadMIMEHeader(); err != nil {
		return "", err
	}
	method, _, _ := strings.Cut(line, " ")
	return method, nil
}

func TestUpstreamResponsesAreFramedAsTheUpstreamFramedThem(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		for _, c := range []struct {
			name, response, method string
			status                 int
			body                   string
		}{
			{"no length: the body ends with the connection", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", "GET", 200, "until the end"},
			{"HTTP/1.0 with a length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", 200, "hello"},
			{"chunked with extensions and a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n", "GET", 200, "hello world"},
			{"HEAD with a length and no body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", 200, ""},
			{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, ""},
			{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", "GET", 304, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				up := rawUpstreamFunc(t, func(conn net.Conn, br *bufio.Reader) {
					if _, err := readRequestHead(br); err == nil {
						io.WriteString(conn, c.response)
					}
				})
				s := start(t, fw, up)
				req, _ := http.NewRequest(c.method, s.url+"/messages", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != c.status || string(body) != c.body {
					t.Errorf("got %d %q (%v), want %d %q", resp.StatusCode, body, err, c.status, c.body)
				}
				if strings.Contains(c.name, "trailer") && resp.Trailer.Get("X-Sum") != "9" {
					t.Errorf("trailer lost: %v", resp.Trailer)
				}
				if resp.Header.Get("Date") == "" {
					t.Error("no Date header: the proxy adds one when the upstream sends none")
				}
			})
		}
	})
}

func TestAMalformedUpstreamResponseGets502(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := rawUpstreamFunc(t, func(conn net.Conn, br *bufio.Reader) {
			if _, err := readRequestHead(br); err == nil {
				io.WriteString(conn, "HTTP/1.1 OK 200\r\n\r\n")
			}
		})
		s := start(t, fw, up)
		resp, err := http.Get(s.url + "/messages")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 502 || resp.Header.Get("X-Slolab-Error") != "upstream failed" {
			t.Errorf("got %d (%s), want 502 (upstream failed)", resp.StatusCode, resp.Header.Get("X-Slolab-Error"))
		}
		if w := waitRecorded(t, s, "read", 1); w.Bad != 1 {
			t.Error("the 502 was recorded as good")
		}
	})
}

// An upstream that closes each connection after one response, without
// saying so: the proxy's next request on that connection finds it closed
// and goes again on a fresh one (idempotent requests, as net/http does).
func TestAnUpstreamThatClosesKeepAliveConnectionsUnannouncedIsRetried(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := rawUpstreamFunc(t, func(conn net.Conn, br *bufio.Reader) {
			if _, err := readRequestHead(br); err == nil {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		s := start(t, fw, up)
		client := keepAliveClient(1)
		for i := range 20 {
			resp, err := client.Get(s.url + "/messages")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %s", i, resp.Status)
			}
		}
	})
}

func TestInterimResponsesPassThrough(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</app.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", s.url+"/messages", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if fmt.Sprint(hints) != "[103 </app.css>; rel=preload]" || string(body) != "page" {
			t.Errorf("interim responses %v, body %q", hints, body)
		}
	})
}

// Requests on one connection, sent before any answer (pipelining), are
// answered in order.
func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n"+
			"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
			"GET /messages/7 HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		for _, want := range []string{"ok GET /messages\n", "ok POST /tasks\n", "ok GET /messages/7\n"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Errorf("got %q, want %q", body, want)
			}
		}
	})
}

// Requests the dedicated path leaves to net/http are served all the same,
// on the same connection as the requests before them.
func TestRequestsTheDedicatedPathLeavesToNetHTTPAreServed(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		for _, c := range []struct {
			name, request, want string
			status              int
		}{
			{"a head over 4 KiB", "GET /messages HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("a", 6000) + "\r\n\r\n", "ok GET /messages\n", 200},
			{"HTTP/1.0", "GET /messages HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "ok GET /messages\n", 200},
			{"a chunked body", "POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "ok POST /tasks\n", 200},
			{"Expect: 100-continue", "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello", "ok POST /tasks\n", 200},
			{"an invalid field name", "GET /messages HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", "", 400},
			{"no Host", "GET /messages HTTP/1.1\r\n\r\n", "", 400},
		} {
			t.Run(c.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(conn)
				fmt.Fprint(conn, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n") // one for the dedicated path first
				if err := readResponse(br, 200); err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(conn, c.request)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == http.StatusContinue {
					resp, err = http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || c.status == 200 && string(body) != c.want {
					t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, c.status, c.want)
				}
			})
		}
	})
}

// A status fault answers without reading the request's body; the body is
// read and dropped so that the connection serves the next request.
func TestAStatusFaultLeavesTheConnectionUsable(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		put(t, s.faults, `{"name": "busy", "match": {"cuj": "task"}, "status": 503}`)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n%s", strings.Repeat("x", 10000))
		if err := readResponse(br, 503); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := readResponse(br, 200); err != nil {
			t.Errorf("the next request on the connection: %v", err)
		}
	})
}

// Connection: close from the client ends the connection after the response, which says so.
func TestConnectionCloseEndsTheConnection(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !resp.Close {
			t.Error("the response does not say Connection: close")
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("after the response: %v, want the connection closed", err)
		}
	})
}

// A client that breaks off its upload while the upstream waits for the
// rest is the client's doing: 499, not counted against availability.
func TestAClientThatBreaksOffItsUploadIsNotCountedBad(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		got := make(chan int64, 1)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			got <- n
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n%s", strings.Repeat("x", 100000))
		c.Close()
		if n := <-got; n >= 1000000 {
			t.Fatalf("the upstream read %d bytes of a body cut short", n)
		}
		if w := waitRecorded(t, s, "upload", 1); w.Bad != 0 {
			t.Error("a client breaking off its upload counted against availability")
		}
	})
}

// A chunked response that also names a length: the chunks frame the body,
// and the length is not passed on, lest the client believe it (RFC 9112 6.3).
func TestAResponseFramedTwiceLosesItsLength(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		up := rawUpstreamFunc(t, func(conn net.Conn, br *bufio.Reader) {
			if _, err := readRequestHead(br); err == nil {
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
			}
		})
		s := start(t, fw, up)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n")
		tp := textproto.NewReader(bufio.NewReader(c))
		status, _ := tp.ReadLine()
		h, err := tp.ReadMIMEHeader()
		if err != nil || status != "HTTP/1.1 200 OK" || h.Get("Content-Length") != "" || h.Get("Transfer-Encoding") != "chunked" {
			t.Errorf("the client got %q %v (%v)", status, h, err)
		}
	})
}

// A request pipelined while the one before it is being served arrives
// before the proxy waits for it (its readiness already passed): it is
// answered all the same.
func TestARequestPipelinedDuringTheOneBeforeIsAnswered(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		arrived := make(chan struct{}, 2)
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			time.Sleep(5 * time.Millisecond)
			fmt.Fprintf(w, "ok %s", r.URL.Path)
		}))
		defer up.Close()
		s := start(t, fw, up.URL)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, "GET /messages/1 HTTP/1.1\r\nHost: x\r\n\r\n")
		<-arrived // the first is at the upstream: the second comes while it is served
		fmt.Fprint(c, "GET /messages/2 HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		for _, want := range []string{"ok /messages/1", "ok /messages/2"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != want {
				t.Errorf("got %q, want %q", body, want)
			}
		}
	})
}

// A body that comes well after its head, on a keep-alive connection: the
// deadlines that bound the wait for a head do not cut it off, on the way a
// rule that rewrites the request takes either.
func TestABodyThatComesLateIsForwardedWhole(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		put(t, s.faults, `{"name": "tag", "match": {"cuj": "update"}, "patch": {"request": {"headers": {"X-Tag": "1"}}}}`)
		for _, path := range []string{"/tasks", "/update"} { // no rule; a rule that patches the request
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			fmt.Fprint(c, "GET /messages HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := readResponse(br, 200); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", path)
			time.Sleep(300 * time.Millisecond)
			fmt.Fprint(c, "hello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "ok POST "+path+"\n" {
				t.Errorf("%s: got %d %q", path, resp.StatusCode, body)
			}
		}
	})
}

// A request with Expect: 100-continue gets exactly one 100 Continue before
// its answer: net/http's own, sent when the body is first read, and not the
// upstream's as well. Which of the two came first was a race, so the request
// is sent many times.
func TestExpectContinueGetsOneInterimResponse(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		s := start(t, fw, okServer(t).URL)
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		for i := range 50 {
			fmt.Fprint(conn, "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusContinue {
				t.Fatalf("request %d: got %d before the body was sent, want 100", i, resp.StatusCode)
			}
			fmt.Fprint(conn, "hello")
			if err := readResponse(br, 200); err != nil {
				t.Fatalf("request %d, after its 100 Continue: %v", i, err)
			}
		}
	})
}
