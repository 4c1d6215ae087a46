// Package demoapp is the chat service of examples/chat.yaml, built into
// slolab so that `slolab lab` has a real app to put behind the proxy: JSON
// APIs for every route the spec names, a small web UI served by the app
// itself, realistic per-route latencies drawn from a seed, its own embedded
// storage (SQLite in memory) and a dependency reached over TCP (a blob store
// for uploaded files), so a TCP proxy can later sit between the two.
package demoapp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"slolab.dev/slolab/spec"
)

// Config configures the app.
type Config struct {
	// Seed draws the latencies; the same seed gives the same sequence of
	// delays for the same sequence of requests per route.
	Seed uint64
	// Latency overrides the baseline delay of routes, keyed by pattern
	// ("GET /messages"). Routes not named keep DefaultLatency.
	Latency map[string]*spec.Delay
	// NoLatency serves every route as fast as it can (tests).
	NoLatency bool
	// Blobs is the address (host:port) of the blob store holding uploaded
	// files. Empty: the app starts its own on a loopback port. Point it at
	// a TCP proxy in front of a blob store to put the dependency under test.
	Blobs string
	// BlobTimeout bounds each call to the blob store (default 2s).
	BlobTimeout time.Duration
	// Messages is how many messages the app starts with (default 500, the
	// ids the spec's load templates edit and read).
	Messages int
	Now      func() time.Time
	Logger   *slog.Logger
}

// DefaultMessages is the number of seeded messages: ids 1..500, the range
// examples/chat.yaml's load templates use.
const DefaultMessages = 500

func (c *Config) defaults() {
	if c.BlobTimeout == 0 {
		c.BlobTimeout = 2 * time.Second
	}
	if c.Messages == 0 {
		c.Messages = DefaultMessages
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultLatency is each route's baseline: a percentile table with a hard
// maximum, so the app alone never breaks a latency SLO of examples/chat.yaml
// (the tightest threshold, read's, is 300ms; its slowest route here tops out
// at 60ms). Simulations then add exactly what they promise.
var DefaultLatency = map[string]string{
	"POST /login":        "p0=8ms p50=25ms p90=45ms p99=80ms p100=120ms",
	"POST /logout":       "p0=1ms p50=5ms p90=9ms p99=15ms p100=25ms",
	"POST /messages":     "p0=4ms p50=12ms p90=25ms p99=45ms p100=80ms",
	"POST /update":       "p0=5ms p50=15ms p90=30ms p99=60ms p100=100ms",
	"PUT /messages/{id}": "p0=5ms p50=15ms p90=30ms p99=60ms p100=100ms",
	"GET /messages":      "p0=2ms p50=8ms p90=16ms p99=30ms p100=60ms",
	"GET /messages/{id}": "p0=1ms p50=3ms p90=6ms p99=12ms p100=25ms",
	"POST /files":        "p0=10ms p50=40ms p90=80ms p99=150ms p100=250ms",
	"GET /files/{id}":    "p0=3ms p50=10ms p90=20ms p99=40ms p100=80ms",
	"POST /tasks":        "p0=3ms p50=10ms p90=20ms p99=35ms p100=60ms",
	"GET /tasks":         "p0=2ms p50=6ms p90=12ms p99=20ms p100=40ms",
}

//go:embed ui
var uiFiles embed.FS

// App is a running chat service. Create it with New, serve Handler, and
// Close it when done.
type App struct {
	cfg     Config
	db      *store
	blobs   *blobClient
	own     *BlobServer // the blob store the app started itself, if any
	ownDone chan error
	stop    context.CancelFunc
	mux     *http.ServeMux
	latency map[string]*latency
}

// latency draws one route's delays from its own seeded stream.
type latency struct {
	mu    sync.Mutex
	rng   *rand.Rand
	delay *spec.Delay
}

func (l *latency) next() time.Duration {
	l.mu.Lock()
	u := l.rng.Float64()
	l.mu.Unlock()
	return l.delay.Quantile(u)
}

// New opens the app's storage, seeds it and, without Config.Blobs, starts
// its own blob store on a loopback port.
func New(cfg Config) (*App, error) {
	cfg.defaults()
	a := &App{cfg: cfg, mux: http.NewServeMux(), latency: map[string]*latency{}}
	for i, pat := range Routes {
		d := cfg.Latency[pat]
		if d == nil {
			var err error
			if d, err = spec.ParseDelay(DefaultLatency[pat]); err != nil {
				return nil, fmt.Errorf("demo app: baseline latency of %s: %w", pat, err)
			}
		}
		a.latency[pat] = &latency{rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))), delay: d}
	}
	db, err := openStore(cfg.Now, cfg.Messages)
	if err != nil {
		return nil, err
	}
	a.db = db
	addr := cfg.Blobs
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(fmt.Errorf("demo app: starting its blob store: %w", err), db.close())
		}
		ctx, stop := context.WithCancel(context.Background())
		a.own, a.stop, a.ownDone = NewBlobServer(0), stop, make(chan error, 1)
		go func() { a.ownDone <- a.own.Serve(ctx, ln) }()
		addr = ln.Addr().String()
	}
	a.blobs = &blobClient{addr: addr, timeout: cfg.BlobTimeout}
	a.routes()
	return a, nil
}

