package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault-rule limits.
var (
	// MinRate is the smallest injection rate a rule may have: one in a million.
	MinRate = NewRatio(1, 1_000_000)
	// DefaultTTL is a rule's lease when it names none.
	DefaultTTL = 10 * time.Minute
)

// FaultRule says which requests to degrade, how, how many and for how long.
//
// A rule matches a request when every selector in Match holds. Of the matched
// requests, exactly Rate are injected: request n of the rule's matched stream is
// injected iff floor((n+o)·p) > floor((n+o−1)·p), where o is an offset in
// [0, 1/p) derived from Seed (0 when Seed is 0).
type FaultRule struct {
	Name        string
	Description string
	Priority    int // rules run in ascending priority, then by name
	Match       Selector
	Rate        Ratio
	Seed        uint64

	// Actions. Abort and Status are terminal (the upstream is not called);
	// Delay, Replace and Patch combine with anything.
	Abort   bool
	Status  *StatusAction
	Delay   *Delay
	Replace *Replace
	Patch   *Patch

	// TCP degrades connections through the TCP listener named by Match.TCP;
	// a TCP rule has no HTTP action.
	TCP *TCPAction

	TTL   time.Duration // the lease; renew to extend it
	Start time.Time     // optional: not before
	Stop  time.Time     // optional: not after

	Pos Pos
}

// Selector picks requests. Empty fields match everything.
type Selector struct {
	CUJ     string
	Route   string            // a route pattern of the CUJ, exactly as in the spec
	Method  string            // an HTTP method
	Headers map[string]string // header name → exact value, or "*" for "present"
	Group   string            // "experiment" or "control" (needs an active grouping)
	TCP     string            // a TCP listener (`slolab proxy --tcp NAME=...`): the rule is a TCP fault
}

// StatusAction answers with Code (and Body, Headers) without calling the upstream.
type StatusAction struct {
	Code    int
	Body    string
	Headers map[string]string
}

// Replace rewrites the request before it is forwarded, the response before it
// is returned, or both.
type Replace struct {
	Request  *RequestReplace
	Response *ResponseReplace
}

// RequestReplace sets parts of the request. Empty strings leave a part alone.
type RequestReplace struct {
	Method  string
	Path    string
	Query   *string           // the whole raw query; "" removes it
	Headers map[string]string // set (replace) these headers
	Body    *string
}

// ResponseReplace sets parts of the response.
type ResponseReplace struct {
	Status  int
	Headers map[string]string
	Body    *string
}

// Patch adds to the request or the response without removing anything.
type Patch struct {
	Request  *RequestPatch
	Response *ResponsePatch
}

// RequestPatch adds headers and query parameters and appends to the body.
type RequestPatch struct {
	Headers map[string]string
	Query   map[string]string
	Body    string
}

// ResponsePatch adds headers and appends to the body.
type ResponsePatch struct {
	Headers map[string]string
	Body    string
}

// DelayKind names a delay distribution.
type DelayKind uint8

// The delay distributions.
const (
	DelayFixed       DelayKind = iota // Fixed
	DelayUniform                      // uniform in [Min, Max]
	DelayNormal                       // normal(Mean, StdDev), truncated at 0
	DelayLogNormal                    // log-normal with the given Median and P99
	DelayPercentiles                  // piecewise linear through Points
)

// Delay is a delay distribution, written as text everywhere:
//
//	1s                                fixed
//	uniform(100ms, 300ms)             uniform between the two
//	normal(200ms, 50ms)               mean and standard deviation, never below 0
//	lognormal(120ms, 900ms)           median and 99th percentile
//	p50=120ms p90=300ms p99=900ms     a percentile table
//
// A percentile table starts from 0 at p0 unless it gives p0, and requests
// beyond its last percentile get its last value.
type Delay struct {
	Kind         DelayKind
	Fixed        time.Duration
	Min, Max     time.Duration
	Mean, StdDev time.Duration
	Median, P99  time.Duration
	Points       []PercentilePoint // ascending in P and in D
	text         string
}

// PercentilePoint says that a share P of requests is delayed at most D.
type PercentilePoint struct {
	P float64 // in [0, 1]
	D time.Duration
}

