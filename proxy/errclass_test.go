package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/proxy"
)

// The proxy classifies errors on both paths alike: bodies that differ in
// ids are one class, whether the upstream sends them with a length, in
// chunks or long; a success is no class; injected answers are apart.
func TestProxyClassifiesErrors(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("id")
			switch r.URL.Query().Get("as") {
			case "ok":
				fmt.Fprintln(w, "fine")
			case "chunked":
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(500)
				fmt.Fprintf(w, `{"error":"message %s not found",`, id)
				w.(http.Flusher).Flush()
				fmt.Fprint(w, `"trace":"x"}`)
			case "long":
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(500)
				fmt.Fprintf(w, `{"error":"message %s not found","pad":"%s"}`, id, strings.Repeat("p", 64<<10))
			default:
				http.Error(w, `{"error":"message `+id+` not found"}`, 500)
			}
		}))
		defer app.Close()
		classes := errclass.New(errclass.Config{})
		s := start(t, fw, app.URL, func(c *proxy.Config, _ *proxy.ServeOptions) { c.Classes = classes })
		for i, as := range []string{"length", "chunked", "long", "ok"} {
			resp, err := http.Post(fmt.Sprintf("%s/update?as=%s&id=%d", s.url, as, 100+i), "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) // a client that leaves early is a 499, no error
			resp.Body.Close()
		}
		put(t, s.faults, `{"name": "boom", "match": {"cuj": "send"}, "status": {"code": 503, "body": "{\"error\":\"overloaded\"}"}}`)
		resp, err := http.Post(s.url+"/messages", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		got := classes.Classes()
		sort.Slice(got, func(i, j int) bool { return got[i].CUJ > got[j].CUJ })
		if len(got) != 2 {
			t.Fatalf("classes = %+v, want 2", got)
		}
		own, inj := got[0], got[1]
		if own.CUJ != "update" || own.Route != "POST /update" || own.Status != 500 || own.Kind != errclass.KindStatus ||
			own.Signature != "error=message <n> not found" || own.Count != 3 || own.Injected || own.Example.Path != "/update" {
			t.Errorf("the app's class = %+v", own)
		}
		if len(own.Example.Body) > errclass.DefaultSampleSize {
			t.Errorf("example body is %d bytes, want at most the sample size", len(own.Example.Body))
		}
		if inj.CUJ != "send" || inj.Status != 503 || !inj.Injected || inj.Signature != "error=overloaded" || inj.Example.Fault != "boom" {
			t.Errorf("the injected class = %+v", inj)
		}
	})
}

// Failures without a response of the upstream's are classified by kind.
func TestProxyClassifiesFailures(t *testing.T) {
	bothPaths(t, func(t *testing.T, fw forwarding) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close() // nobody listens there: dialling fails
		classes := errclass.New(errclass.Config{})
		s := start(t, fw, dead, func(c *proxy.Config, _ *proxy.ServeOptions) { c.Classes = classes })
		resp, err := http.Post(s.url+"/update", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		put(t, s.faults, `{"name": "cut", "match": {"cuj": "send"}, "abort": true}`)
		if resp, err := http.Post(s.url+"/messages", "text/plain", nil); err == nil {
			resp.Body.Close()
			t.Fatalf("an aborted request got %s", resp.Status)
		}
		kinds := map[string]errclass.Class{}
		for _, cl := range classes.Classes() {
			kinds[cl.Kind] = cl
		}
		if cl := kinds[errclass.KindUnreachable]; cl.Status != 502 || cl.CUJ != "update" || cl.Signature != "" || cl.Count != 1 {
			t.Errorf("unreachable class = %+v (all: %+v)", cl, kinds)
		}
		if cl := kinds[errclass.KindAbort]; cl.Status != 0 || cl.CUJ != "send" || !cl.Injected || cl.Count != 1 {
			t.Errorf("abort class = %+v (all: %+v)", cl, kinds)
		}
	})
}
