package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/httpapi"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// Client talks to a proxy's admin API.
type Client struct {
	base  string
	token string
	actor string
	http  *http.Client
}

// NewClient returns a client for the admin API at baseURL ("http://127.0.0.1:9090").
// token may be empty when the proxy has none.
func NewClient(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, slolab.Errorf(slolab.Invalid, "admin URL %q: want http://HOST:PORT", baseURL)
	}
	actor := os.Getenv("USER")
	if host, err := os.Hostname(); err == nil {
		actor += "@" + host
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), token: token, actor: actor, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// SetTransport replaces the HTTP transport, for tests that serve the admin
// API in memory.
func (c *Client) SetTransport(rt http.RoundTripper) { c.http.Transport = rt }

// SetActor sets what the audit log records as the client ("simulate", "experiment foo").
func (c *Client) SetActor(actor string) { c.actor = actor }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.actor != "" {
		req.Header.Set("X-Slolab-Actor", c.actor)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return slolab.Errorf(slolab.Unavailable, "admin API %s: %v", c.base, unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "admin API %s: reading the response: %v", c.base, err)
	}
	if resp.StatusCode >= 300 {
		var eb httpapi.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return &slolab.Error{Kind: httpapi.KindOf(resp.StatusCode), Msg: eb.Error}
		}
		return slolab.Errorf(httpapi.KindOf(resp.StatusCode), "admin API %s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return slolab.Errorf(slolab.Internal, "admin API %s %s: decoding the response: %v", method, path, err)
	}
	return nil
}

func unwrap(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func faultPath(name string) string { return "/api/v1/faults/" + url.PathEscape(name) }

// PutFault adds or replaces a rule.
func (c *Client) PutFault(ctx context.Context, r *spec.FaultRule) (fault.Status, error) {
	var st fault.Status
	err := c.do(ctx, http.MethodPut, faultPath(r.Name), r, &st)
	return st, err
}

// ListFaults lists every rule the proxy knows, expired ones included.
func (c *Client) ListFaults(ctx context.Context) ([]fault.Status, error) {
	var out struct {
		Faults []fault.Status `json:"faults"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/faults", nil, &out)
	return out.Faults, err
}

// GetFault returns one rule.
func (c *Client) GetFault(ctx context.Context, name string) (fault.Status, error) {
	var st fault.Status
	err := c.do(ctx, http.MethodGet, faultPath(name), nil, &st)
	return st, err
}

// DeleteFault removes a rule and returns its final counts.
func (c *Client) DeleteFault(ctx context.Context, name string) (fault.Status, error) {
	var st fault.Status
	err := c.do(ctx, http.MethodDelete, faultPath(name), nil, &st)
	return st, err
}

// RenewFault extends a rule's lease by ttl (the rule's own TTL when 0).
func (c *Client) RenewFault(ctx context.Context, name string, ttl time.Duration) (fault.Status, error) {
	var st fault.Status
	var body any
	if ttl > 0 {
		body = renewRequest{TTL: spec.Duration(ttl)}
	}
	err := c.do(ctx, http.MethodPost, faultPath(name)+"/renew", body, &st)
	return st, err
}

// CUJs returns the live view of every CUJ.
func (c *Client) CUJs(ctx context.Context) (*CUJsResponse, error) {
	var out CUJsResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/cujs", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SLI returns what a CUJ's clients (group "all", "experiment", "control" or
// "none") saw over the last window; with a run, only the requests the
// proxy counted under that run.
func (c *Client) SLI(ctx context.Context, cuj, group, run string, window time.Duration) (*SLIResponse, error) {
	return c.sli(ctx, url.Values{"cuj": {cuj}, "window": {spec.FormatDuration(window)}}, group, run)
}

// SLISince returns what a CUJ's clients saw since t: every recorder interval
// that overlaps [t, now].
func (c *Client) SLISince(ctx context.Context, cuj, group, run string, t time.Time) (*SLIResponse, error) {
	return c.sli(ctx, url.Values{"cuj": {cuj}, "since": {t.UTC().Format(time.RFC3339Nano)}}, group, run)
}

func (c *Client) sli(ctx context.Context, v url.Values, group, run string) (*SLIResponse, error) {
	if group != "" {
		v.Set("group", group)
	}
	if run != "" {
		v.Set("run", run)
	}
	var out SLIResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/sli?"+v.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// runQuery is "?run=NAME", or nothing for the only grouping.
func runQuery(run string) string {
	if run == "" {
		return ""
	}
	return "?" + url.Values{"run": {run}}.Encode()
}

// Grouping returns a run's grouping ("" for the only one); NotFound when
// there is none.
func (c *Client) Grouping(ctx context.Context, run string) (fault.GroupingStatus, error) {
	var st fault.GroupingStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/grouping"+runQuery(run), nil, &st)
	return st, err
}

// SetGrouping installs a run's grouping (g.Run names the run); Conflict
// when another run holds one of its CUJs.
func (c *Client) SetGrouping(ctx context.Context, g *spec.Grouping) (fault.GroupingStatus, error) {
	var st fault.GroupingStatus
	err := c.do(ctx, http.MethodPut, "/api/v1/grouping", g, &st)
	return st, err
}

// RenewGrouping extends a run's grouping's lease.
func (c *Client) RenewGrouping(ctx context.Context, run string, ttl time.Duration) (fault.GroupingStatus, error) {
	var st fault.GroupingStatus
	var body any
	if ttl > 0 {
		body = renewRequest{TTL: spec.Duration(ttl)}
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/grouping/renew"+runQuery(run), body, &st)
	return st, err
}

// DeleteGrouping removes a run's grouping.
func (c *Client) DeleteGrouping(ctx context.Context, run string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/grouping"+runQuery(run), nil, nil)
}

// Audit returns the latest audit entries.
func (c *Client) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out AuditList
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/audit?limit=%d", limit), nil, &out)
	return out.Entries, err
}

// Canary returns the proxy's traffic split.
func (c *Client) Canary(ctx context.Context) (split.Status, error) {
	var st split.Status
	err := c.do(ctx, http.MethodGet, "/api/v1/canary", nil, &st)
	return st, err
}

// SetCanaryWeight sets the canary's share of every CUJ.
func (c *Client) SetCanaryWeight(ctx context.Context, w spec.Ratio) (split.Status, error) {
	var st split.Status
	body := map[string]string{"weight": w.String()}
	err := c.do(ctx, http.MethodPut, "/api/v1/canary", body, &st)
	return st, err
}

// Counts returns what every CUJ saw per revision over the last window.
func (c *Client) Counts(ctx context.Context, window time.Duration) (*CountsResponse, error) {
	var out CountsResponse
	if err := c.do(ctx, http.MethodGet, "/api/v1/counts?window="+url.QueryEscape(spec.FormatDuration(window)), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
