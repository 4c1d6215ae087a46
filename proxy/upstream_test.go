package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dialPair returns an upConn to a loopback listener and the server's end.
func dialPair(t *testing.T) (*upConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newUpstreamPool(ln.Addr().String(), ln.Addr().String())
	uc, err := p.get(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.nc.Close(); srv.Close() })
	return uc, srv
}

func pend(uc *upConn, s string) {
	bp := heads.Get().(*[]byte)
	*bp = append((*bp)[:0], s...)
	uc.out.hold(*bp, bp)
}

// The request goes out from inside the read that waits for its response.
func TestTheRequestIsWrittenByTheReadThatWaitsForItsResponse(t *testing.T) {
	uc, srv := dialPair(t)
	pend(uc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	go func() {
		br := bufio.NewReader(srv)
		if req, err := http.ReadRequest(br); err == nil && req.Method == "GET" {
			io.WriteString(srv, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}()
	resp, err := http.ReadResponse(uc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "ok" || uc.out.held() {
		t.Errorf("got %d %q, still held: %v", resp.StatusCode, body, uc.out.held())
	}
}

// A read whose deadline has passed before it could begin (a goroutine
// descheduled past the 10ms watch) keeps the request for the next read:
// it once lost it, and the client waited for the upstream's timeout.
func TestARequestWhoseReadTimedOutBeforeItBeganStillGoesOut(t *testing.T) {
	uc, srv := dialPair(t)
	pend(uc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	uc.setDeadline(time.Now().Add(-time.Second))
	if _, err := uc.br.Peek(1); !isTimeout(err) {
		t.Fatalf("a read past its deadline: %v", err)
	}
	if !uc.out.held() {
		t.Fatal("the request was dropped with the read")
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(srv).ReadString('\n')
		got <- line
		io.WriteString(srv, "HTTP/1.1 204 No Content\r\n\r\n")
	}()
	uc.setDeadline(time.Now().Add(10 * time.Second))
	if _, err := uc.br.Peek(1); err != nil {
		t.Fatal(err)
	}
	if line := <-got; line != "GET / HTTP/1.1\r\n" {
		t.Errorf("the upstream got %q", line)
	}
}

// A request larger than the socket buffer takes: what the read's write
// could not send goes the usual way.
func TestALargeRequestGoesOutWhole(t *testing.T) {
	uc, srv := dialPair(t)
	big := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n" + strings.Repeat("x", 8_000_000)
	pend(uc, big)
	done := make(chan bool, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(srv, int64(len(big))))
		done <- bytes.Equal(b, []byte(big))
		io.WriteString(srv, "HTTP/1.1 204 No Content\r\n\r\n")
	}()
	uc.setDeadline(time.Now().Add(10 * time.Second))
	if _, err := uc.br.Peek(1); err != nil {
		t.Fatal(err)
	}
	if !<-done {
		t.Error("the upstream got the request altered")
	}
}

// An idle connection the upstream has closed is seen as dead before use.
func TestAnIdleConnectionTheUpstreamClosedIsNotAlive(t *testing.T) {
	uc, srv := dialPair(t)
	if !alive(uc.nc) {
		t.Fatal("an open idle connection is not alive")
	}
	srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for alive(uc.nc) {
		if time.Now().After(deadline) {
			t.Fatal("a connection closed by the upstream stays alive")
		}
		time.Sleep(time.Millisecond) // the FIN crosses loopback
	}
}
