package experiment

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"slolab.dev/slolab"
)

// ResponderAPI is the small HTTP API that `slolab gameday run` serves so
// that responders can put their actions on the timeline from anywhere:
//
//	POST /api/v1/gameday/events  {"kind": "ack|mitigate|note", "text": "...", "who": "alex"}
//	GET  /api/v1/gameday         the GameDay's name and timeline so far
//
// Posting needs "Authorization: Bearer TOKEN" when a token is set.
type ResponderAPI struct {
	Name  string
	Token string
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

// Handler returns the API.
func (a *ResponderAPI) Handler() http.Handler {
	if a.Now == nil {
		a.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/gameday", func(w http.ResponseWriter, _ *http.Request) {
		respond(w, http.StatusOK, TimelineResponse{GameDay: a.Name, Timeline: a.Timeline()})
	})
	mux.HandleFunc("POST /api/v1/gameday/events", func(w http.ResponseWriter, r *http.Request) {
		if a.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
				respond(w, http.StatusUnauthorized, errorBody{"this GameDay needs its token: send Authorization: Bearer $SLOLAB_GAMEDAY_TOKEN"})
				return
			}
		}
		var resp Response
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&resp); err != nil {
			respond(w, http.StatusBadRequest, errorBody{"want {\"kind\": \"ack\", \"text\": \"...\", \"who\": \"...\"}: " + err.Error()})
			return
		}
		switch {
		case resp.Kind != ResponseAck && resp.Kind != ResponseMitigate && resp.Kind != ResponseNote:
			respond(w, http.StatusBadRequest, errorBody{fmt.Sprintf("kind: want %s, %s or %s, got %q", ResponseAck, ResponseMitigate, ResponseNote, resp.Kind)})
			return
		case strings.TrimSpace(resp.Text) == "" && resp.Kind == ResponseNote:
			respond(w, http.StatusBadRequest, errorBody{"text: a note needs text"})
			return
		}
		resp.At = a.Now()
		select {
		case a.Out <- resp:
			respond(w, http.StatusCreated, resp)
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
			respond(w, http.StatusServiceUnavailable, errorBody{"the GameDay is not taking reports (it has ended)"})
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusNotFound, errorBody{"no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

type errorBody struct {
	Error string `json:"error"`
}

func respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
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
		var eb errorBody
		kind := slolab.Failed
		switch resp.StatusCode {
		case http.StatusBadRequest:
			kind = slolab.Invalid
		case http.StatusUnauthorized:
			kind = slolab.Unauthorized
		case http.StatusServiceUnavailable:
			kind = slolab.Unavailable
		}
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return slolab.Errorf(kind, "%s", eb.Error)
		}
		return slolab.Errorf(kind, "GameDay %s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(data, out)
}