func (d *Delay) String() string {
	if d.text != "" {
		return d.text
	}
	switch d.Kind {
	case DelayUniform:
		return fmt.Sprintf("uniform(%s, %s)", FormatDuration(d.Min), FormatDuration(d.Max))
	case DelayNormal:
		return fmt.Sprintf("normal(%s, %s)", FormatDuration(d.Mean), FormatDuration(d.StdDev))
	case DelayLogNormal:
		return fmt.Sprintf("lognormal(%s, %s)", FormatDuration(d.Median), FormatDuration(d.P99))
	case DelayPercentiles:
		parts := make([]string, len(d.Points))
		for i, p := range d.Points {
			parts[i] = fmt.Sprintf("p%s=%s", strconv.FormatFloat(p.P*100, 'f', -1, 64), FormatDuration(p.D))
		}
		return strings.Join(parts, " ")
	}
	return FormatDuration(d.Fixed)
}

// Upper returns a duration that no sample exceeds, or 0 when the distribution
// is unbounded (normal, lognormal).
func (d *Delay) Upper() time.Duration {
	switch d.Kind {
	case DelayFixed:
		return d.Fixed
	case DelayUniform:
		return d.Max
	case DelayPercentiles:
		return d.Points[len(d.Points)-1].D
	}
	return 0
}

// Lower returns a duration that every sample reaches.
func (d *Delay) Lower() time.Duration {
	switch d.Kind {
	case DelayFixed:
		return d.Fixed
	case DelayUniform:
		return d.Min
	case DelayPercentiles:
		if d.Points[0].P == 0 {
			return d.Points[0].D
		}
	}
	return 0
}

// Quantile returns the delay at quantile u in [0, 1): the inverse of the
// distribution function. Feeding it uniform u gives samples of the distribution.
func (d *Delay) Quantile(u float64) time.Duration {
	switch d.Kind {
	case DelayUniform:
		return d.Min + time.Duration(u*float64(d.Max-d.Min))
	case DelayNormal:
		v := float64(d.Mean) + float64(d.StdDev)*normalQuantile(u)
		return time.Duration(max(v, 0))
	case DelayLogNormal:
		mu := math.Log(float64(d.Median))
		sigma := (math.Log(float64(d.P99)) - mu) / normalQuantile(0.99)
		return time.Duration(math.Exp(mu + sigma*normalQuantile(u)))
	case DelayPercentiles:
		prev := PercentilePoint{}
		for _, p := range d.Points {
			if u <= p.P {
				if p.P == prev.P {
					return p.D
				}
				f := (u - prev.P) / (p.P - prev.P)
				return prev.D + time.Duration(f*float64(p.D-prev.D))
			}
			prev = p
		}
		return prev.D
	}
	return d.Fixed
}

func normalQuantile(u float64) float64 {
	u = min(max(u, 1e-12), 1-1e-12)
	return math.Sqrt2 * math.Erfinv(2*u-1)
}

