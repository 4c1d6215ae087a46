package spec

import (
	"bytes"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FormatYAML writes svc as a spec document that Parse reads back into the
// same model (positions aside).
func FormatYAML(svc *Service) []byte { return FormatYAMLComments(svc, nil) }

// FormatYAMLComments is FormatYAML with comments: each key is a field path as
// errors write them ("" for the document, "spec.cujs[2]", "spec.cujs[2].latency")
// and its lines become comments above that field. Importers use them to say
// what they could not map.
func FormatYAMLComments(svc *Service, comments map[string][]string) []byte {
	f := formatter{comments: comments}
	doc := f.mapping("",
		"apiVersion", f.str(APIVersion),
		"kind", f.str("Service"),
		"metadata", f.metadata(svc),
		"spec", f.serviceSpec(svc),
	)
	if c := comments[""]; len(c) > 0 {
		doc.HeadComment = strings.Join(c, "\n")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Encoding a tree of strings, mappings and lists cannot fail.
		panic(fmt.Sprintf("spec.FormatYAML: %v", err))
	}
	_ = enc.Close()
	return b.Bytes()
}

type formatter struct {
	comments map[string][]string
}

func (f *formatter) str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func (f *formatter) integer(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
}

// mapping builds a mapping from key, value pairs, skipping nil values; path
// is the mapping's field path, for comments on its keys.
func (f *formatter) mapping(path string, kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(*yaml.Node)
		if v == nil {
			continue
		}
		key := kv[i].(string)
		k := f.str(key)
		if c := f.comments[join(path, key)]; len(c) > 0 {
			k.HeadComment = strings.Join(c, "\n")
		}
		n.Content = append(n.Content, k, v)
	}
	return n
}

func (f *formatter) flow(n *yaml.Node) *yaml.Node {
	n.Style = yaml.FlowStyle
	return n
}

func (f *formatter) strings(ss []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range ss {
		n.Content = append(n.Content, f.str(s))
	}
	return n
}

func (f *formatter) stringMap(m map[string]string) *yaml.Node {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		n.Content = append(n.Content, f.str(k), f.str(m[k]))
	}
	return n
}

func (f *formatter) optStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return f.str(s)
}

// formatOptDuration formats a duration, or "" for none.
func formatOptDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return FormatDuration(d)
}

func (f *formatter) metadata(svc *Service) *yaml.Node {
	return f.mapping("metadata", "name", f.str(svc.Name), "labels", f.stringMap(svc.Labels))
}

func (f *formatter) serviceSpec(svc *Service) *yaml.Node {
	cujs := &yaml.Node{Kind: yaml.SequenceNode}
	for i, c := range svc.CUJs {
		cujs.Content = append(cujs.Content, f.cuj(c, index("spec.cujs", i)))
	}
	return f.mapping("spec",
		"alerting", f.alerting(svc.Alerting, "spec.alerting"),
		"policy", f.policy(svc.Policy, "spec.policy"),
		"cujs", cujs,
	)
}

func (f *formatter) cuj(c *CUJ, path string) *yaml.Node {
	routes := make([]string, len(c.Routes))
	for i, r := range c.Routes {
		routes[i] = r.Pattern
	}
	var avail, lat *yaml.Node
	if a := c.Availability; a != nil {
		avail = f.flow(f.mapping(join(path, "availability"), "objective", f.str(percentText(a.Objective)), "window", f.str(a.Window.String())))
	}
	if l := c.Latency; l != nil {
		lat = f.flow(f.mapping(join(path, "latency"),
			"threshold", f.str(FormatDuration(l.Threshold)),
			"objective", f.str(percentText(l.Objective)),
			"window", f.str(l.Window.String())))
	}
	n := f.mapping(path,
		"name", f.str(c.Name),
		"owner", f.str(c.Owner),
		"description", f.optStr(c.Description),
		"routes", f.strings(routes),
		"availability", avail,
		"latency", lat,
		"alerting", f.alerting(c.Alerting, join(path, "alerting")),
		"queries", f.queries(c.Queries, join(path, "queries")),
		"load", f.load(c.Load, join(path, "load")),
		"policy", f.policy(c.Policy, join(path, "policy")),
		"upstreamTimeout", f.optStr(formatOptDuration(c.UpstreamTimeout)),
	)
	if cm := f.comments[path]; len(cm) > 0 {
		n.HeadComment = strings.Join(cm, "\n")
	}
	return n
}

