package experiment_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"slolab.dev/slolab/experiment"
)

// A web page, by rebinding its name to the GameDay's loopback address or
// by posting a form, must not put an acknowledgement or a mitigation on the
// timeline: detection and recovery times would be false.
func TestWebPagesCannotReportToAGameDay(t *testing.T) {
	out := make(chan experiment.Response, 10)
	api := &experiment.ResponderAPI{Name: "drill", Out: out, Listen: "127.0.0.1:9192", Timeline: func() []experiment.TimelineEntry { return nil }}
	h, err := api.Handler()
	if err != nil {
		t.Fatal(err)
	}
	body := `{"kind": "ack", "text": "on it", "who": "mallory"}`
	for name, r := range map[string]struct{ host, ctype, origin, body string }{
		"a rebinding page":       {"attacker.example:9192", "application/json", "", body},
		"a text/plain form":      {"127.0.0.1:9192", "text/plain", "", body},
		"a cross-origin page":    {"127.0.0.1:9192", "application/json", "http://attacker.example", body},
		"bytes after the report": {"127.0.0.1:9192", "application/json", "", body + "="},
	} {
		req := httptest.NewRequest("POST", "/api/v1/gameday/events", strings.NewReader(r.body))
		req.Host = r.host
		req.Header.Set("Content-Type", r.ctype)
		if r.origin != "" {
			req.Header.Set("Origin", r.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code < 400 {
			t.Errorf("%s: %d %s, want it refused", name, w.Code, w.Body)
		}
	}
	if len(out) != 0 {
		t.Errorf("%d reports reached the timeline", len(out))
	}
	req := httptest.NewRequest("POST", "/api/v1/gameday/events", strings.NewReader(body))
	req.Host = "127.0.0.1:9192"
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusCreated || len(out) != 1 {
		t.Errorf("a responder's report: %d %s", w.Code, w.Body)
	}
}