// Routes are the API routes of the chat service, as examples/chat.yaml names them.
var Routes = []string{
	"POST /login", "POST /logout",
	"POST /messages",
	"POST /update", "PUT /messages/{id}",
	"GET /messages", "GET /messages/{id}",
	"POST /files", "GET /files/{id}",
	"POST /tasks", "GET /tasks",
}

func (a *App) routes() {
	api := map[string]func(http.ResponseWriter, *http.Request) error{
		"POST /login":        a.login,
		"POST /logout":       a.logout,
		"POST /messages":     a.postMessage,
		"POST /update":       a.update,
		"PUT /messages/{id}": a.putMessage,
		"GET /messages":      a.listMessages,
		"GET /messages/{id}": a.getMessage,
		"POST /files":        a.postFile,
		"GET /files/{id}":    a.getFile,
		"POST /tasks":        a.postTask,
		"GET /tasks":         a.listTasks,
	}
	for _, pat := range Routes {
		a.mux.Handle(pat, a.api(pat, api[pat]))
	}
	ui, _ := fs.Sub(uiFiles, "ui")
	a.mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(ui)))
	a.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, ui, "index.html")
	})
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
}

// Handler returns the app: its API, its UI at / and /healthz.
func (a *App) Handler() http.Handler { return a.mux }

// Baseline returns the delay the app waits before it answers a route (a
// pattern of Routes), and false for a route it does not serve; zero with
// Config.NoLatency. Besides its delays the app fails no request by itself:
// its only 5xx come from its dependency, the blob store. The lab's
// synthetic history is made from this baseline.
func (a *App) Baseline(pat string) (*spec.Delay, bool) {
	l, ok := a.latency[pat]
	if !ok {
		return nil, false
	}
	if a.cfg.NoLatency {
		return &spec.Delay{Kind: spec.DelayFixed}, true
	}
	return l.delay, true
}

// BlobAddr returns the address of the blob store the app calls.
func (a *App) BlobAddr() string { return a.blobs.addr }

// Close stops the app's own blob store and closes its storage.
func (a *App) Close() error {
	var errs []error
	if a.own != nil {
		a.stop()
		errs = append(errs, <-a.ownDone)
	}
	errs = append(errs, a.db.close())
	return errors.Join(errs...)
}

// api wraps a handler: it waits out the route's baseline latency, then
// answers (the app's own work takes well under a millisecond), turning errors
// into JSON with their status.
func (a *App) api(pat string, fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	lat := a.latency[pat]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if !a.cfg.NoLatency {
			if !sleepUntil(r.Context(), start.Add(lat.next())) {
				return
			}
		}
		if err := fn(w, r); err != nil {
			writeError(w, err)
			if st := statusOf(err); st >= 500 && r.Context().Err() == nil {
				a.cfg.Logger.Warn("demo app", "route", pat, "err", err)
			}
		}
	})
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