func (f *formatter) alerting(a *Alerting, path string) *yaml.Node {
	if a == nil {
		return nil
	}
	var min, rates *yaml.Node
	if a.MinBadEvents > 0 {
		min = f.integer(a.MinBadEvents)
	}
	if len(a.BurnRates) > 0 {
		rates = &yaml.Node{Kind: yaml.SequenceNode}
		for i, b := range a.BurnRates {
			rates.Content = append(rates.Content, f.flow(f.mapping(index(join(path, "burnRates"), i),
				"severity", f.str(b.Severity),
				"long", f.str(FormatDuration(b.Long)),
				"short", f.str(FormatDuration(b.Short)),
				"burnRate", f.str(b.Factor.Decimal()),
			)))
		}
	}
	identity := func(id *AlertIdentity) []any {
		return []any{"name", f.optStr(id.Name), "labels", f.stringMap(id.Labels), "annotations", f.stringMap(id.Annotations)}
	}
	severity := func(sa *SeverityAlerting, path string) *yaml.Node {
		if sa == nil {
			return nil
		}
		var disable *yaml.Node
		if sa.Disable {
			disable = f.str("true")
			disable.Tag = "!!bool"
		}
		return f.mapping(path, append(identity(&sa.AlertIdentity), "disable", disable)...)
	}
	fields := append(identity(&a.AlertIdentity),
		"page", severity(a.Page, join(path, "page")),
		"ticket", severity(a.Ticket, join(path, "ticket")),
		"minBadEvents", min, "burnRates", rates)
	return f.mapping(path, fields...)
}

func (f *formatter) queries(q *Queries, path string) *yaml.Node {
	if q == nil {
		return nil
	}
	pair := func(p *QueryPair, path string) *yaml.Node {
		if p == nil {
			return nil
		}
		return f.mapping(path, "good", f.optStr(p.Good), "bad", f.optStr(p.Bad), "total", f.str(p.Total))
	}
	return f.mapping(path,
		"availability", pair(q.Availability, join(path, "availability")),
		"latency", pair(q.Latency, join(path, "latency")))
}

func (f *formatter) load(l *LoadProfile, path string) *yaml.Node {
	if l == nil {
		return nil
	}
	var share, rate, reqs *yaml.Node
	if !l.Share.IsZero() {
		share = f.str(l.Share.String())
	}
	if !l.Rate.IsZero() {
		rate = f.str(l.Rate.String())
	}
	if len(l.Requests) > 0 {
		reqs = &yaml.Node{Kind: yaml.SequenceNode}
		for i, r := range l.Requests {
			reqs.Content = append(reqs.Content, f.request(r, index(join(path, "requests"), i)))
		}
	}
	return f.mapping(path, "share", share, "rate", rate, "requests", reqs)
}

func (f *formatter) request(r *RequestTemplate, path string) *yaml.Node {
	var method, vars, weight *yaml.Node
	if r.Method != "GET" {
		method = f.str(r.Method)
	}
	if len(r.Vars) > 0 {
		vars = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		keys := make([]string, 0, len(r.Vars))
		for k := range r.Vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vars.Content = append(vars.Content, f.str(k), f.variable(r.Vars[k]))
		}
	}
	if r.Weight != 1 {
		weight = f.integer(r.Weight)
	}
	return f.mapping(path,
		"method", method,
		"path", f.str(r.Path),
		"vars", vars,
		"headers", f.stringMap(r.Headers),
		"body", f.optStr(r.Body),
		"bodyFile", f.optStr(r.BodyFile),
		"weight", weight,
	)
}

func (f *formatter) variable(v Var) *yaml.Node {
	switch v.Kind {
	case VarRange:
		return f.str(fmt.Sprintf("%d..%d", v.Lo, v.Hi))
	case VarList:
		return f.flow(f.strings(v.List))
	case VarUUID:
		return f.str("uuid")
	case VarHex:
		return f.str(fmt.Sprintf("hex:%d", v.Len))
	}
	return f.str(v.Value)
}

func (f *formatter) policy(rules []*PolicyRule, path string) *yaml.Node {
	if len(rules) == 0 {
		return nil
	}
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for i, r := range rules {
		n.Content = append(n.Content, f.mapping(index(path, i), "when", f.str(r.When.String()), "action", f.str(r.Action)))
	}
	return n
}

// percentText writes an objective so that ParsePercent reads it back
// exactly: "99.9%", or a fraction of a percent ("200/3%") when the decimal
// expansion does not end.
func percentText(r Ratio) string {
	if s := r.String(); strings.HasSuffix(s, "%") {
		return s
	}
	x := new(big.Rat).SetFrac(new(big.Int).SetUint64(r.Num()), new(big.Int).SetUint64(r.Den()))
	x.Mul(x, big.NewRat(100, 1))
	return x.String() + "%"
}

// Commented is a Service with comments at field paths (see
// FormatYAMLComments), as importers produce it: what they could not map is
// said beside the field it concerns.
type Commented struct {
	Service  *Service
	Comments map[string][]string
}

// Comment adds a comment line above the field at path.
func (c *Commented) Comment(path, format string, args ...any) {
	if c.Comments == nil {
		c.Comments = map[string][]string{}
	}
	c.Comments[path] = append(c.Comments[path], fmt.Sprintf(format, args...))
}

// YAML writes the Service with its comments.
func (c *Commented) YAML() []byte { return FormatYAMLComments(c.Service, c.Comments) }

// CUJPath is the field path of the i-th CUJ, for comments.
func CUJPath(i int) string { return index("spec.cujs", i) }
