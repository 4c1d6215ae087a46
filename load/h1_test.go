package load_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/load"
)

// scripted is a loopback HTTP/1.1 server whose answers the test writes: it
// parses each request with net/http and writes answer(req) to the socket
// as it is, so it can frame responses any way HTTP/1.1 allows. A response
// ending with "close" makes it close the connection after writing it.
type scripted struct {
	addr   string
	conns  atomic.Int64
	mu     sync.Mutex
	seen   []string // "METHOD URI body" of every request
	answer func(r *http.Request, body string) (resp string, closeAfter bool)
}

func newScripted(t *testing.T, answer func(r *http.Request, body string) (string, bool)) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{addr: ln.Addr().String(), answer: answer}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					s.mu.Lock()
					s.seen = append(s.seen, req.Method+" "+req.RequestURI+" "+string(body))
					s.mu.Unlock()
					resp, closeAfter := s.answer(req, string(body))
					if _, err := io.WriteString(c, resp); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return s
}

// onePlan is a plan of n requests at rate/s for a one-CUJ service whose
// requests come from the given templates (YAML list items).
func onePlan(t *testing.T, requests string, perSecond, n uint64) *load.Plan {
	t.Helper()
	svc := service(t, `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - name: c
      owner: o
      routes: ["/"]
      availability: {objective: 99%}
      load:
        requests:
`+requests)
	d := time.Duration(n) * time.Second / time.Duration(perSecond)
	p, err := load.NewPlan(svc, load.PlanConfig{Stages: constant(rate(perSecond, time.Second), d), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runPlan(t *testing.T, cfg load.Config) *load.Report {
	t.Helper()
	g, err := load.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResponsesFramedEveryWayHTTP11AllowsAreReadWholeAndTheConnectionKeptWhenItMayBe(t *testing.T) {
	answers := map[string]string{
		"/length":  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: done\r\n\r\n",
		"/empty":   "HTTP/1.1 204 No Content\r\n\r\n",
		"/cached":  "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", // 304 has no body whatever it says
		"/early":   "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
		"/missing": "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
		"/failing": "HTTP/1.1 503 Service Unavailable\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbusy",
		"/big":     "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000),
		"/long":    "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("y", 20000) + "\r\nContent-Length: 2\r\n\r\nok",
	}
	srv := newScripted(t, func(r *http.Request, _ string) (string, bool) {
		if r.Method == http.MethodHead {
			return "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n", false // a HEAD answer has no body
		}
		return answers[r.URL.Path], false
	})
	p := onePlan(t, `          - {path: /length}
          - {path: /chunked}
          - {path: /empty}
          - {path: /cached}
          - {path: /early}
          - {path: /missing}
          - {path: /failing}
          - {path: /big}
          - {path: /long}
          - {method: HEAD, path: /head}
`, 1000, 1000)
	// One request in flight at a time (a request due while one is in
	// flight is dropped), so every response is read on the connection the
	// one before it left.
	r := runPlan(t, load.Config{Plan: p, Target: "http://" + srv.addr, MaxInFlight: 1})
	c := r.Total
	var want load.StatusCounts
	for _, s := range srv.seen {
		switch strings.Fields(s)[1] {
		case "/cached":
			want.C3xx++
		case "/missing":
			want.C4xx++
		case "/failing":
			want.C5xx++
		default:
			want.C2xx++
		}
	}
	if c.Sent+c.Dropped != 1000 || c.Sent != uint64(len(srv.seen)) || c.Errors != 0 || c.Status != want || want.C3xx == 0 {
		t.Fatalf("sent %d dropped %d errors %d (%s) status %+v; want every answer read, status %+v", c.Sent, c.Dropped, c.Errors, c.LastError, c.Status, want)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("the server saw %d connections; every response allowed keep-alive, so one should carry them all", n)
	}
}

func TestAConnectionTheServerEndsIsNotReusedAndNothingFails(t *testing.T) {
	srv := newScripted(t, func(r *http.Request, _ string) (string, bool) {
		switch r.URL.Path {
		case "/close": // announced
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true
		case "/http10": // HTTP/1.0 without keep-alive, body ended by the close
			return "HTTP/1.0 200 OK\r\n\r\nthe body runs to the end", true
		}
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", true
	})
	p := onePlan(t, `          - {path: /close}
          - {path: /http10}
          - {path: /upgrade}
`, 300, 300)
	r := runPlan(t, load.Config{Plan: p, Target: "http://" + srv.addr})
	c := r.Total
	if c.Sent != 300 || c.Errors != 0 || c.Status.C2xx != 200 || c.Status.C1xx != 100 {
		t.Fatalf("sent %d dropped %d errors %d (%s) status %+v; want 300 sent, 200 2xx and 100 1xx, no error", c.Sent, c.Dropped, c.Errors, c.LastError, c.Status)
	}
	if n := srv.conns.Load(); n != 300 {
		t.Errorf("the server saw %d connections, want one per request (each ended its connection)", n)
	}
}

func TestAGetOnAConnectionTheServerClosedUnannouncedIsSentAgainOnANewOne(t *testing.T) {
	// The server closes every connection right after answering, without
	// saying so (as one whose idle timeout fires at that moment): the next
	// request on it finds it closed. A GET may be sent twice, so it goes
	// again on a new connection, as net/http does; the server sees each
	// request once it answers it.
	srv := newScripted(t, func(*http.Request, string) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	p := onePlan(t, "          - {path: /x}\n", 200, 100)
	r := runPlan(t, load.Config{Plan: p, Target: "http://" + srv.addr})
	if c := r.Total; c.Sent != 100 || c.Errors != 0 || c.Status.C2xx != 100 {
		t.Fatalf("sent %d errors %d (%s) 2xx %d; want 100 answered, none failed", c.Sent, c.Errors, c.LastError, c.Status.C2xx)
	}
	if got := len(srv.seen); got != 100 {
		t.Errorf("the server answered %d requests, want 100", got)
	}
}

func TestMalformedResponsesAreErrorsThatSayWhatWasWrong(t *testing.T) {
	for _, tc := range []struct{ name, resp, want string }{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", `malformed HTTP response: status line "SSH-2.0-OpenSSH"`},
		{"a bad status code", "HTTP/1.1 2x0 OK\r\n\r\n", `malformed HTTP response: status line "HTTP/1.1 2x0 OK"`},
		{"a header without a colon", "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok", `malformed HTTP response: header line "Content-Length 2"`},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", `malformed HTTP response: Content-Length "3"`},
		{"a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", `malformed HTTP response: chunk size "zz"`},
		{"a body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScripted(t, func(*http.Request, string) (string, bool) { return tc.resp, true })
			p := onePlan(t, "          - {path: /x}\n", 100, 3)
			r := runPlan(t, load.Config{Plan: p, Target: "http://" + srv.addr})
			if c := r.Total; c.Errors != 3 || c.LastError != tc.want {
				t.Errorf("errors %d, last %q; want 3, %q", c.Errors, c.LastError, tc.want)
			}
		})
	}
}

func TestARequestWithoutAnAnswerTimesOutAndAnInterruptedRunCancelsWhatIsInFlight(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	srv := newScripted(t, func(*http.Request, string) (string, bool) {
		<-hang
		return "", true
	})
	p := onePlan(t, "          - {path: /x}\n", 100, 5)
	r := runPlan(t, load.Config{Plan: p, Target: "http://" + srv.addr, Timeout: 20 * time.Millisecond})
	if c := r.Total; c.Errors != 5 || c.LastError != "timeout" {
		t.Errorf("errors %d, last %q; want 5 timeouts", c.Errors, c.LastError)
	}

	ctx, cancel := context.WithCancel(context.Background())
	g, err := load.New(load.Config{Plan: onePlan(t, "          - {path: /x}\n", 1000, 100000), Target: "http://" + srv.addr, Drain: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	r, err = g.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Total; !r.Interrupted || c.Sent == 0 || c.Cancelled != c.Sent || c.Errors != 0 {
		t.Errorf("interrupted %v sent %d cancelled %d errors %d (%s); want every request in flight cancelled, none an error",
			r.Interrupted, c.Sent, c.Cancelled, c.Errors, c.LastError)
	}
}

// captured is a request as a server sees it: its method, URI, headers
// (without the transport's own) and body.
func captured(r *http.Request, body, srvHost string) string {
	var h []string
	for k, vs := range r.Header {
		for _, v := range vs {
			h = append(h, k+": "+v)
		}
	}
	slices.Sort(h)
	host := r.Host
	if host == srvHost {
		host = "the target"
	}
	return r.Method + " " + r.RequestURI + " host=" + host + " length=" + strconv.FormatInt(r.ContentLength, 10) + "\n" + strings.Join(h, "\n") + "\n\n" + body
}

func TestTheOwnClientSendsWhatNetHTTPSends(t *testing.T) {
	// The same plan through slolab's HTTP/1.1 client and through
	// net/http's Transport: the server must see the same requests, header
	// for header and byte for byte in the body.
	tmpl := `          - method: POST
            path: /items/{id}/ä b?by={user}&x=1
            vars: {id: 1..3, tag: ["a b", "c"]}
            headers: {X-Tag: " {tag} ", Content-Type: application/json, X-Forwarded-For: "1.2.3.4"}
            body: '{"id": {id}}'
          - {method: DELETE, path: "/items/{id}", vars: {id: 1..3}}
          - {method: GET, path: "/", headers: {User-Agent: mine, X-User-ID: "override"}}
          - {method: PUT, path: /p}
`
	run := func(transport http.RoundTripper) []string {
		var mu sync.Mutex
		var got []string
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, captured(r, string(body), strings.TrimPrefix(srv.URL, "http://")))
			mu.Unlock()
		}))
		defer srv.Close()
		r := runPlan(t, load.Config{Plan: onePlan(t, tmpl, 400, 80), Target: srv.URL + "/base", Transport: transport,
			Headers: http.Header{"Authorization": {"Bearer t"}, "X-Two": {"1", "2"}, "X-User-Id": {"configured"}},
			Users:   load.Users{N: 7, Header: "X-User-ID", Cookie: "who"}})
		if r.Total.Status.C2xx != 80 {
			t.Fatalf("2xx %d of 80 (%s)", r.Total.Status.C2xx, r.Total.LastError)
		}
		slices.Sort(got)
		return got
	}
	own, std := run(nil), run(load.NewTransport(100, time.Minute))
	for i := range own {
		if own[i] != std[i] {
			t.Fatalf("request %d differs:\nown client:\n%s\nnet/http:\n%s", i, own[i], std[i])
		}
	}
	if !strings.Contains(own[0]+own[len(own)-1], "User-Agent: "+load.UserAgent) {
		t.Errorf("no request carried the default User-Agent %q:\n%s", load.UserAgent, own[0])
	}
}

func TestHeadersThatCannotBeSentAreRefusedBeforeTheRun(t *testing.T) {
	p := onePlan(t, "          - {path: /x, headers: {\"X-Bad\": \"a\\nb\"}}\n", 10, 1)
	if _, err := load.New(load.Config{Plan: p, Target: "http://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "header X-Bad: the value holds a control character") {
		t.Errorf("err = %v, want the bad header value named", err)
	}
	p = onePlan(t, "          - {path: /x}\n", 10, 1)
	if _, err := load.New(load.Config{Plan: p, Target: "http://127.0.0.1:1", Headers: http.Header{"Bad Name": {"x"}}}); err == nil || !strings.Contains(err.Error(), `header "Bad Name": not a valid field name`) {
		t.Errorf("err = %v, want the bad header name named", err)
	}
}

func TestPathsAreEscapedAsNetHTTPEscapesThem(t *testing.T) {
	for _, p := range []string{"", "/", "/a/b", "/ä", "/a b", "/%41", "/a;b=c,d@e:f$&+", "/!'()*", "/#x", "/\x00\x7f", "*", "/a?b"} {
		want := (&url.URL{Path: p}).RequestURI()
		if got := load.EscapedPath(p); got != want {
			t.Errorf("path %q: got %q, want %q", p, got, want)
		}
	}
}
