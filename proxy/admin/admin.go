// Package admin is the proxy's admin API — fault rules with leases, the
// experiment/control grouping, the canary's traffic weight, live SLIs per
// CUJ (and per revision while a canary is out), the audit log, metrics — and
// the Go client that the CLI, simulations, experiments and rollouts use.
package admin

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// Config configures the admin API.
type Config struct {
	Service  *spec.Service
	Routes   *match.Table
	Faults   Faults
	Recorder *sli.Recorder
	// Split is the proxy's stable/canary split, nil when it has none.
	Split *split.Split
	// Weights sets the canary's weight (default Split itself; a
	// *cluster.Node sets it on every member of a fleet).
	Weights Weights
	// Cluster is the fleet the proxy is a member of, for GET
	// /api/v1/cluster, nil for a proxy on its own; the audit log then names
	// this member in what it records (Audit.SetMember).
	Cluster Cluster
	Metrics http.Handler // served at /metrics
	// Audit records every change; a change it cannot record is undone and
	// refused.
	Audit *Audit
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// request (but /metrics and /healthz with OpenMetrics). At least
	// httpapi.MinTokenLength characters.
	Token string
	// OpenMetrics serves /metrics and /healthz without the token, for
	// scrapers and probes that cannot send one.
	OpenMetrics bool
	// Listen is the address the API listens on and AllowHosts the further
	// names it is reached by: a request whose Host names neither is refused
	// (httpapi.Config says exactly what passes).
	Listen     string
	AllowHosts []string
	Now        func() time.Time
	Logger     *slog.Logger
}

// CheckListen refuses to expose the admin API beyond this machine without a
// token (anyone who reaches it can break the app behind the proxy), and a
// token too short to resist guessing.
func CheckListen(addr, token string) error {
	if err := httpapi.CheckToken(token); err != nil {
		return err
	}
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return slolab.Errorf(slolab.Invalid, "admin address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return slolab.Errorf(slolab.Invalid, "the admin API would listen on %s, beyond loopback, without a token: set SLOLAB_ADMIN_TOKEN (or --admin-token), or listen on 127.0.0.1", addr)
	}
	return nil
}

type handler struct {
	cfg Config
	mux *http.ServeMux
	id  string // who makes changes: the token's key id, or anonymous

	mu sync.Mutex // one change at a time, so that a change can be undone
}

// NewHandler returns the admin API behind its guard (httpapi.Guard).
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Audit == nil {
		cfg.Audit = NewAudit(nil, 0)
	}
	if cfg.Weights == nil && cfg.Split != nil {
		cfg.Weights = cfg.Split
	}
	var open []string
	if cfg.OpenMetrics {
		open = []string{"/metrics", "/healthz"}
	}
	guard, err := httpapi.NewGuard(httpapi.Config{
		Name: "the admin API", Listen: cfg.Listen, AllowHosts: cfg.AllowHosts, AllowHostFlag: "--admin-allow-host",
		Token: cfg.Token, TokenHint: "send Authorization: Bearer $SLOLAB_ADMIN_TOKEN", Open: open,
		Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		cfg.Audit.SetMember(cfg.Cluster.Name())
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux(), id: "anonymous"}
	if cfg.Token != "" {
		h.id = "token:" + cfg.Audit.KeyID(cfg.Token)
	}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	if cfg.Metrics != nil {
		h.mux.Handle("GET /metrics", cfg.Metrics)
	}
	h.mux.HandleFunc("GET /api/v1/faults", h.api(h.listFaults))
	h.mux.HandleFunc("GET /api/v1/faults/{name}", h.api(h.getFault))
	h.mux.HandleFunc("PUT /api/v1/faults/{name}", h.mutation(h.putFault))
	h.mux.HandleFunc("DELETE /api/v1/faults/{name}", h.mutation(h.deleteFault))
	h.mux.HandleFunc("POST /api/v1/faults/{name}/renew", h.mutation(h.renewFault))
	h.mux.HandleFunc("GET /api/v1/grouping", h.api(h.getGrouping))
	h.mux.HandleFunc("PUT /api/v1/grouping", h.mutation(h.putGrouping))
	h.mux.HandleFunc("DELETE /api/v1/grouping", h.mutation(h.deleteGrouping))
	h.mux.HandleFunc("POST /api/v1/grouping/renew", h.mutation(h.renewGrouping))
	h.mux.HandleFunc("GET /api/v1/cujs", h.api(h.cujs))
	h.mux.HandleFunc("GET /api/v1/counts", h.api(h.counts))
	h.mux.HandleFunc("GET /api/v1/canary", h.api(h.getCanary))
	h.mux.HandleFunc("PUT /api/v1/canary", h.mutation(h.putCanary))
	h.mux.HandleFunc("GET /api/v1/sli", h.api(h.sli))
	h.mux.HandleFunc("GET /api/v1/audit", h.api(h.audit))
	h.mux.HandleFunc("GET /api/v1/cluster", h.api(h.cluster))
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, slolab.Errorf(slolab.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return guard.Wrap(h.mux), nil
}

// apiFunc answers with a value to encode, or an error.
type apiFunc func(r *http.Request, who identity) (status int, v any, err error)

type identity struct {
	id, actor, remote string
}

func (h *handler) api(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, v, err := fn(r, identity{})
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		httpapi.WriteJSON(w, status, v)
	}
}