// ParseDelay reads the text forms documented on Delay.
func ParseDelay(s string) (*Delay, error) {
	t := strings.TrimSpace(s)
	fn := func(name string) (a, b time.Duration, ok bool, err error) {
		if !strings.HasPrefix(t, name+"(") || !strings.HasSuffix(t, ")") {
			return 0, 0, false, nil
		}
		args := strings.Split(t[len(name)+1:len(t)-1], ",")
		if len(args) != 2 {
			return 0, 0, true, fmt.Errorf("%s takes two durations, as in %s(100ms, 300ms)", name, name)
		}
		if a, err = ParseDuration(args[0]); err == nil {
			b, err = ParseDuration(args[1])
		}
		return a, b, true, err
	}
	d := &Delay{}
	if a, b, ok, err := fn("uniform"); ok {
		if err != nil {
			return nil, err
		}
		if a > b {
			return nil, fmt.Errorf("uniform(%s, %s): the minimum exceeds the maximum", FormatDuration(a), FormatDuration(b))
		}
		d.Kind, d.Min, d.Max = DelayUniform, a, b
	} else if a, b, ok, err := fn("normal"); ok {
		if err != nil {
			return nil, err
		}
		d.Kind, d.Mean, d.StdDev = DelayNormal, a, b
	} else if a, b, ok, err := fn("lognormal"); ok {
		if err != nil {
			return nil, err
		}
		if a <= 0 || b <= a {
			return nil, fmt.Errorf("lognormal(median, p99) needs 0 < median < p99")
		}
		d.Kind, d.Median, d.P99 = DelayLogNormal, a, b
	} else if strings.HasPrefix(t, "p") && strings.Contains(t, "=") {
		pts, err := parsePercentiles(t)
		if err != nil {
			return nil, err
		}
		d.Kind, d.Points = DelayPercentiles, pts
	} else {
		v, err := ParseDuration(t)
		if err != nil {
			return nil, fmt.Errorf("want a delay such as 1s, uniform(100ms, 300ms), normal(200ms, 50ms), lognormal(120ms, 900ms) or \"p50=120ms p99=900ms\", got %q", s)
		}
		d.Kind, d.Fixed = DelayFixed, v
	}
	if d.Kind != DelayFixed {
		d.text = t
	}
	if u := d.Upper(); u > time.Hour {
		return nil, fmt.Errorf("delay %q exceeds an hour", s)
	}
	return d, nil
}

func parsePercentiles(s string) ([]PercentilePoint, error) {
	var pts []PercentilePoint
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(k, "p") {
			return nil, fmt.Errorf("want percentile=duration pairs such as p50=120ms, got %q", f)
		}
		p, err := strconv.ParseFloat(k[1:], 64)
		if err != nil || p < 0 || p > 100 {
			return nil, fmt.Errorf("%q: the percentile must be between p0 and p100", f)
		}
		d, err := ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		pt := PercentilePoint{P: p / 100, D: d}
		if n := len(pts); n > 0 && (pt.P <= pts[n-1].P || pt.D < pts[n-1].D) {
			return nil, fmt.Errorf("%q: percentiles must rise and their delays must not fall", f)
		}
		pts = append(pts, pt)
	}
	return pts, nil
}

// MarshalText writes the text form.
func (d *Delay) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Terminal reports whether the rule answers without calling the upstream.
func (r *FaultRule) Terminal() bool { return r.Abort || r.Status != nil }

// IsTCP reports whether the rule degrades a TCP listener rather than HTTP requests.
func (r *FaultRule) IsTCP() bool { return r.Match.TCP != "" }

// Actions names the rule's actions, for tables: "status 500 + delay 1s".
func (r *FaultRule) Actions() string {
	if r.TCP != nil {
		return "tcp " + r.TCP.String()
	}
	var parts []string
	if r.Abort {
		parts = append(parts, "abort")
	}
	if r.Status != nil {
		parts = append(parts, fmt.Sprintf("status %d", r.Status.Code))
	}
	if r.Delay != nil {
		parts = append(parts, "delay "+r.Delay.String())
	}
	if r.Replace != nil {
		parts = append(parts, "replace")
	}
	if r.Patch != nil {
		parts = append(parts, "patch")
	}
	return strings.Join(parts, " + ")
}

// String describes the selector in one line: "update POST /update group=experiment".
func (s Selector) String() string {
	var parts []string
	if s.CUJ != "" {
		parts = append(parts, s.CUJ)
	}
	if s.Route != "" {
		parts = append(parts, s.Route)
	}
	if s.Method != "" {
		parts = append(parts, "method="+s.Method)
	}
	keys := make([]string, 0, len(s.Headers))
	for k := range s.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%s", k, s.Headers[k]))
	}
	if s.Group != "" {
		parts = append(parts, "group="+s.Group)
	}
	if s.TCP != "" {
		parts = append(parts, "tcp="+s.TCP)
	}
	if len(parts) == 0 {
		return "all requests"
	}
	return strings.Join(parts, " ")
}

