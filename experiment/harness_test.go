package experiment

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// lab is a proxy stack in memory: an upstream function, the proxy, its
// admin API and a client of it, and steady traffic from many users. Run it
// inside a synctest bubble; every wait is then exact.
type lab struct {
	t       *testing.T
	svc     *spec.Service
	faults  *fault.Registry
	rec     *sli.Recorder
	proxy   http.Handler
	admin   *admin.Client
	stop    context.CancelFunc
	wg      sync.WaitGroup
	failing sync.Map // path → upstream status while set
	slow    sync.Map // path → upstream delay while set
	sent    atomic.Int64
}

// handlerTransport serves requests with a handler in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return testtool.ServeInMemory(t.h, req), nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newLab(t *testing.T, svcYAML string) *lab {
	t.Helper()
	f, err := spec.Parse("svc.yaml", []byte(svcYAML))
	if err != nil {
		t.Fatal(err)
	}
	return newLabFor(t, f.Services[0], nil)
}

// newLabFor runs the proxy for svc in front of app (nil: a stub upstream
// that answers 200, or what l.failing and l.slow say).
func newLabFor(t *testing.T, svc *spec.Service, app http.Handler) *lab {
	t.Helper()
	routes, err := match.Compile(svc)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, svc: svc}
	l.faults, _ = fault.NewRegistry(fault.Config{Service: svc, Routes: routes})
	l.rec = sli.New(sli.Config{Service: svc, Routes: routes})
	var upstream http.RoundTripper = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if d, ok := l.slow.Load(r.URL.Path); ok {
			time.Sleep(d.(time.Duration))
		}
		code := http.StatusOK
		if c, ok := l.failing.Load(r.URL.Path); ok {
			code = c.(int)
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	if app != nil {
		upstream = handlerTransport{app}
	}
	u, _ := url.Parse("http://app")
	p, err := proxy.New(proxy.Config{Upstream: u, Routes: routes, Faults: l.faults, Recorder: l.rec, Transport: upstream})
	if err != nil {
		t.Fatal(err)
	}
	l.proxy = p
	h, err := admin.NewHandler(admin.Config{Service: svc, Routes: routes, Faults: l.faults, Recorder: l.rec, AllowHosts: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	l.admin, _ = admin.NewClient("http://admin", "")
	l.admin.SetTransport(handlerTransport{h})
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	l.wg.Add(2)
	go func() { defer l.wg.Done(); l.faults.Run(ctx) }()
	go func() { defer l.wg.Done(); l.rec.Run(ctx) }()
	t.Cleanup(l.close)
	return l
}

// traffic sends, every tick, one request to each path from the next of
// users users, until the lab closes.
func (l *lab) traffic(tick time.Duration, users int, paths ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	prev := l.stop
	l.stop = func() { cancel(); prev() }
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, p := range paths {
				method, path, _ := strings.Cut(p, " ")
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader(fmt.Sprintf(`{"id": %d, "text": "edit %d"}`, 1+n%500, n))
				}
				req := httptest.NewRequest(method, path, body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-User-ID", fmt.Sprintf("user-%d", n%users))
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					l.proxy.ServeHTTP(httptest.NewRecorder(), req)
					l.sent.Add(1)
				}()
			}
		}
	}()
}

func (l *lab) close() {
	l.stop()
	l.wg.Wait()
}

// compile reads an Experiment document (indented spec body) against the lab's service.
func (l *lab) compile(body string) *Compiled {
	l.t.Helper()
	f, err := spec.Parse("x.yaml", []byte("apiVersion: slolab.dev/v1\nkind: Experiment\nmetadata: {name: x}\nspec:\n"+body))
	if err != nil {
		l.t.Fatal(err)
	}
	c, err := Compile(f.Experiments[0], l.svc)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func (l *lab) run(ctx context.Context, c *Compiled, opts ...func(*Config)) *Report {
	l.t.Helper()
	cfg := Config{Compiled: c, Proxy: l.admin, View: AdminView{Client: l.admin}}
	for _, o := range opts {
		o(&cfg)
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	return rep
}

// sinceEnd is how long ago a run ended.
func (l *lab) sinceEnd(r *Report) time.Duration { return time.Since(r.Ended) }

// leftovers lists what the proxy still applies: active rules and an active grouping.
func (l *lab) leftovers() []string {
	var out []string
	sts, err := l.admin.ListFaults(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	for _, st := range sts {
		if st.State == fault.StateActive || st.State == fault.StatePending {
			out = append(out, "fault "+st.Rule.Name)
		}
	}
	for _, g := range l.faults.Groupings() {
		if g.Active {
			out = append(out, "grouping "+g.Grouping.Run)
		}
	}
	return out
}
