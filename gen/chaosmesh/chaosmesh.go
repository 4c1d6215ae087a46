// Package chaosmesh translates slolab fault rules into Chaos Mesh HTTPChaos
// manifests, for teams who run their faults inside Kubernetes.
//
// HTTPChaos has one target (Request or Response) and one path and method per
// object, so a rule becomes one manifest per route it selects and per phase
// its actions need. Where Chaos Mesh cannot express a rule exactly, the
// manifest says so in a comment and the note goes to stderr too:
//
//   - it has no request rate: every matching request is faulted;
//   - its delays are fixed: a distribution becomes its median;
//   - a status answer is a rewrite of the upstream's response code, so the
//     upstream is still called;
//   - it has no client groups, no "header present" match, no priorities,
//     no start/stop times and no text appended to a body.
package chaosmesh

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/spec"
)

// Options say which pods the chaos targets.
type Options struct {
	Namespace string            // of the manifests and of the target pods
	Selector  map[string]string // pod labels
	Port      int               // the port the app listens on, which Chaos Mesh proxies
}

// DefaultPort is the port HTTPChaos proxies when Options give none.
const DefaultPort = 80

type manifest struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   map[string]any `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
}

// target is one route's selector in Chaos Mesh terms.
type target struct {
	method, path string
}

// Generate writes httpchaos-RULE.yaml for each rule.
func Generate(svc *spec.Service, rules []*spec.FaultRule, opt Options) (*gen.Output, error) {
	if opt.Port == 0 {
		opt.Port = DefaultPort
	}
	out := &gen.Output{}
	var errs []string
	for _, r := range rules {
		data, notes, err := rule(svc, r, opt)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, n := range notes {
			out.Notef("%s: %s", r.Name, n)
		}
		out.Files = append(out.Files, gen.File{Name: "httpchaos-" + r.Name + ".yaml", Data: data})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

func rule(svc *spec.Service, r *spec.FaultRule, opt Options) ([]byte, []string, error) {
	var notes []string
	note := func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) }

	targets, err := targets(svc, r, note)
	if err != nil {
		return nil, nil, err
	}
	if r.Rate.Cmp(spec.One) != 0 {
		note("Chaos Mesh has no request rate: every matching request is faulted, not %s of them", r.Rate)
	}
	if r.Match.Group != "" {
		note("Chaos Mesh has no client groups: the fault reaches every client, not only the %s group", r.Match.Group)
	}
	if r.Priority != 0 {
		note("Chaos Mesh applies rules without priorities (this one has %d)", r.Priority)
	}
	if !r.Start.IsZero() || !r.Stop.IsZero() {
		note("start and stop times are not part of an HTTPChaos; apply it at the start (or wrap it in a Chaos Mesh Schedule)")
	}
	headers := map[string]string{}
	for k, v := range r.Match.Headers {
		if v == "*" {
			note("Chaos Mesh matches header values exactly: the match on %s being present is left out", k)
			continue
		}
		headers[k] = v
	}

	request, response := phases(r, note)
	var docs [][]byte
	for i, t := range targets {
		for _, ph := range []struct {
			name    string
			actions map[string]any
		}{{"Request", request}, {"Response", response}} {
			if len(ph.actions) == 0 {
				continue
			}
			s := map[string]any{
				"mode":     "all",
				"selector": selector(opt),
				"target":   ph.name,
				"port":     opt.Port,
				"duration": goDuration(r.TTL),
			}
			if t.method != "" {
				s["method"] = t.method
			}
			if t.path != "" {
				s["path"] = t.path
			}
			if len(headers) > 0 {
				s["request_headers"] = headers
			}
			for k, v := range ph.actions {
				s[k] = v
			}
			name := objectName(r.Name, i, len(targets), ph.name, len(request) > 0 && len(response) > 0)
			meta := map[string]any{"name": name, "labels": map[string]string{
				"app.kubernetes.io/managed-by": "slolab", "slolab.dev/fault": r.Name,
			}}
			if opt.Namespace != "" {
				meta["namespace"] = opt.Namespace
			}
			if r.Description != "" {
				meta["annotations"] = map[string]string{"slolab.dev/description": r.Description}
			}
			m := manifest{APIVersion: "chaos-mesh.org/v1alpha1", Kind: "HTTPChaos", Metadata: meta, Spec: s}
			var b bytes.Buffer
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			if err := enc.Encode(m); err != nil {
				return nil, nil, err
			}
			if err := enc.Close(); err != nil {
				return nil, nil, err
			}
			docs = append(docs, b.Bytes())
		}
	}
	if len(docs) == 0 {
		return nil, nil, fmt.Errorf("%v: fault rule %s: Chaos Mesh can express none of its actions, so there is no HTTPChaos to write: %s", r.Pos, r.Name, strings.Join(notes, "; "))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by `slolab gen chaos-mesh` from fault rule %s (%s on %s).\n", r.Name, r.Actions(), r.Match)
	for _, n := range notes {
		fmt.Fprintf(&b, "# Note: %s\n", n)
	}
	b.Write(bytes.Join(docs, []byte("---\n")))
	return b.Bytes(), notes, nil
}

func selector(opt Options) map[string]any {
	s := map[string]any{}
	if opt.Namespace != "" {
		s["namespaces"] = []string{opt.Namespace}
	}
	if len(opt.Selector) > 0 {
		s["labelSelectors"] = opt.Selector
	}
	return s
}

var invalidName = regexp.MustCompile(`[^a-z0-9-]+`)

// objectName is a DNS-1123 name: slolab-RULE[-i][-request|-response].
func objectName(rule string, i, n int, phase string, both bool) string {
	name := "slolab-" + invalidName.ReplaceAllString(strings.ToLower(rule), "-")
	if n > 1 {
		name += fmt.Sprintf("-%d", i+1)
	}
	if both {
		name += "-" + strings.ToLower(phase)
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

// targets turns the rule's CUJ or route selector into Chaos Mesh's method
// and path, one per route; an empty selector is one target matching everything.
func targets(svc *spec.Service, r *spec.FaultRule, note func(string, ...any)) ([]target, error) {
	var patterns []string
	switch {
	case r.Match.Route != "":
		patterns = []string{r.Match.Route}
	case r.Match.CUJ != "":
		c := svc.CUJ(r.Match.CUJ)
		if c == nil {
			return nil, fmt.Errorf("%v: fault rule %s: the spec has no CUJ %q (it has %s)", r.Pos, r.Name, r.Match.CUJ, strings.Join(svc.CUJNames(), ", "))
		}
		for _, rt := range c.Routes {
			patterns = append(patterns, rt.Pattern)
		}
	default:
		return []target{{method: r.Match.Method}}, nil
	}
	if r.Match.CUJ != "" && r.Match.Route != "" {
		if c := svc.CUJ(r.Match.CUJ); c == nil {
			return nil, fmt.Errorf("%v: fault rule %s: the spec has no CUJ %q (it has %s)", r.Pos, r.Name, r.Match.CUJ, strings.Join(svc.CUJNames(), ", "))
		}
	}
	var out []target
	for _, p := range patterns {
		method, host, path := splitPattern(p)
		if host != "" {
			note("Chaos Mesh cannot match the host of route %q: it matches the path on every host", p)
		}
		if r.Match.Method != "" {
			if method != "" && method != r.Match.Method {
				continue // the route never sees this method
			}
			method = r.Match.Method
		}
		cm, exact := chaosPath(path)
		if !exact {
			note("route %q becomes the path %q: Chaos Mesh's * matches any characters, also across /", p, cm)
		}
		out = append(out, target{method: method, path: cm})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%v: fault rule %s: method %s matches none of the routes it selects", r.Pos, r.Name, r.Match.Method)
	}
	return out, nil
}

// splitPattern splits a net/http pattern "[METHOD ][HOST]/PATH".
func splitPattern(p string) (method, host, path string) {
	if m, rest, ok := strings.Cut(p, " "); ok {
		method, p = m, strings.TrimLeft(rest, " ")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		host, p = p[:i], p[i:]
	}
	return method, host, p
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// chaosPath turns a net/http path pattern into a Chaos Mesh path: each
// {wildcard} and a trailing / (a subtree) become *. exact is false when
// that widens what matches.
func chaosPath(p string) (string, bool) {
	if strings.HasSuffix(p, "/{$}") {
		return strings.TrimSuffix(p, "{$}"), true
	}
	out := wildcard.ReplaceAllString(p, "*")
	if strings.HasSuffix(out, "/") {
		out += "*"
	}
	return out, out == p
}

// phases splits the rule's actions into what HTTPChaos does to the request
// and what it does to the response.
func phases(r *spec.FaultRule, note func(string, ...any)) (request, response map[string]any) {
	request, response = map[string]any{}, map[string]any{}
	if r.Abort {
		request["abort"] = true
	}
	if d := r.Delay; d != nil {
		v := d.Fixed
		if d.Kind != spec.DelayFixed {
			v = d.Quantile(0.5)
			note("Chaos Mesh delays are fixed: the distribution %s becomes its median, %s", d, spec.FormatDuration(v))
		}
		request["delay"] = goDuration(v)
	}
	if s := r.Status; s != nil {
		rep := map[string]any{"code": s.Code}
		if s.Body != "" {
			rep["body"] = base64.StdEncoding.EncodeToString([]byte(s.Body))
		}
		if len(s.Headers) > 0 {
			rep["headers"] = s.Headers
		}
		response["replace"] = rep
		note("Chaos Mesh cannot answer without the upstream: status %d replaces the upstream's response code, so the upstream still sees the request", s.Code)
	}
	if rp := r.Replace; rp != nil {
		if q := rp.Request; q != nil {
			rep := map[string]any{}
			if q.Method != "" {
				rep["method"] = q.Method
			}
			if q.Path != "" {
				rep["path"] = q.Path
			}
			if q.Query != nil {
				vals, err := url.ParseQuery(*q.Query)
				qs := map[string]string{}
				for k, v := range vals {
					qs[k] = v[0]
				}
				if err != nil || len(vals) == 0 || *q.Query == "" {
					note("Chaos Mesh replaces query parameters one by one: the whole query %q cannot be set", *q.Query)
				} else {
					note("Chaos Mesh replaces the named query parameters and keeps the others, where slolab replaces the whole query")
					rep["queries"] = qs
				}
			}
			if len(q.Headers) > 0 {
				rep["headers"] = q.Headers
			}
			if q.Body != nil {
				rep["body"] = base64.StdEncoding.EncodeToString([]byte(*q.Body))
			}
			if len(rep) > 0 {
				request["replace"] = rep
			}
		}
		if s := rp.Response; s != nil {
			rep := map[string]any{}
			if s.Status != 0 {
				rep["code"] = s.Status
			}
			if len(s.Headers) > 0 {
				rep["headers"] = s.Headers
			}
			if s.Body != nil {
				rep["body"] = base64.StdEncoding.EncodeToString([]byte(*s.Body))
			}
			if len(rep) > 0 {
				response["replace"] = rep
			}
		}
	}
	if pt := r.Patch; pt != nil {
		if q := pt.Request; q != nil {
			p := map[string]any{}
			if len(q.Headers) > 0 {
				p["headers"] = pairs(q.Headers)
			}
			if len(q.Query) > 0 {
				p["queries"] = pairs(q.Query)
			}
			if q.Body != "" {
				note("Chaos Mesh patches bodies only as JSON merge patches: appending %q to the request body is left out", q.Body)
			}
			if len(p) > 0 {
				request["patch"] = p
			}
		}
		if s := pt.Response; s != nil {
			p := map[string]any{}
			if len(s.Headers) > 0 {
				p["headers"] = pairs(s.Headers)
			}
			if s.Body != "" {
				note("Chaos Mesh patches bodies only as JSON merge patches: appending %q to the response body is left out", s.Body)
			}
			if len(p) > 0 {
				response["patch"] = p
			}
		}
	}
	return request, response
}

// pairs writes a map as Chaos Mesh's [[name, value], ...], in name order.
func pairs(m map[string]string) [][]string {
	out := make([][]string, 0, len(m))
	for _, k := range gen.SortedKeys(m) {
		out = append(out, []string{k, m[k]})
	}
	return out
}

// goDuration writes d in Go's syntax, which Chaos Mesh parses ("1.5s", "300ms").
// Unlike spec.FormatDuration it never uses days.
func goDuration(d time.Duration) string {
	if d < time.Second || d%time.Second != 0 {
		if d%time.Millisecond == 0 && d < time.Second {
			return fmt.Sprintf("%dms", d/time.Millisecond)
		}
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return b.String()
}
