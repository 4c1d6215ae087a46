package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/httpapi"
)

// ResponderAPI is the small HTTP API that `slolab gameday run` serves so
// that responders can put their actions on the timeline from anywhere:
//
//	POST /api/v1/gameday/events  {"kind": "ack|mitigate|note", "text": "...", "who": "alex"}
//	GET  /api/v1/gameday         the GameDay's name and timeline so far
//
// It is behind httpapi's guard, as the admin API is: with a token, every
// request needs "Authorization: Bearer TOKEN"; Host must name the address
// it listens on (or AllowHosts); web pages of other origins, forms and
// text bodies cannot report.
type ResponderAPI struct {
	Name  string
	Token string
	// Listen is the address the API listens on and AllowHosts the further
	// names it is reached by (httpapi.Config).
	Listen     string
	AllowHosts []string
	// Out receives each report; the GameDay reads it.
	Out chan<- Response
	// Timeline returns the entries so far.
	Timeline func() []TimelineEntry
	Now      func() time.Time
}

// TimelineResponse is the body of GET /api/v1/gameday.
type TimelineResponse struct {
	GameDay  string          `json:"gameday"`
	Timeline []TimelineEntry `json:"timeline"`
}

// Handler returns the API behind its guard.
func (a *ResponderAPI) Handler() (http.Handler, error) {
	if a.Now == nil {
		a.Now = time.Now
	}
	guard, err := httpapi.NewGuard(httpapi.Config{
		Name: "the GameDay", Listen: a.Listen, AllowHosts: a.AllowHosts, AllowHostFlag: "--allow-host",
		Token: a.Token, TokenHint: "send Authorization: Bearer $SLOLAB_GAMEDAY_TOKEN", MaxBody: 64 << 10, Now: a.Now,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/gameday", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, TimelineResponse{GameDay: a.Name, Timeline: a.Timeline()})
	})
	mux.HandleFunc("POST /api/v1/gameday/events", func(w http.ResponseWriter, r *http.Request) {
		data, err := httpapi.ReadBody(r)
		if err != nil {
			httpapi.WriteError(w, err)
			return
		}
		var resp Response
		if err := httpapi.DecodeJSON(data, &resp, `{"kind": "ack", "text": "...", "who": "..."}`); err != nil {
			httpapi.WriteError(w, err)
			return
		}
		switch {
		case resp.Kind != ResponseAck && resp.Kind != ResponseMitigate && resp.Kind != ResponseNote:
			httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "kind: want %s, %s or %s, got %q", ResponseAck, ResponseMitigate, ResponseNote, resp.Kind))
			return
		case strings.TrimSpace(resp.Text) == "" && resp.Kind == ResponseNote:
			httpapi.WriteError(w, slolab.Errorf(slolab.Invalid, "text: a note needs text"))
			return
		}
		resp.At = a.Now()
		select {
		case a.Out <- resp:
			httpapi.WriteJSON(w, http.StatusCreated, resp)
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
			httpapi.WriteError(w, slolab.Errorf(slolab.Unavailable, "the GameDay is not taking reports (it has ended)"))
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, slolab.Errorf(slolab.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return guard.Wrap(mux), nil
}

// ResponderClient posts to a running GameDay's responder API.
type ResponderClient struct {
	base, token string
	http        *http.Client
}

// NewResponderClient returns a client for the API at baseURL.
func NewResponderClient(baseURL, token string) (*ResponderClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, slolab.Errorf(slolab.Invalid, "GameDay URL %q: want http://HOST:PORT", baseURL)
	}
	return &ResponderClient{base: strings.TrimSuffix(u.String(), "/"), token: token, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Report puts a responder's action on the timeline and returns it as recorded.
func (c *ResponderClient) Report(ctx context.Context, r Response) (Response, error) {
	body, _ := json.Marshal(struct {
		Kind string `json:"kind"`
		Text string `json:"text"`
		Who  string `json:"who,omitempty"`
	}{r.Kind, r.Text, r.Who})
	var out Response
	err := c.do(ctx, http.MethodPost, "/api/v1/gameday/events", body, &out)
	return out, err
}

// Timeline returns the GameDay's timeline so far.
func (c *ResponderClient) Timeline(ctx context.Context) (*TimelineResponse, error) {
	var out TimelineResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/gameday", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *ResponderClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "no GameDay answers at %s: %v (is 'slolab gameday run' running there?)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "GameDay %s: %v", c.base, err)
	}
	if resp.StatusCode >= 300 {
		var eb httpapi.ErrorBody
		kind := httpapi.KindOf(resp.StatusCode)
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return slolab.Errorf(kind, "%s", eb.Error)
		}
		return slolab.Errorf(kind, "GameDay %s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(data, out)
}
