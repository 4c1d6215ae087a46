// Package admin is the proxy's admin API — fault rules with leases, the
// experiment/control grouping, the canary's traffic weight, live SLIs per
// CUJ (and per revision while a canary is out), the audit log, metrics — and
// the Go client that the CLI, simulations, experiments and rollouts use.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
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
	// /api/v1/cluster; nil for a proxy on its own.
	Cluster Cluster
	Metrics http.Handler // served at /metrics
	Audit   *Audit
	// Token, when set, is required as "Authorization: Bearer TOKEN" for every mutation.
	Token  string
	Now    func() time.Time
	Logger *slog.Logger
}

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 1 << 20

// CheckListen refuses to expose the admin API beyond this machine without a
// token: anyone who reaches it can break the app behind the proxy.
func CheckListen(addr, token string) error {
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
}

// NewHandler returns the admin API.
func NewHandler(cfg Config) http.Handler {
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
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
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
		writeError(w, slolab.Errorf(slolab.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return h.mux
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
			writeError(w, err)
			return
		}
		writeJSON(w, status, v)
	}
}

// mutation checks the token before fn runs.
func (h *handler) mutation(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := identity{id: "anonymous", actor: r.Header.Get("X-Slolab-Actor"), remote: r.RemoteAddr}
		if h.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="slolab"`)
				writeError(w, slolab.Errorf(slolab.Unauthorized, "this change needs the admin token: send Authorization: Bearer $SLOLAB_ADMIN_TOKEN"))
				return
			}
			sum := sha256.Sum256([]byte(got))
			who.id = "token:" + hex.EncodeToString(sum[:4])
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		status, v, err := fn(r, who)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, status, v)
	}
}

func (h *handler) record(who identity, action, name string, detail any) {
	h.cfg.Audit.Append(AuditEntry{Time: h.cfg.Now().UTC(), Identity: who.id, Actor: who.actor, Remote: who.remote, Action: action, Fault: name, Detail: detail, Member: h.member()})
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

func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, slolab.Errorf(slolab.Invalid, "request body exceeds %d bytes", mbe.Limit)
	}
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "reading the request body: %v", err)
	}
	return data, nil
}

func (h *handler) putFault(r *http.Request, who identity) (int, any, error) {
	name := r.PathValue("name")
	data, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return 0, nil, slolab.Errorf(slolab.Invalid, "the request body is empty: send a fault rule as JSON, e.g. {\"match\": {\"cuj\": \"update\"}, \"status\": 500, \"rate\": \"0.1%%\"}")
	}
	rule, err := spec.ParseFaultRule("request body", data, name)
	if err != nil {
		return 0, nil, err
	}
	st, created, err := h.cfg.Faults.Put(rule)
	if err != nil {
		return 0, nil, err
	}
	action, status := "replace", http.StatusOK
	if created {
		action, status = "put", http.StatusCreated
	}
	h.record(who, action, name, rule)
	return status, st, nil
}

func (h *handler) deleteFault(r *http.Request, who identity) (int, any, error) {
	st, err := h.cfg.Faults.Delete(r.PathValue("name"))
	if err == nil {
		h.record(who, "delete", st.Rule.Name, nil)
	}
	return http.StatusOK, st, err
}

// renewRequest is the optional body of a renewal.
type renewRequest struct {
	TTL spec.Duration `json:"ttl"`
}

func parseRenew(r *http.Request) (time.Duration, error) {
	data, err := readBody(r)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return 0, err
	}
	var req renewRequest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return 0, slolab.Errorf(slolab.Invalid, "request body: want {\"ttl\": \"10m\"}: %v", err)
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
	st, err := h.cfg.Faults.Renew(r.PathValue("name"), ttl)
	if err == nil {
		h.record(who, "renew", st.Rule.Name, map[string]string{"expiresAt": st.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	return http.StatusOK, st, err
}

func (h *handler) getGrouping(*http.Request, identity) (int, any, error) {
	st, ok := h.cfg.Faults.Grouping()
	if !ok {
		return 0, nil, slolab.Errorf(slolab.NotFound, "no grouping: every client is in group none")
	}
	return http.StatusOK, st, nil
}

func (h *handler) putGrouping(r *http.Request, who identity) (int, any, error) {
	data, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	g, err := spec.ParseGrouping("request body", data)
	if err != nil {
		return 0, nil, err
	}
	st, err := h.cfg.Faults.SetGrouping(g)
	if err == nil {
		h.record(who, "grouping.put", "", g)
	}
	return http.StatusOK, st, err
}

func (h *handler) deleteGrouping(_ *http.Request, who identity) (int, any, error) {
	if !h.cfg.Faults.ClearGrouping() {
		return 0, nil, slolab.Errorf(slolab.NotFound, "no grouping to delete")
	}
	h.record(who, "grouping.delete", "", nil)
	return http.StatusOK, map[string]bool{"deleted": true}, nil
}

func (h *handler) renewGrouping(r *http.Request, who identity) (int, any, error) {
	ttl, err := parseRenew(r)
	if err != nil {
		return 0, nil, err
	}
	st, err := h.cfg.Faults.RenewGrouping(ttl)
	if err == nil {
		h.record(who, "grouping.renew", "", nil)
	}
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

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

// httpStatus maps error kinds to HTTP statuses: the one place this happens.
func httpStatus(k slolab.Kind) int {
	switch k {
	case slolab.Invalid:
		return http.StatusBadRequest
	case slolab.NotFound:
		return http.StatusNotFound
	case slolab.Conflict:
		return http.StatusConflict
	case slolab.Unauthorized:
		return http.StatusUnauthorized
	case slolab.Unavailable:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// kindOf maps an HTTP status back to an error kind, for the client.
func kindOf(status int) slolab.Kind {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		return slolab.Invalid
	case http.StatusNotFound:
		return slolab.NotFound
	case http.StatusConflict:
		return slolab.Conflict
	case http.StatusUnauthorized, http.StatusForbidden:
		return slolab.Unauthorized
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return slolab.Unavailable
	}
	return slolab.Internal
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, httpStatus(slolab.KindOf(err)), errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(w, `{"error": %q}`, err.Error())
	}
}