// mutation runs fn with who is making the change (the guard has checked
// the token, if any).
func (h *handler) mutation(fn apiFunc) http.HandlerFunc {
	return h.api(func(r *http.Request, _ identity) (int, any, error) {
		return fn(r, identity{id: h.id, actor: r.Header.Get("X-Slolab-Actor"), remote: r.RemoteAddr})
	})
}

// change applies one change to the fault registry and records it in the
// audit log; when the record cannot be written, the change is undone (undo,
// when given, sets back what the registry does not hold) and refused. apply
// returns what to record. A fleet's node sends the change to the other
// members only once it is recorded (Committer).
func (h *handler) change(who identity, apply func() (action, name string, detail any, err error), undo func()) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	before := h.cfg.Faults.Snapshot()
	undone := false
	defer func() {
		if !undone {
			h.commit()
		}
	}()
	action, name, detail, err := apply()
	if err != nil {
		return err
	}
	if err := h.record(who, action, name, detail); err != nil {
		if undo != nil {
			undo()
		}
		h.cfg.Faults.Restore(before)
		undone = true
		return err
	}
	return nil
}

func (h *handler) commit() {
	if c, ok := h.cfg.Faults.(Committer); ok {
		c.Commit()
	}
}

func (h *handler) record(who identity, action, name string, detail any) error {
	err := h.cfg.Audit.Append(AuditEntry{Time: h.cfg.Now().UTC(), Identity: who.id, Actor: who.actor, Remote: who.remote, Action: action, Fault: name, Detail: detail})
	if err != nil {
		h.cfg.Logger.Error("admin API: a change was refused: the audit log cannot be written", "action", action, "fault", name, "err", err)
		return slolab.Errorf(slolab.Unavailable, "the change was not made: %w", err)
	}
	return nil
}

// FaultList is the body of GET /api/v1/faults.
type FaultList struct {
	Faults []fault.Status `json:"faults"`
}

func (h *handler) listFaults(*http.Request, identity) (int, any, error) {
	return http.StatusOK, FaultList{Faults: orEmpty(h.cfg.Faults.List())}, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *handler) getFault(r *http.Request, _ identity) (int, any, error) {
	st, err := h.cfg.Faults.Get(r.PathValue("name"))
	return http.StatusOK, st, err
}

func (h *handler) putFault(r *http.Request, who identity) (int, any, error) {
	name := r.PathValue("name")
	data, err := httpapi.ReadBody(r)
	if err != nil {
		return 0, nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return 0, nil, slolab.Errorf(slolab.Invalid, "the request body is empty: send a fault rule as JSON, e.g. {\"match\": {\"cuj\": \"update\"}, \"status\": 500, \"rate\": \"0.1%%\"}")
	}
	if err := httpapi.NoTrailingJSON(r, data, `{"match": {"cuj": "update"}, "status": 500}`); err != nil {
		return 0, nil, err
	}
	rule, err := spec.ParseFaultRule("request body", data, name)
	if err != nil {
		return 0, nil, err
	}
	var st fault.Status
	var created bool
	err = h.change(who, func() (string, string, any, error) {
		st, created, err = h.cfg.Faults.Put(rule)
		if created {
			return "put", name, rule, err
		}
		return "replace", name, rule, err
	}, nil)
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, st, nil
	}
	return http.StatusOK, st, nil
}