// ParseFaultRule decodes one rule from JSON or YAML. name is used in error
// positions (for example "request body"). A rule without a name takes
// defaultName, so `PUT /api/v1/faults/{name}` need not repeat it.
func ParseFaultRule(name string, data []byte, defaultName string) (*FaultRule, error) {
	docs, err := ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, Errors{{Pos: Pos{File: name}, Msg: fmt.Sprintf("want one fault rule, got %d documents", len(docs))}}
	}
	d := &decoder{}
	r := d.faultRule(docs[0], "", defaultName)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return r, nil
}

func (d *decoder) faultRule(n *Node, path, defaultName string) *FaultRule {
	r := &FaultRule{Name: defaultName, Rate: One, TTL: DefaultTTL, Pos: n.Pos}
	required := []string{}
	if defaultName == "" {
		required = append(required, "name")
	} else if !ValidName(defaultName) {
		d.errorf(n, join(path, "name"), "%s", invalidName(defaultName))
		return r
	}
	ok := d.object(n, path, fields{
		"name": func(v *Node, p string) {
			r.Name = d.name(v, p)
			if defaultName != "" && r.Name != defaultName {
				d.errorf(v, p, "the body names %q but the URL names %q", r.Name, defaultName)
			}
		},
		"description": func(v *Node, p string) { r.Description = d.str(v, p) },
		"priority":    func(v *Node, p string) { r.Priority = int(d.integer(v, p, -1000, 1000)) },
		"match":       func(v *Node, p string) { r.Match = d.selector(v, p) },
		"rate": func(v *Node, p string) {
			before := len(d.errs)
			r.Rate = d.ratio(v, p)
			if len(d.errs) == before && r.Rate.Cmp(MinRate) < 0 {
				d.errorf(v, p, "must be at least 0.0001%% (one in a million), got %s", v.Value)
			}
		},
		"seed":  func(v *Node, p string) { r.Seed = uint64(d.integer(v, p, 0, math.MaxInt64)) },
		"abort": func(v *Node, p string) { r.Abort = d.boolean(v, p) },
		"status": func(v *Node, p string) {
			r.Status = &StatusAction{}
			if v.Kind == ScalarNode {
				r.Status.Code = d.status(v, p)
				return
			}
			d.object(v, p, fields{
				"code":    func(v *Node, p string) { r.Status.Code = d.status(v, p) },
				"body":    func(v *Node, p string) { r.Status.Body = d.str(v, p) },
				"headers": func(v *Node, p string) { r.Status.Headers = d.headers(v, p) },
			}, "code")
		},
		"delay": func(v *Node, p string) {
			s, ok := d.scalar(v, p, "a delay such as 1s or \"p50=120ms p99=900ms\"")
			if !ok {
				return
			}
			dl, err := ParseDelay(s)
			if err != nil {
				d.errorf(v, p, "%v", err)
				return
			}
			r.Delay = dl
		},
		"replace": func(v *Node, p string) { r.Replace = d.replace(v, p) },
		"patch":   func(v *Node, p string) { r.Patch = d.patch(v, p) },
		"tcp":     func(v *Node, p string) { r.TCP = d.tcpAction(v, p) },
		"ttl":     func(v *Node, p string) { r.TTL = d.duration(v, p) },
		"start":   func(v *Node, p string) { r.Start = d.timestamp(v, p) },
		"stop":    func(v *Node, p string) { r.Stop = d.timestamp(v, p) },
	}, required...)
	if !ok {
		return r
	}
	hasAction := false
	for _, k := range []string{"abort", "status", "delay", "replace", "patch"} {
		hasAction = hasAction || n.Get(k) != nil
	}
	switch {
	case r.Match.TCP != "":
		d.tcpRule(n, path, r, hasAction)
	case n.Get("tcp") != nil:
		d.errorf(n.Get("tcp"), join(path, "tcp"), "a TCP fault needs the listener it applies to: match.tcp")
	case !hasAction:
		d.errorf(n, path, "a fault rule needs an action: abort, status, delay, replace or patch")
	}
	if r.Abort && r.Status != nil {
		d.errorf(n.Get("status"), join(path, "status"), "abort and status are both terminal; give one")
	}
	if r.Terminal() && r.Replace != nil && r.Replace.Response != nil {
		d.errorf(n.Get("replace"), join(path, "replace.response"), "a terminal action (abort or status) never sees a response to replace")
	}
	if !r.Start.IsZero() && !r.Stop.IsZero() && !r.Stop.After(r.Start) {
		d.errorf(n.Get("stop"), join(path, "stop"), "must be after start")
	}
	return r
}

