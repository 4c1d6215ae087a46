// Package web is slolab's dashboard: a CUJ table with SLIs, budgets, burn
// rates and alerts, charts over time, a panel that simulates SLO states,
// the active faults with their leases, and the audit log, served with its
// own JSON API from files embedded in the binary (no CDN, no npm at run
// time).
//
// The CUJ table is the SLO engine's view: slo.Evaluate over an Engine's
// source (the embedded store, the store with the proxy's newest intervals,
// or Prometheus), with SLIs over each SLO's window, the budget left, burn
// rates over the engine's windows and its multiwindow alerts. Traffic, the
// charts, faults and the audit log come from a proxy's admin API. One
// poller reads both every Config.Poll and keeps the history the charts
// draw, so any number of browsers, however slow, cost the proxy one request
// per poll. The dashboard's API is behind httpapi's guard (Host, origin,
// JSON bodies) and needs the admin token when one is set, for reads and for
// changes (starting a simulation, stopping a fault), which reach the proxy
// with the dashboard's own admin client. Simulations are planned
// by slo.PlanFor, the same planner as 'slolab simulate'.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Admin is what the dashboard needs of a proxy's admin API.
type Admin interface {
	CUJs(ctx context.Context) (*admin.CUJsResponse, error)
	ListFaults(ctx context.Context) ([]fault.Status, error)
	PutFault(ctx context.Context, r *spec.FaultRule) (fault.Status, error)
	DeleteFault(ctx context.Context, name string) (fault.Status, error)
	Audit(ctx context.Context, limit int) ([]admin.AuditEntry, error)
}

var _ Admin = (*admin.Client)(nil)

// Engine is where the CUJ table's SLO view comes from: slo.Evaluate over
// Source, judged at Instant.
type Engine struct {
	Source slo.Source
	// Instant returns the instant to judge at, given the time now: the end
	// of the newest data Source holds completely.
	Instant func(ctx context.Context, now time.Time) (time.Time, error)
	// Name says where the events come from, for the page.
	Name string
}

// Rejudge is how often the engine judges again when its instant has not
// moved (Prometheus may still be filling in the last minute).
const Rejudge = 30 * time.Second

