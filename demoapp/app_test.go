package demoapp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/demoapp"
	"slolab.dev/slolab/examples"
	"slolab.dev/slolab/load"
	"slolab.dev/slolab/spec"
)

func chat(t *testing.T) *spec.Service {
	t.Helper()
	f, err := spec.Parse(examples.ChatPath, examples.Chat)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func newApp(t *testing.T, cfg demoapp.Config) (*demoapp.App, *httptest.Server) {
	t.Helper()
	app, err := demoapp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := app.Close(); err != nil {
			t.Error(err)
		}
	})
	return app, srv
}

func TestTheAppServesExactlyTheRoutesOfTheChatSpec(t *testing.T) {
	var want []string
	for _, c := range chat(t).CUJs {
		for _, r := range c.Routes {
			want = append(want, r.Pattern)
		}
	}
	got := slices.Clone(demoapp.Routes)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("routes:\n got %q\nwant %q", got, want)
	}
	for _, pat := range demoapp.Routes {
		if _, ok := demoapp.DefaultLatency[pat]; !ok {
			t.Errorf("%s has no baseline latency", pat)
		}
	}
}

func TestEveryLoadTemplateOfTheChatSpecSucceeds(t *testing.T) {
	_, srv := newApp(t, demoapp.Config{NoLatency: true})
	plan, err := load.NewPlan(chat(t), load.PlanConfig{Stages: []load.Stage{{From: spec.Rate{Freq: 400, Per: time.Second}, Duration: time.Second}}, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	gen, err := load.New(load.Config{Plan: plan, Target: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := gen.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.CUJs {
		if c.Sent == 0 || c.Status.C2xx != c.Sent {
			t.Errorf("CUJ %s: sent %d, answered %+v, errors %d (%s)", c.Name, c.Sent, c.Status, c.Errors, c.LastError)
		}
	}
}

type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func (c *client) do(method, path, ctype, body string) (int, http.Header, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(data)
}

func TestAUserLogsInSendsEditsReadsUploadsAndAddsATask(t *testing.T) {
	_, srv := newApp(t, demoapp.Config{NoLatency: true, Messages: 3})
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: srv.URL, http: &http.Client{Jar: jar}}
	const js = "application/json"
	steps := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string // a substring of the response
	}{
		{"a wrong password is refused", "POST", "/login", js, `{"user":"alice","password":"nope"}`, 401, `wrong password: every demo user's password is \"demo\"`},
		{"an unknown field is refused", "POST", "/login", js, `{"user":"alice","pass":"demo"}`, 400, `unknown field \"pass\"`},
		{"alice logs in", "POST", "/login", js, `{"user":"alice","password":"demo"}`, 200, `"user":"alice"`},
		{"she sends a message as herself", "POST", "/messages", js, `{"room":"random","text":"hi all"}`, 201, `"id":4,"room":"random","author":"alice","text":"hi all"`},
		{"a room must exist", "POST", "/messages", js, `{"room":"nope","text":"x"}`, 404, `no room \"nope\": the rooms are general, random, ops`},
		{"she edits it by id", "PUT", "/messages/4", js, `{"text":"hi everyone"}`, 200, `"text":"hi everyone"`},
		{"the legacy edit route works too", "POST", "/update", js, `{"id":4,"text":"hello everyone"}`, 200, `"text":"hello everyone","created"`},
		{"editing a missing message is a 404", "POST", "/update", js, `{"id":99,"text":"x"}`, 404, `no message 99`},
		{"the room lists it last", "GET", "/messages?room=random", "", "", 200, `"text":"hello everyone"`},
		{"it reads by id", "GET", "/messages/4", "", "", 200, `"author":"alice"`},
		{"a bad id is a 400", "GET", "/messages/x", "", "", 400, `id: want a positive integer, got \"x\"`},
		{"she uploads a file", "POST", "/files?name=notes.txt", "text/plain", "the notes", 201, `"id":1,"name":"notes.txt","type":"text/plain","size":9,"author":"alice"`},
		{"and reads it back through the blob store", "GET", "/files/1", "", "", 200, "the notes"},
		{"she adds a task from the message", "POST", "/tasks", js, `{"title":"reply","message":4}`, 201, `"title":"reply","author":"alice","message":4`},
		{"the task list shows it", "GET", "/tasks", "", "", 200, `"title":"reply"`},
		{"she logs out", "POST", "/logout", "", "", 200, `{"loggedOut":true}`},
		{"and is a guest again", "POST", "/messages", js, `{"room":"ops","text":"anon"}`, 201, `"author":"guest"`},
	}
	for _, s := range steps {
		status, _, body := c.do(s.method, s.path, s.ctype, s.body)
		if status != s.status || !strings.Contains(body, s.want) {
			t.Errorf("%s: %s %s = %d %s; want %d containing %s", s.name, s.method, s.path, status, body, s.status, s.want)
		}
	}
}

func TestTheUIIsServedAtTheRoot(t *testing.T) {
	_, srv := newApp(t, demoapp.Config{NoLatency: true})
	c := &client{t: t, base: srv.URL, http: srv.Client()}
	for path, want := range map[string]string{
		"/":           "<title>Chat — the slolab demo app</title>",
		"/ui/app.js":  `call("read", "GET", ` + "`messages?room=",
		"/ui/app.css": "#messages",
		"/healthz":    "ok",
	} {
		if status, _, body := c.do("GET", path, "", ""); status != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want 200 with %q", path, status, want)
		}
	}
}

func TestUploadsFailWith502WhenTheBlobStoreIsDownAndTheRestWorks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, srv := newApp(t, demoapp.Config{NoLatency: true, Blobs: addr, BlobTimeout: time.Second})
	c := &client{t: t, base: srv.URL, http: srv.Client()}
	status, _, body := c.do("POST", "/files", "text/plain", "x")
	if status != 502 || !strings.Contains(body, "the blob store is unavailable") {
		t.Errorf("upload with the blob store down = %d %s, want 502 naming the blob store", status, body)
	}
	if status, _, _ := c.do("GET", "/messages/1", "", ""); status != 200 {
		t.Errorf("read with the blob store down = %d, want 200", status)
	}
}

func TestTheAppUsesABlobStoreGivenByAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- demoapp.NewBlobServer(0).Serve(ctx, ln) }()
	app, srv := newApp(t, demoapp.Config{NoLatency: true, Blobs: ln.Addr().String()})
	if app.BlobAddr() != ln.Addr().String() {
		t.Errorf("BlobAddr = %s, want %s", app.BlobAddr(), ln.Addr())
	}
	c := &client{t: t, base: srv.URL, http: srv.Client()}
	if status, _, body := c.do("POST", "/files?name=a.bin", "application/octet-stream", "\x00\x01"); status != 201 {
		t.Fatalf("upload = %d %s", status, body)
	}
	if status, h, body := c.do("GET", "/files/1", "", ""); status != 200 || body != "\x00\x01" || h.Get("Content-Security-Policy") != "sandbox" {
		t.Errorf("download = %d %q %v", status, body, h)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestBaselineLatenciesAreSeededAndBounded(t *testing.T) {
	draw := func(seed uint64) []time.Duration {
		app, err := demoapp.New(demoapp.Config{Seed: seed, Messages: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer app.Close()
		var out []time.Duration
		for range 1000 {
			out = append(out, app.NextDelay("GET /messages"))
		}
		return out
	}
	a, b, c := draw(1), draw(1), draw(2)
	if !slices.Equal(a, b) {
		t.Error("the same seed drew different delays")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds drew the same delays")
	}
	d, _ := spec.ParseDelay(demoapp.DefaultLatency["GET /messages"])
	lo, hi := slices.Min(a), slices.Max(a)
	if lo < d.Lower() || hi > d.Upper() {
		t.Errorf("delays in [%v, %v], want within [%v, %v]", lo, hi, d.Lower(), d.Upper())
	}
	sorted := slices.Sorted(slices.Values(a))
	if med := sorted[500]; med < 6*time.Millisecond || med > 10*time.Millisecond {
		t.Errorf("median of 1000 draws = %v, want about 8ms", med)
	}
}