func (h *handler) deleteFault(r *http.Request, who identity) (int, any, error) {
	var st fault.Status
	err := h.change(who, func() (_, _ string, _ any, err error) {
		st, err = h.cfg.Faults.Delete(r.PathValue("name"))
		return "delete", r.PathValue("name"), nil, err
	}, nil)
	return http.StatusOK, st, err
}

// renewRequest is the optional body of a renewal.
type renewRequest struct {
	TTL spec.Duration `json:"ttl"`
}

func parseRenew(r *http.Request) (time.Duration, error) {
	data, err := httpapi.ReadBody(r)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return 0, err
	}
	var req renewRequest
	if err := httpapi.DecodeJSON(data, &req, `{"ttl": "10m"}`); err != nil {
		return 0, err
	}
	if req.TTL < 0 {
		return 0, slolab.Errorf(slolab.Invalid, "ttl: must be positive")
	}
	return time.Duration(req.TTL), nil
}

func (h *handler) renewFault(r *http.Request, who identity) (int, any, error) {
	ttl, err := parseRenew(r)
	if err != nil {
		return 0, nil, err
	}
	var st fault.Status
	err = h.change(who, func() (_, _ string, _ any, err error) {
		st, err = h.cfg.Faults.Renew(r.PathValue("name"), ttl)
		return "renew", r.PathValue("name"), map[string]string{"expiresAt": st.ExpiresAt.UTC().Format(time.RFC3339)}, err
	}, nil)
	return http.StatusOK, st, err
}

// getGrouping answers GET /api/v1/grouping[?run=NAME]: a run's grouping,
// or without a run the only one there is.
func (h *handler) getGrouping(r *http.Request, _ identity) (int, any, error) {
	st, err := h.cfg.Faults.Grouping(r.URL.Query().Get("run"))
	return http.StatusOK, st, err
}

func (h *handler) putGrouping(r *http.Request, who identity) (int, any, error) {
	data, err := httpapi.ReadBody(r)
	if err != nil {
		return 0, nil, err
	}
	if err := httpapi.NoTrailingJSON(r, data, `{"cujs": ["update"], "by": "header:X-User-ID", "experiment": "20%"}`); err != nil {
		return 0, nil, err
	}
	g, err := spec.ParseGrouping("request body", data)
	if err != nil {
		return 0, nil, err
	}
	var st fault.GroupingStatus
	err = h.change(who, func() (_, _ string, _ any, err error) {
		st, err = h.cfg.Faults.SetGrouping(g)
		return "grouping.put", g.Run, g, err
	}, nil)
	return http.StatusOK, st, err
}

func (h *handler) deleteGrouping(r *http.Request, who identity) (int, any, error) {
	run := r.URL.Query().Get("run")
	err := h.change(who, func() (string, string, any, error) {
		if !h.cfg.Faults.ClearGrouping(run) {
			return "", "", nil, slolab.Errorf(slolab.NotFound, "no grouping to delete")
		}
		return "grouping.delete", run, nil, nil
	}, nil)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]bool{"deleted": true}, nil
}

func (h *handler) renewGrouping(r *http.Request, who identity) (int, any, error) {
	ttl, err := parseRenew(r)
	if err != nil {
		return 0, nil, err
	}
	run := r.URL.Query().Get("run")
	var st fault.GroupingStatus
	err = h.change(who, func() (_, _ string, _ any, err error) {
		st, err = h.cfg.Faults.RenewGrouping(run, ttl)
		return "grouping.renew", run, nil, err
	}, nil)
	return http.StatusOK, st, err
}

// AuditList is the body of GET /api/v1/audit.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
}

func (h *handler) audit(r *http.Request, _ identity) (int, any, error) {
	n := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return 0, nil, slolab.Errorf(slolab.Invalid, "limit: want a positive integer, got %q", s)
		}
		n = v
	}
	return http.StatusOK, AuditList{Entries: orEmpty(h.cfg.Audit.Recent(n))}, nil
}