// Link is a URL the dashboard's header offers: the app, the admin API.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Config configures a dashboard.
type Config struct {
	// Service is the spec the proxy runs: the CUJs, their SLOs and alerts.
	Service *spec.Service
	Admin   Admin
	// Engine judges the SLOs for the CUJ table; without one the table shows
	// the SLOs and live traffic but no SLIs, budgets or alerts.
	Engine *Engine
	// Records lists the experiments and GameDays recorded in the store;
	// without it the section says why it is empty.
	Records *Records
	// Token, when set, is required from the browser for the dashboard's
	// API, reads and changes (Authorization: Bearer TOKEN); the page itself
	// loads without it and asks. The lab prints a URL that carries it.
	Token string
	// Listen is the address the dashboard listens on and AllowHosts the
	// further names it is reached by: a request whose Host names neither is
	// refused (httpapi.Config says exactly what passes).
	Listen     string
	AllowHosts []string
	Links      []Link
	// Poll is how often the dashboard reads the proxy (default 2s).
	Poll time.Duration
	// Keep is how much history the charts show (default 1h).
	Keep time.Duration
	// AuditEntries is how many lines the dashboard's audit log shows
	// (default 30); lease renewals of one rule in a row fold into one.
	AuditEntries int
	// Seed offsets the exact-rate pattern of simulated faults.
	Seed   uint64
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Poll == 0 {
		c.Poll = 2 * time.Second
	}
	if c.Keep == 0 {
		c.Keep = time.Hour
	}
	if c.AuditEntries == 0 {
		c.AuditEntries = 30
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

//go:embed static
var staticFiles embed.FS

// Dashboard serves the dashboard. Create it with New, start its poller with
// Run, and serve Handler.
type Dashboard struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux behind the guard
	latest  atomic.Pointer[snapshot]
	history *history
	polled  chan struct{} // closed after the first poll
	once    sync.Once
	pollMu  sync.Mutex // one poll at a time: the ticker's, or one after a change
	judged  judgement  // the engine's last status; guarded by pollMu

	mu   sync.Mutex // guards sims and seq
	sims []*simulation
	seq  int
}

// snapshot is what one poll read.
type snapshot struct {
	at     time.Time
	cujs   *admin.CUJsResponse
	faults []fault.Status
	audit  []admin.AuditEntry
	err    error
	judgement
}

// judgement is the SLO engine's last status and when it was made.
type judgement struct {
	status   *slo.Status
	judgedAt time.Time // when Evaluate ran
	err      error     // the last evaluation's, if it failed
}

// New checks cfg and prepares a dashboard.
func New(cfg Config) (*Dashboard, error) {
	cfg.defaults()
	if cfg.Service == nil {
		return nil, errors.New("web: no service")
	}
	if cfg.Admin == nil {
		return nil, errors.New("web: no admin API to read")
	}
	guard, err := httpapi.NewGuard(httpapi.Config{
		Name: "the dashboard", Listen: cfg.Listen, AllowHosts: cfg.AllowHosts, AllowHostFlag: "--allow-host",
		Token: cfg.Token, TokenHint: "open the dashboard with the URL slolab printed, or enter the token",
		Open: []string{"/{$}", "/static/", "/healthz"}, MaxBody: 64 << 10, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		history: newHistory(int(cfg.Keep/cfg.Poll) + 1),
		polled:  make(chan struct{}),
	}
	d.handler = guard.Wrap(d.mux)
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	d.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(files)))
	d.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	d.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	d.mux.HandleFunc("GET /api/state", d.api(d.state))
	d.mux.HandleFunc("GET /api/series", d.api(d.series))
	d.mux.HandleFunc("GET /api/experiments", d.api(func(r *http.Request) (any, error) { return d.runs(r.Context()) }))
	d.mux.HandleFunc("GET /api/errors", d.api(func(r *http.Request) (any, error) { return d.newErrors(r.Context()) }))
	d.mux.HandleFunc("POST /api/plan", d.api(d.plan))
	d.mux.HandleFunc("POST /api/simulations", d.api(d.startSimulation))
	d.mux.HandleFunc("DELETE /api/simulations/{id}", d.api(d.stopSimulation))
	d.mux.HandleFunc("DELETE /api/faults/{name}", d.api(d.stopFault))
	d.mux.HandleFunc("/api/", d.api(func(r *http.Request) (any, error) {
		return nil, slolab.Errorf(slolab.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return d, nil
}

func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// Handler returns the dashboard and its API, behind their guard
// (httpapi.Guard).
func (d *Dashboard) Handler() http.Handler { return d.handler }

// Run polls the proxy every Config.Poll until ctx ends.
func (d *Dashboard) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		d.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Polled is closed once the first poll has finished.
func (d *Dashboard) Polled() <-chan struct{} { return d.polled }

func (d *Dashboard) poll(ctx context.Context) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, max(d.cfg.Poll, 2*time.Second))
	defer cancel()
	s := &snapshot{at: d.cfg.Now()}
	s.cujs, s.err = d.cfg.Admin.CUJs(ctx)
	if s.err == nil {
		s.faults, s.err = d.cfg.Admin.ListFaults(ctx)
	}
	if s.err == nil {
		// Renewals fold into one line per run of them: read enough to fill
		// the lines shown with other changes too.
		s.audit, s.err = d.cfg.Admin.Audit(ctx, auditReadFactor*d.cfg.AuditEntries)
	}
	s.judgement = d.judge(ctx, s.at)
	if s.err != nil {
		if ctx.Err() != nil && errors.Is(s.err, context.Canceled) {
			return
		}
		d.cfg.Logger.Warn("dashboard: reading the proxy", "err", s.err)
		if prev := d.latest.Load(); prev != nil {
			s.cujs, s.faults, s.audit = prev.cujs, prev.faults, prev.audit
		}
	} else {
		d.history.add(sampleAll(d.cfg.Service, s, d.activeSims(s.faults)))
	}
	d.latest.Store(s)
	d.once.Do(func() { close(d.polled) })
}

// judge evaluates the SLOs when the engine's instant has moved (or Rejudge
// has passed); a failure keeps the last status and reports the error.
func (d *Dashboard) judge(ctx context.Context, now time.Time) judgement {
	e := d.cfg.Engine
	if e == nil {
		return judgement{}
	}
	prev := d.judged
	at, err := e.Instant(ctx, now)
	if err == nil && prev.status != nil && prev.err == nil && prev.status.At.Equal(at.UTC()) && now.Sub(prev.judgedAt) < Rejudge {
		return prev
	}
	var st *slo.Status
	if err == nil {
		st, err = slo.Evaluate(ctx, d.cfg.Service, e.Source, at)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("dashboard: judging the SLOs", "source", e.Name, "err", err)
		}
		prev.err = err
		d.judged = prev
		return prev
	}
	d.judged = judgement{status: st, judgedAt: now}
	return d.judged
}

func (d *Dashboard) api(fn func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(v) //nolint:errcheck // the browser went away
	}
}