// status decodes the status a fault answers with: a final one, 200 to 599.
// An informational status (1xx) is not an answer: the client would wait
// for the response that never follows, and 101 would count as good.
func (d *decoder) status(n *Node, path string) int {
	before := len(d.errs)
	v := d.integer(n, path, 100, 599)
	if len(d.errs) == before && v < 200 {
		d.errorf(n, path, "%d is an informational status, not an answer: a fault answers with a final status, 200 to 599", v)
	}
	return int(v)
}

func (d *decoder) selector(n *Node, path string) Selector {
	var s Selector
	d.object(n, path, fields{
		"cuj":   func(v *Node, p string) { s.CUJ = d.name(v, p) },
		"route": func(v *Node, p string) { s.Route = d.str(v, p) },
		"method": func(v *Node, p string) {
			s.Method = strings.ToUpper(d.str(v, p))
			if !standardMethods[s.Method] {
				d.errorf(v, p, "unknown method %q", s.Method)
			}
		},
		"headers": func(v *Node, p string) { s.Headers = d.headers(v, p) },
		"group": func(v *Node, p string) {
			s.Group = d.str(v, p)
			if s.Group != GroupExperiment && s.Group != GroupControl {
				d.errorf(v, p, "want %s or %s, got %q", GroupExperiment, GroupControl, s.Group)
			}
		},
		"tcp": func(v *Node, p string) { s.TCP = d.name(v, p) },
	})
	if s.Route != "" && s.CUJ == "" {
		d.errorf(n.Get("route"), join(path, "route"), "a route selector needs the CUJ it belongs to (match.cuj)")
	}
	if s.Route != "" {
		if err := checkPattern(s.Route); err != nil {
			d.errorf(n.Get("route"), join(path, "route"), "%v", err)
		}
	}
	return s
}

// tcpRule checks a rule that selects a TCP listener: only TCP selectors and a TCP action.
func (d *decoder) tcpRule(n *Node, path string, r *FaultRule, hasHTTPAction bool) {
	if r.TCP == nil {
		d.errorf(n, path, "a rule with match.tcp needs a tcp action: latency, bandwidth, reset, blackhole or slowClose")
	}
	if hasHTTPAction {
		d.errorf(n, path, "a TCP fault (match.tcp) cannot have HTTP actions (abort, status, delay, replace, patch): a TCP stream has no requests")
	}
	if m := r.Match; m.CUJ != "" || m.Route != "" || m.Method != "" || len(m.Headers) > 0 || m.Group != "" {
		d.errorf(n.Get("match"), join(path, "match"), "a TCP fault selects only its listener (match.tcp): a connection carries no CUJ, route, method, header or client group")
	}
}

// headers decodes a header map, canonicalising names.
func (d *decoder) headers(n *Node, path string) map[string]string {
	m := d.stringMap(n, path)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			d.errorf(n, join(path, k), "%q is not a valid header name", k)
			continue
		}
		out[http.CanonicalHeaderKey(k)] = v
	}
	return out
}

func (d *decoder) optString(v *Node, p string) *string {
	s := d.str(v, p)
	return &s
}

func (d *decoder) replace(n *Node, path string) *Replace {
	r := &Replace{}
	d.object(n, path, fields{
		"request": func(v *Node, p string) {
			rr := &RequestReplace{}
			d.object(v, p, fields{
				"method": func(v *Node, p string) {
					rr.Method = strings.ToUpper(d.str(v, p))
					if !standardMethods[rr.Method] {
						d.errorf(v, p, "unknown method %q", rr.Method)
					}
				},
				"path": func(v *Node, p string) {
					rr.Path = d.str(v, p)
					if !strings.HasPrefix(rr.Path, "/") {
						d.errorf(v, p, "must start with '/', got %q", rr.Path)
					}
				},
				"query":   func(v *Node, p string) { rr.Query = d.optString(v, p) },
				"headers": func(v *Node, p string) { rr.Headers = d.headers(v, p) },
				"body":    func(v *Node, p string) { rr.Body = d.optString(v, p) },
			})
			r.Request = rr
		},
		"response": func(v *Node, p string) {
			rr := &ResponseReplace{}
			d.object(v, p, fields{
				"status":  func(v *Node, p string) { rr.Status = d.status(v, p) },
				"headers": func(v *Node, p string) { rr.Headers = d.headers(v, p) },
				"body":    func(v *Node, p string) { rr.Body = d.optString(v, p) },
			})
			r.Response = rr
		},
	})
	if r.Request == nil && r.Response == nil && n.Kind == MapNode {
		d.errorf(n, path, "replace needs request or response")
	}
	return r
}

