package canary

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/spec"
)

// ServerConfig configures the verdict endpoint.
type ServerConfig struct {
	Service *spec.Service
	Source  Source
	// Window is the default analysis window (a request may ask for another).
	Window time.Duration
	Judge  Config
	// NoData is how the Flagger rollout hook answers an inconclusive
	// verdict (too little traffic to decide): NoDataHold (the default)
	// answers 2xx and leaves the hold to the confirm hooks, NoDataFail
	// answers 425 so Flagger counts a failed check and rolls back at its
	// threshold. A request may choose with ?no-data= or the webhook's
	// metadata "noData".
	NoData NoData
	Logger *slog.Logger
}

// NoData is what an inconclusive verdict means to Flagger's rollout hook.
// Neither lets a canary without evidence be promoted: the confirm hooks
// answer 2xx only on pass in both.
type NoData string

// The choices.
const (
	// NoDataHold: the rollout hook answers 2xx, so no failed check is
	// counted; the confirm-traffic-increase and confirm-promotion hooks
	// answer 425 and Flagger holds the weight until the evidence is in or a
	// human acts. A Canary must list a confirm-promotion hook.
	NoDataHold NoData = "inconclusive"
	// NoDataFail: the rollout hook answers 425 too, so every analysis
	// interval without evidence is a failed check and Flagger rolls back
	// once they reach the Canary's threshold.
	NoDataFail NoData = "fail"
)

// ParseNoData reads inconclusive or fail.
func ParseNoData(s string) (NoData, error) {
	switch NoData(s) {
	case NoDataHold, NoDataFail:
		return NoData(s), nil
	}
	return "", slolab.Errorf(slolab.Invalid, "no-data: want inconclusive (hold for a human) or fail (count a failed check), got %q", s)
}

// The endpoint's paths.
const (
	// VerdictPath answers Argo Rollouts' web metric provider: always 200
	// with the Result as JSON once a verdict was computed.
	VerdictPath = "/api/v1/verdict"
	// FlaggerRolloutPath answers a Flagger rollout webhook: non-2xx only on
	// fail, so Flagger counts a failed check and rolls back at its threshold.
	FlaggerRolloutPath = "/flagger/rollout"
	// FlaggerConfirmPath answers Flagger's confirm-traffic-increase and
	// confirm-promotion webhooks: 2xx only on pass, so an inconclusive
	// canary holds its weight instead of advancing.
	FlaggerConfirmPath = "/flagger/confirm"
)

type server struct {
	cfg ServerConfig
}

// NewHandler returns the verdict endpoint for `slolab canary serve`.
func NewHandler(cfg ServerConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.NoData == "" {
		cfg.NoData = NoDataHold
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET "+VerdictPath, s.verdict)
	mux.HandleFunc(FlaggerRolloutPath, s.flagger(false))
	mux.HandleFunc(FlaggerConfirmPath, s.flagger(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, slolab.Errorf(slolab.NotFound, "no such endpoint: %s %s (try GET %s, or POST %s or %s for Flagger)", r.Method, r.URL.Path, VerdictPath, FlaggerRolloutPath, FlaggerConfirmPath))
	})
	return mux
}

// query is what a caller may narrow: the CUJs and the window.
type query struct {
	cujs   []string
	window time.Duration
}

func (s *server) parse(cujs []string, window string) (query, error) {
	q := query{window: s.cfg.Window}
	for _, v := range cujs {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				q.cujs = append(q.cujs, name)
			}
		}
	}
	if window != "" {
		d, err := spec.ParseDuration(window)
		if err != nil {
			return q, slolab.Errorf(slolab.Invalid, "window: %v", err)
		}
		if d <= 0 {
			return q, slolab.Errorf(slolab.Invalid, "window: must be positive, got %s", window)
		}
		q.window = d
	}
	return q, nil
}

func (s *server) judge(r *http.Request, q query) (Result, error) {
	cfg := s.cfg.Judge
	if len(q.cujs) > 0 {
		cfg.CUJs = q.cujs
	}
	if err := cfg.Check(s.cfg.Service); err != nil {
		return Result{}, err
	}
	obs, err := s.cfg.Source.Observe(r.Context(), s.cfg.Service, q.window)
	if err != nil {
		return Result{}, err
	}
	res, err := Judge(s.cfg.Service, obs, cfg)
	if err == nil {
		s.cfg.Logger.Info("verdict", "path", r.URL.Path, "verdict", res.Verdict, "cujs", len(res.CUJs), "window", spec.FormatDuration(q.window), "remote", r.RemoteAddr)
	}
	return res, err
}

// verdict answers GET /api/v1/verdict[?cuj=NAME...][&window=5m].
func (s *server) verdict(w http.ResponseWriter, r *http.Request) {
	q, err := s.parse(r.URL.Query()["cuj"], r.URL.Query().Get("window"))
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	res, err := s.judge(r, q)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}

// FlaggerPayload is what Flagger POSTs to a webhook. The metadata may carry
// "cuj" (comma-separated) and "window" to narrow the judgment, and "noData"
// to choose what an inconclusive verdict answers.
type FlaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Metadata  map[string]string `json:"metadata"`
}

// StatusFailed and StatusTooEarly are the non-2xx answers to Flagger: the
// canary failed, or the evidence is not in yet.
const (
	StatusFailed   = http.StatusPreconditionFailed
	StatusTooEarly = http.StatusTooEarly
)

func (s *server) flagger(confirm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET, POST")
			httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "%s %s: use POST (Flagger) or GET", r.Method, r.URL.Path))
			return
		}
		cujs, window, noData := r.URL.Query()["cuj"], r.URL.Query().Get("window"), r.URL.Query().Get("no-data")
		if r.Method == http.MethodPost {
			data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "reading the webhook payload: %v", err))
				return
			}
			if len(strings.TrimSpace(string(data))) > 0 {
				var p FlaggerPayload
				if err := json.Unmarshal(data, &p); err != nil {
					httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "the webhook payload is not Flagger's JSON: %v", err))
					return
				}
				if v := p.Metadata["cuj"]; v != "" {
					cujs = append(cujs, v)
				}
				if v := p.Metadata["window"]; v != "" && window == "" {
					window = v
				}
				if v := p.Metadata["noData"]; v != "" && noData == "" {
					noData = v
				}
			}
		}
		q, err := s.parse(cujs, window)
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		policy := s.cfg.NoData
		if noData != "" {
			if policy, err = ParseNoData(noData); err != nil {
				httpapi.WriteError(w, err)
				return
			}
		}
		res, err := s.judge(r, q)
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		status := http.StatusOK
		switch {
		case res.Verdict == Fail:
			status = StatusFailed
		case res.Verdict == Inconclusive && (confirm || policy == NoDataFail):
			status = StatusTooEarly
		}
		httpapi.WriteJSON(w, status, res)
	}
}