func (d *Dashboard) snapshot() (*snapshot, error) {
	s := d.latest.Load()
	if s == nil || s.cujs == nil {
		if s != nil && s.err != nil {
			return nil, slolab.Errorf(slolab.Unavailable, "the proxy's admin API has not answered yet: %v", s.err)
		}
		return nil, slolab.Errorf(slolab.Unavailable, "the dashboard has not read the proxy yet")
	}
	return s, nil
}

func (d *Dashboard) state(*http.Request) (any, error) {
	s, err := d.snapshot()
	if err != nil {
		return nil, err
	}
	return buildState(d.cfg, s, d.simulations(s.faults)), nil
}

func (d *Dashboard) series(r *http.Request) (any, error) {
	name := r.URL.Query().Get("cuj")
	if d.cfg.Service.CUJ(name) == nil {
		return nil, slolab.Errorf(slolab.NotFound, "no CUJ %q (the CUJs are %s)", name, strings.Join(d.cfg.Service.CUJNames(), ", "))
	}
	return d.history.series(d.cfg.Service, d.cfg.Service.CUJ(name)), nil
}

// SimulationRequest is the body of POST /api/plan and /api/simulations.
type SimulationRequest struct {
	CUJ string `json:"cuj"`
	// State: "objective" (exactly at the availability SLO), "burn" (Value
	// is the burn rate), "availability" (Value is the availability),
	// "latency" (exactly at the latency SLO's boundary), "page" or "ticket"
	// (just at the threshold of that alert).
	State string `json:"state"`
	Value string `json:"value,omitempty"`
	// Duration is the rules' lease (default 10m): the simulation ends by
	// itself then.
	Duration string `json:"duration,omitempty"`
}

// States lists the simulate panel's states.
var States = []string{"objective", "burn", "availability", "latency", "page", "ticket"}

func decodeRequest(r *http.Request) (*SimulationRequest, error) {
	data, err := httpapi.ReadBody(r)
	if err != nil {
		return nil, err
	}
	var req SimulationRequest
	if err := httpapi.DecodeJSON(data, &req, `{"cuj": "read", "state": "burn", "value": "14.4"}`); err != nil {
		return nil, err
	}
	return &req, nil
}

func (d *Dashboard) planFor(req *SimulationRequest) (*slo.Plan, error) {
	svc := d.cfg.Service
	c := svc.CUJ(req.CUJ)
	if c == nil {
		return nil, slolab.Errorf(slolab.Invalid, "cuj: no CUJ %q (the CUJs are %s)", req.CUJ, strings.Join(svc.CUJNames(), ", "))
	}
	w := slo.Want{Seed: d.cfg.Seed, TTL: spec.DefaultTTL}
	if req.Duration != "" {
		ttl, err := spec.ParseDuration(req.Duration)
		if err != nil || ttl <= 0 || ttl > 24*time.Hour {
			return nil, slolab.Errorf(slolab.Invalid, "duration: want a duration up to 24h such as 15m, got %q", req.Duration)
		}
		w.TTL = ttl
	}
	switch req.State {
	case "objective":
		one := spec.One
		w.BurnRate = &one
	case "burn":
		b, err := spec.ParseRatio(req.Value)
		if err != nil || b.IsZero() || strings.HasSuffix(req.Value, "%") {
			return nil, slolab.Errorf(slolab.Invalid, "value: want a positive burn rate such as 14.4, got %q", req.Value)
		}
		w.BurnRate = &b
	case "availability":
		a, err := spec.ParsePercent(req.Value)
		if err != nil {
			return nil, slolab.Errorf(slolab.Invalid, "value: want an availability such as 99%%, got %q", req.Value)
		}
		w.Availability = &a
	case "latency":
		if c.Latency == nil {
			return nil, slolab.Errorf(slolab.Invalid, "CUJ %s has no latency SLO: its boundary cannot be simulated", c.Name)
		}
		w.Latency = &slo.LatencyTarget{Threshold: c.Latency.Threshold, Objective: c.Latency.Objective}
	case "page", "ticket":
		w.Alert = req.State
		// With the CUJ's measured traffic, the planner keeps every short
		// window over the alert's threshold instead of about half of them:
		// the SLO engine's last hour (slo.PlanFrom), else the proxy's live
		// window.
		if s := d.latest.Load(); s != nil && s.cujs != nil {
			for i := range s.cujs.CUJs {
				if s.cujs.CUJs[i].Name == c.Name {
					w.RequestsPerMinute = s.cujs.CUJs[i].RequestsPerMinute()
				}
			}
		}
	default:
		return nil, slolab.Errorf(slolab.Invalid, "state: want one of %s, got %q", strings.Join(States, ", "), req.State)
	}
	// The figures from what the SLO engine last saw, not a clean history.
	var judged *slo.Status
	if s := d.latest.Load(); s != nil {
		judged = s.status
	}
	p, err := slo.PlanFrom(svc, c.Name, w, judged)
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "%v", err)
	}
	return p, nil
}