func (d *decoder) patch(n *Node, path string) *Patch {
	pt := &Patch{}
	d.object(n, path, fields{
		"request": func(v *Node, p string) {
			rp := &RequestPatch{}
			d.object(v, p, fields{
				"headers": func(v *Node, p string) { rp.Headers = d.headers(v, p) },
				"query":   func(v *Node, p string) { rp.Query = d.stringMap(v, p) },
				"body":    func(v *Node, p string) { rp.Body = d.str(v, p) },
			})
			pt.Request = rp
		},
		"response": func(v *Node, p string) {
			rp := &ResponsePatch{}
			d.object(v, p, fields{
				"headers": func(v *Node, p string) { rp.Headers = d.headers(v, p) },
				"body":    func(v *Node, p string) { rp.Body = d.str(v, p) },
			})
			pt.Response = rp
		},
	})
	if pt.Request == nil && pt.Response == nil && n.Kind == MapNode {
		d.errorf(n, path, "patch needs request or response")
	}
	return pt
}

// MarshalJSON writes the rule in the same shape ParseFaultRule reads, so a
// rule read from `slolab fault ls -o json` can be sent back as is.
func (r *FaultRule) MarshalJSON() ([]byte, error) {
	type status struct {
		Code    int               `json:"code"`
		Body    string            `json:"body,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
	}
	type selector struct {
		CUJ     string            `json:"cuj,omitempty"`
		Route   string            `json:"route,omitempty"`
		Method  string            `json:"method,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
		Group   string            `json:"group,omitempty"`
		TCP     string            `json:"tcp,omitempty"`
	}
	type tcp struct {
		Per       string   `json:"per"`
		Direction string   `json:"direction"`
		Latency   Duration `json:"latency,omitzero"`
		Jitter    Duration `json:"jitter,omitzero"`
		Bandwidth string   `json:"bandwidth,omitempty"`
		Reset     bool     `json:"reset,omitempty"`
		Blackhole bool     `json:"blackhole,omitempty"`
		Timeout   Duration `json:"timeout,omitzero"`
		SlowClose Duration `json:"slowClose,omitzero"`
	}
	type reqReplace struct {
		Method  string            `json:"method,omitempty"`
		Path    string            `json:"path,omitempty"`
		Query   *string           `json:"query,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    *string           `json:"body,omitempty"`
	}
	type respReplace struct {
		Status  int               `json:"status,omitempty"`
		Headers map[string]string `json:"headers,omitempty"`
		Body    *string           `json:"body,omitempty"`
	}
	type replace struct {
		Request  *reqReplace  `json:"request,omitempty"`
		Response *respReplace `json:"response,omitempty"`
	}
	type reqPatch struct {
		Headers map[string]string `json:"headers,omitempty"`
		Query   map[string]string `json:"query,omitempty"`
		Body    string            `json:"body,omitempty"`
	}
	type respPatch struct {
		Headers map[string]string `json:"headers,omitempty"`
		Body    string            `json:"body,omitempty"`
	}
	type patch struct {
		Request  *reqPatch  `json:"request,omitempty"`
		Response *respPatch `json:"response,omitempty"`
	}
	out := struct {
		Name        string     `json:"name"`
		Description string     `json:"description,omitempty"`
		Priority    int        `json:"priority,omitempty"`
		Match       *selector  `json:"match,omitempty"`
		Rate        Ratio      `json:"rate"`
		Seed        uint64     `json:"seed,omitempty"`
		Abort       bool       `json:"abort,omitempty"`
		Status      *status    `json:"status,omitempty"`
		Delay       *Delay     `json:"delay,omitempty"`
		Replace     *replace   `json:"replace,omitempty"`
		Patch       *patch     `json:"patch,omitempty"`
		TCP         *tcp       `json:"tcp,omitempty"`
		TTL         Duration   `json:"ttl"`
		Start       *time.Time `json:"start,omitempty"`
		Stop        *time.Time `json:"stop,omitempty"`
	}{
		Name: r.Name, Description: r.Description, Priority: r.Priority, Rate: r.Rate, Seed: r.Seed,
		Abort: r.Abort, Delay: r.Delay, TTL: Duration(r.TTL),
	}
	if m := r.Match; m.CUJ != "" || m.Route != "" || m.Method != "" || len(m.Headers) > 0 || m.Group != "" || m.TCP != "" {
		out.Match = &selector{m.CUJ, m.Route, m.Method, m.Headers, m.Group, m.TCP}
	}
	if t := r.TCP; t != nil {
		out.TCP = &tcp{Per: t.Per, Direction: t.Direction, Latency: Duration(t.Latency), Jitter: Duration(t.Jitter),
			Reset: t.Reset, Blackhole: t.Blackhole, Timeout: Duration(t.Timeout), SlowClose: Duration(t.SlowClose)}
		if t.Bandwidth > 0 {
			out.TCP.Bandwidth = FormatBandwidth(t.Bandwidth)
		}
	}
	if s := r.Status; s != nil {
		out.Status = &status{s.Code, s.Body, s.Headers}
	}
	if rp := r.Replace; rp != nil {
		out.Replace = &replace{}
		if q := rp.Request; q != nil {
			out.Replace.Request = &reqReplace{q.Method, q.Path, q.Query, q.Headers, q.Body}
		}
		if s := rp.Response; s != nil {
			out.Replace.Response = &respReplace{s.Status, s.Headers, s.Body}
		}
	}
	if pt := r.Patch; pt != nil {
		out.Patch = &patch{}
		if q := pt.Request; q != nil {
			out.Patch.Request = &reqPatch{q.Headers, q.Query, q.Body}
		}
		if s := pt.Response; s != nil {
			out.Patch.Response = &respPatch{s.Headers, s.Body}
		}
	}
	if !r.Start.IsZero() {
		out.Start = &r.Start
	}
	if !r.Stop.IsZero() {
		out.Stop = &r.Stop
	}
	return json.Marshal(out)
}

// The client groups of an experiment.
const (
	GroupNone       = "none"       // no grouping is active
	GroupExperiment = "experiment" // the blast radius
	GroupControl    = "control"    // everyone else, measured separately
	GroupAll        = "all"        // every client, as SLI queries and expressions name it
)

// Grouping splits clients into an experiment group and a control group by a
// stable hash of a key, so that the same user stays in the same group.
type Grouping struct {
	// Run names the experiment run that holds the grouping: the proxy
	// counts the requests it groups under the run, apart from every other
	// run's, and several runs may hold groupings at once on different CUJs.
	Run string
	// CUJs are the CUJs whose clients the grouping assigns (empty: all).
	CUJs []string
	// By is where a client's identity is read: "header:X-User-ID",
	// "cookie:session" or "client-ip". Empty (only with a Run) splits
	// nobody: every client of the CUJs is counted under the run, in group
	// none — a run without a blast radius.
	By         string
	Experiment Ratio  // share of clients in the experiment group
	Salt       string // changes the assignment between experiments
	TTL        time.Duration
	Pos        Pos
}

// Equal reports whether two groupings assign the same clients of the same
// CUJs under the same run with the same lease (where they were written
// aside).
func (g *Grouping) Equal(o *Grouping) bool {
	return g.Run == o.Run && slices.Equal(g.CUJs, o.CUJs) && g.By == o.By && g.Experiment.Cmp(o.Experiment) == 0 && g.Salt == o.Salt && g.TTL == o.TTL
}

// Splits reports whether the grouping assigns clients to the experiment
// and control groups.
func (g *Grouping) Splits() bool { return g.By != "" }

// GroupKey is where a Grouping reads a client's identity.
type GroupKey struct {
	Source string // "header", "cookie" or "client-ip"
	Name   string // header or cookie name
}

// Key parses By.
func (g *Grouping) Key() GroupKey {
	src, name, _ := strings.Cut(g.By, ":")
	if src == "header" {
		name = http.CanonicalHeaderKey(name)
	}
	return GroupKey{Source: src, Name: name}
}

// ParseGrouping decodes a grouping from JSON or YAML.
func ParseGrouping(name string, data []byte) (*Grouping, error) {
	docs, err := ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, Errors{{Pos: Pos{File: name}, Msg: fmt.Sprintf("want one grouping, got %d documents", len(docs))}}
	}
	d := &decoder{}
	g := d.grouping(docs[0], "")
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return g, nil
}

func (d *decoder) grouping(n *Node, path string) *Grouping {
	g := &Grouping{TTL: DefaultTTL, Pos: n.Pos}
	d.object(n, path, fields{
		"by": func(v *Node, p string) {
			g.By = d.str(v, p)
			k := g.Key()
			if !(k.Source == "client-ip" && k.Name == "" || (k.Source == "header" || k.Source == "cookie") && k.Name != "") {
				d.errorf(v, p, "want header:NAME, cookie:NAME or client-ip, got %q", g.By)
			}
		},
		"experiment": func(v *Node, p string) {
			g.Experiment = d.ratio(v, p)
			if v.Kind == ScalarNode && (g.Experiment.IsZero() || g.Experiment.Cmp(One) >= 0) {
				d.errorf(v, p, "the experiment group must be more than 0%% and less than 100%% of clients, got %s", v.Value)
			}
		},
		"salt": func(v *Node, p string) { g.Salt = d.str(v, p) },
		"ttl":  func(v *Node, p string) { g.TTL = d.duration(v, p) },
		"run": func(v *Node, p string) {
			if g.Run = d.str(v, p); g.Run != "" && !ValidName(g.Run) {
				d.errorf(v, p, "want a run name of lower-case letters, digits, '-' and '_', got %q", g.Run)
			}
		},
		"cujs": func(v *Node, p string) { g.CUJs = d.stringList(v, p) },
	})
	switch {
	case g.By == "" && g.Run == "":
		d.errorf(n, join(path, "by"), "required (only a run's grouping may split nobody)")
	case g.By != "" && g.Experiment.IsZero() && n.Get("experiment") == nil:
		d.errorf(n, join(path, "experiment"), "required with by")
	case g.By == "" && n.Get("experiment") != nil:
		d.errorf(n.Get("experiment"), join(path, "experiment"), "an experiment share needs by: whom to split")
	}
	return g
}

// MarshalJSON writes the grouping in the shape ParseGrouping reads.
func (g *Grouping) MarshalJSON() ([]byte, error) {
	var share *Ratio
	if g.By != "" {
		share = &g.Experiment
	}
	return json.Marshal(struct {
		Run        string   `json:"run,omitempty"`
		CUJs       []string `json:"cujs,omitempty"`
		By         string   `json:"by,omitempty"`
		Experiment *Ratio   `json:"experiment,omitempty"`
		Salt       string   `json:"salt,omitempty"`
		TTL        Duration `json:"ttl"`
	}{g.Run, g.CUJs, g.By, share, g.Salt, Duration(g.TTL)})
}

// UnmarshalJSON reads a rule with the same decoder as ParseFaultRule, so JSON
// read back from the admin API is validated exactly like a rule sent to it.
func (r *FaultRule) UnmarshalJSON(b []byte) error {
	parsed, err := ParseFaultRule("json", b, "")
	if err != nil {
		return err
	}
	*r = *parsed
	return nil
}

// UnmarshalJSON reads a grouping with the same decoder as ParseGrouping.
func (g *Grouping) UnmarshalJSON(b []byte) error {
	parsed, err := ParseGrouping("json", b)
	if err != nil {
		return err
	}
	*g = *parsed
	return nil
}