func (d *Dashboard) plan(r *http.Request) (any, error) {
	req, err := decodeRequest(r)
	if err != nil {
		return nil, err
	}
	return d.planFor(req)
}

func (d *Dashboard) startSimulation(r *http.Request) (any, error) {
	req, err := decodeRequest(r)
	if err != nil {
		return nil, err
	}
	p, err := d.planFor(req)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	var names []string
	for _, rule := range p.Rules {
		if _, err := d.cfg.Admin.PutFault(ctx, rule); err != nil {
			// Leave nothing half-applied.
			for _, n := range names {
				d.cfg.Admin.DeleteFault(context.WithoutCancel(ctx), n) //nolint:errcheck // the lease ends it anyway
			}
			return nil, fmt.Errorf("starting the simulation: %w", err)
		}
		names = append(names, rule.Name)
	}
	now := d.cfg.Now()
	d.mu.Lock()
	d.seq++
	sim := &simulation{ID: fmt.Sprintf("sim%d", d.seq), Request: *req, Plan: p, Started: now, Rules: names}
	for _, old := range d.sims {
		if old.Stopped.IsZero() && overlaps(old.Rules, names) {
			old.Stopped, old.StoppedBy = now, "replaced by "+sim.ID
		}
	}
	d.sims = append(d.sims, sim)
	if len(d.sims) > maxSimulations {
		d.sims = slices.Delete(d.sims, 0, len(d.sims)-maxSimulations)
	}
	d.mu.Unlock()
	d.cfg.Logger.Info("dashboard: simulation started", "id", sim.ID, "cuj", p.CUJ, "state", req.State, "rules", names)
	d.poll(context.WithoutCancel(ctx))
	return sim.view(), nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func (d *Dashboard) stopSimulation(r *http.Request) (any, error) {
	id := r.PathValue("id")
	d.mu.Lock()
	var sim *simulation
	for _, s := range d.sims {
		if s.ID == id {
			sim = s
		}
	}
	d.mu.Unlock()
	if sim == nil {
		return nil, slolab.Errorf(slolab.NotFound, "no simulation %q", id)
	}
	if sim.elsewhere {
		return nil, slolab.Errorf(slolab.Conflict, "simulation %s was started elsewhere (slolab simulate), which would put its rule back: stop it there (Ctrl-C), or stop the fault %s", id, sim.Rules[0])
	}
	var errs []error
	for _, n := range sim.Rules {
		if _, err := d.cfg.Admin.DeleteFault(r.Context(), n); err != nil && slolab.KindOf(err) != slolab.NotFound {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("stopping %s: %w", id, err)
	}
	d.mu.Lock()
	if sim.Stopped.IsZero() {
		sim.Stopped, sim.StoppedBy = d.cfg.Now(), "stopped from the dashboard"
	}
	d.mu.Unlock()
	d.poll(context.WithoutCancel(r.Context()))
	return map[string]string{"stopped": id}, nil
}

func (d *Dashboard) stopFault(r *http.Request) (any, error) {
	st, err := d.cfg.Admin.DeleteFault(r.Context(), r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	d.poll(context.WithoutCancel(r.Context()))
	return st, nil
}
