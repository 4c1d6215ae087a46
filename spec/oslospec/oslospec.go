// Package oslospec imports OpenSLO v1 documents (Service, SLO, SLI,
// DataSource, AlertPolicy, AlertCondition) into slolab Services.
//
// Each OpenSLO SLO becomes a CUJ of the Service it names: a ratio metric
// becomes an availability SLO, a threshold metric with op lt/lte a latency
// SLO. Prometheus queries are kept as the CUJ's queries, turned into event
// counts over {{.window}}. Whatever has no slolab equivalent (timeslice
// budgeting, calendar windows other than a month, extra objectives,
// non-Prometheus sources, notification targets) is reported as a note with
// the OpenSLO file's position, and as a comment in the generated spec: never
// dropped silently. OpenSLO has no routes or owners, so the importer writes
// placeholders and says so.
package oslospec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// APIVersion is the OpenSLO version this package reads.
const APIVersion = "openslo/v1"

// Options tune the import.
type Options struct {
	// ThresholdUnit is the unit of threshold metrics' values, which OpenSLO
	// leaves unsaid: a latency threshold of 500 means 500 of these.
	ThresholdUnit time.Duration
}

// Result is what an import produced.
type Result struct {
	Services []*spec.Commented
	Notes    []string

	noted map[string]bool
}

// notef adds a note once: a document several SLOs refer to (an alert
// policy, its conditions) is read once per SLO, and says its piece once.
func (r *Result) notef(n *spec.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil {
		msg = n.Pos.String() + ": " + msg
	}
	if r.noted[msg] {
		return
	}
	if r.noted == nil {
		r.noted = map[string]bool{}
	}
	r.noted[msg] = true
	r.Notes = append(r.Notes, msg)
}

// FormatPolicy writes error-budget policy rules for AnnotationPolicy.
func FormatPolicy(rules []*spec.PolicyRule) string {
	lines := make([]string, len(rules))
	for i, r := range rules {
		lines[i] = r.When.String() + ": " + r.Action
	}
	return strings.Join(lines, "\n")
}

// policy reads AnnotationPolicy back; a line it cannot read is a note.
func (im *importer) policy(ann *spec.Node) []*spec.PolicyRule {
	n := ann.Get(AnnotationPolicy)
	var out []*spec.PolicyRule
	for _, line := range strings.Split(text(n), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		when, action, _ := strings.Cut(line, ": ")
		c, err := spec.ParseBudgetCondition(strings.TrimSpace(when))
		if err != nil || strings.TrimSpace(action) == "" {
			im.res.notef(n, "annotation %s: %q is not a policy rule (WHEN: ACTION); it is not imported", AnnotationPolicy, line)
			continue
		}
		out = append(out, &spec.PolicyRule{When: c, Action: strings.TrimSpace(action)})
	}
	return out
}

// PlaceholderOwner is the owner of a CUJ whose OpenSLO SLO names none.
const PlaceholderOwner = "unassigned"

// Annotations of SLOs that `slolab gen openslo` wrote, carrying what OpenSLO
// has no field for; package gen/openslo writes them.
const (
	AnnotationSLI       = "slolab.dev/sli"
	AnnotationThreshold = "slolab.dev/threshold"
	AnnotationOwner     = "slolab.dev/owner"
	AnnotationRoutes    = "slolab.dev/routes"
	AnnotationMetrics   = "slolab.dev/metrics"
	AnnotationCUJ       = "slolab.dev/cuj"
	// AnnotationDescription is the CUJ's description (an SLO's own
	// description also says what the objective is).
	AnnotationDescription = "slolab.dev/description"
	// AnnotationShortWindow is the short window of a burn-rate alert
	// condition: OpenSLO's burnrate condition has one lookback window.
	AnnotationShortWindow = "slolab.dev/short-window"
	// AnnotationPolicy is the error-budget policy of a Service (on the
	// Service) or of a CUJ (on its SLOs), one rule a line: "WHEN: ACTION",
	// e.g. "remaining < 25%: freeze feature launches". OpenSLO has none.
	AnnotationPolicy = "slolab.dev/policy"
	// MetricsSlolab says the queries read slolab's own metrics, so the
	// importer need not keep them as the CUJ's queries.
	MetricsSlolab = "slolab"
)

type doc struct {
	kind, name string
	node       *spec.Node
}

// Import reads OpenSLO documents: a YAML stream, or a YAML list of documents.
func Import(name string, data []byte, opt Options) (*Result, error) {
	if opt.ThresholdUnit == 0 {
		opt.ThresholdUnit = time.Millisecond
	}
	nodes, err := spec.ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	var docs []doc
	var errs spec.Errors
	var flat []*spec.Node
	for _, n := range nodes {
		if n.Kind == spec.ListNode {
			flat = append(flat, n.Items...)
		} else {
			flat = append(flat, n)
		}
	}
	for _, n := range flat {
		if n.Kind != spec.MapNode {
			errs = append(errs, &spec.Error{Pos: n.Pos, Msg: "want an OpenSLO document (a mapping)"})
			continue
		}
		if v := text(n.Get("apiVersion")); v != APIVersion {
			errs = append(errs, &spec.Error{Pos: n.Pos, Path: "apiVersion", Msg: fmt.Sprintf("want %s, got %q", APIVersion, v)})
			continue
		}
		docs = append(docs, doc{kind: text(n.Get("kind")), name: text(n.Get("metadata").Get("name")), node: n})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	im := &importer{opt: opt, res: &Result{}, byKind: map[string]map[string]*spec.Node{}}
	for _, d := range docs {
		if im.byKind[d.kind] == nil {
			im.byKind[d.kind] = map[string]*spec.Node{}
		}
		im.byKind[d.kind][d.name] = d.node
	}
	im.run(docs)
	return im.res, nil
}

type importer struct {
	opt      Options
	res      *Result
	byKind   map[string]map[string]*spec.Node
	services map[string]*spec.Commented
	seen     map[string]bool // OpenSLO service names met
	order    []string
}

func text(n *spec.Node) string {
	if n == nil || n.Kind != spec.ScalarNode {
		return ""
	}
	return n.Value
}

var invalidName = regexp.MustCompile(`[^a-z0-9_-]+`)

// slolabName makes an OpenSLO name a slolab name.
func slolabName(s string) string {
	n := strings.Trim(invalidName.ReplaceAllString(strings.ToLower(s), "-"), "-_")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-_")
	}
	if n == "" {
		n = "unnamed"
	}
	return n
}

func (im *importer) service(name string, at *spec.Node) *spec.Commented {
	if im.services == nil {
		im.services = map[string]*spec.Commented{}
		im.seen = map[string]bool{}
	}
	key := slolabName(name)
	if s, ok := im.services[key]; ok {
		if s.Service.Name != name && !im.seen[name] {
			im.res.notef(at, "service %q becomes %q, which another name here also becomes: they are one service", name, key)
		}
		im.seen[name] = true
		return s
	}
	im.seen[name] = true
	s := &spec.Commented{Service: &spec.Service{Name: key}}
	if key != name {
		s.Comment("", "OpenSLO service %q is named %q here: slolab names are lower-case letters, digits, '-' and '_'.", name, key)
		im.res.notef(at, "service %q is named %q: slolab names are lower-case letters, digits, '-' and '_'", name, key)
	}
	im.services[key] = s
	im.order = append(im.order, key)
	return s
}

func (im *importer) run(docs []doc) {
	for _, d := range docs {
		switch d.kind {
		case "Service":
			s := im.service(d.name, d.node)
			if desc := text(d.node.Get("spec").Get("description")); desc != "" {
				s.Comment("", "%s", desc)
			}
			s.Service.Policy = append(s.Service.Policy, im.policy(d.node.Get("metadata").Get("annotations"))...)
			im.labels(s, d.node.Get("metadata").Get("labels"))
		case "SLO":
			im.slo(d.node)
		case "SLI", "DataSource", "AlertPolicy", "AlertCondition":
			// Read where an SLO refers to them.
		case "AlertNotificationTarget":
			im.res.notef(d.node, "AlertNotificationTarget %q is not imported: route slolab's alerts with Alertmanager or your pager", d.name)
		default:
			im.res.notef(d.node, "kind %q is not an OpenSLO v1 kind slolab reads; skipped", d.kind)
		}
	}
	for _, key := range im.order {
		s := im.services[key]
		if len(s.Service.CUJs) == 0 {
			im.res.Notes = append(im.res.Notes, fmt.Sprintf("service %q has no SLO: a slolab spec needs at least one CUJ, so it is not written", key))
			continue
		}
		im.res.Services = append(im.res.Services, s)
	}
}

func (im *importer) labels(s *spec.Commented, n *spec.Node) {
	if n == nil || n.Kind != spec.MapNode {
		return
	}
	for i, k := range n.Keys {
		v := n.Items[i]
		var val string
		switch v.Kind {
		case spec.ScalarNode:
			val = v.Value
		case spec.ListNode:
			var parts []string
			for _, it := range v.Items {
				parts = append(parts, text(it))
			}
			val = strings.Join(parts, ",")
			if len(parts) > 1 {
				im.res.notef(v, "label %s has %d values; slolab labels have one, so they are joined: %q", k.Value, len(parts), val)
			}
		}
		if s.Service.Labels == nil {
			s.Service.Labels = map[string]string{}
		}
		s.Service.Labels[k.Value] = val
	}
}

// resolve returns an inline object (n itself) or the document a ref names.
func (im *importer) resolve(n *spec.Node, refKey, kind string) *spec.Node {
	if n == nil {
		return nil
	}
	if ref := text(n.Get(refKey)); ref != "" {
		d := im.byKind[kind][ref]
		if d == nil {
			im.res.notef(n.Get(refKey), "%s %q is not in the file; its part of the SLO is not imported", kind, ref)
		}
		return d
	}
	return n
}

func (im *importer) slo(n *spec.Node) {
	name := text(n.Get("metadata").Get("name"))
	sp := n.Get("spec")
	svcName := text(sp.Get("service"))
	if svcName == "" {
		svcName = name
		im.res.notef(n, "SLO %q names no service; it gets a service of its own", name)
	}
	s := im.service(svcName, sp.Get("service"))
	ann := n.Get("metadata").Get("annotations")
	// SLOs that slolab generated name their CUJ: its two SLIs are two
	// OpenSLO SLOs, merged back into one CUJ here.
	i := len(s.Service.CUJs)
	var existing *spec.CUJ
	if cujName := text(ann.Get(AnnotationCUJ)); cujName != "" {
		for j, o := range s.Service.CUJs {
			if o.Name == cujName {
				existing, i = o, j
			}
		}
	}
	path := spec.CUJPath(i)
	imported := false
	defer func() {
		if !imported { // the comments were about a CUJ that is not written
			for k := range s.Comments {
				if k == path || strings.HasPrefix(k, path+".") {
					delete(s.Comments, k)
				}
			}
		}
	}()
	c := &spec.CUJ{Name: slolabName(name), Owner: PlaceholderOwner, Description: text(sp.Get("description"))}
	if cujName := text(ann.Get(AnnotationCUJ)); cujName != "" {
		c.Name = cujName
		c.Description = text(ann.Get(AnnotationDescription))
	}
	if c.Description == "" && ann.Get(AnnotationCUJ) == nil {
		c.Description = text(n.Get("metadata").Get("displayName"))
	}
	s.Comment(path, "From OpenSLO SLO %q (%s).", name, n.Pos)
	for _, o := range s.Service.CUJs {
		if o.Name == c.Name && existing == nil {
			c.Name = fmt.Sprintf("%s-%d", c.Name, i+1)
		}
	}
	if team := text(n.Get("metadata").Get("labels").Get("team")); team != "" {
		c.Owner = team
	} else if tl := n.Get("metadata").Get("labels").Get("team"); tl != nil && tl.Kind == spec.ListNode && len(tl.Items) > 0 {
		c.Owner = slolabName(text(tl.Items[0]))
	}
	if o := text(ann.Get(AnnotationOwner)); o != "" {
		c.Owner = o
	}
	if existing == nil {
		c.Policy = im.policy(ann)
	}
	for _, r := range strings.Split(text(ann.Get(AnnotationRoutes)), "\n") {
		if r = strings.TrimSpace(r); r != "" {
			c.Routes = append(c.Routes, spec.Route{Pattern: r})
		}
	}
	if len(c.Routes) == 0 {
		c.Routes = []spec.Route{{Pattern: "GET /" + c.Name}}
		s.Comment(path, "OpenSLO has no owners or routes: replace the owner and the placeholder route with the CUJ's real ones.")
		im.res.notef(n, "SLO %q: OpenSLO has no routes; CUJ %s gets the placeholder route %q and owner %q", name, c.Name, c.Routes[0].Pattern, c.Owner)
	}
	ownMetrics := text(ann.Get(AnnotationMetrics)) == MetricsSlolab

	window := im.window(sp.Get("timeWindow"), s, path)
	im.budgeting(sp, s, path)

	ind := sp.Get("indicator")
	if ind == nil {
		ind = im.resolve(sp, "indicatorRef", "SLI")
	}
	indSpec := ind.Get("spec")
	objectives := sp.Get("objectives")
	if objectives == nil || objectives.Kind != spec.ListNode || len(objectives.Items) == 0 {
		im.res.notef(n, "SLO %q has no objectives; it is not imported", name)
		return
	}
	obj := objectives.Items[0]
	for _, extra := range objectives.Items[1:] {
		s.Comment(path, "Objective %q (target %s) is not imported: slolab has one objective per SLI.", text(extra.Get("displayName")), text(extra.Get("target")))
		im.res.notef(extra, "objective %q of SLO %q is not imported: slolab has one objective per SLI; the first, %q, is", text(extra.Get("displayName")), name, text(obj.Get("displayName")))
	}
	objective, ok := im.objective(obj, name)
	if !ok {
		return
	}
	switch {
	case indSpec.Get("ratioMetric") != nil && text(ann.Get(AnnotationSLI)) == "latency":
		th, err := spec.ParseDuration(text(ann.Get(AnnotationThreshold)))
		if err != nil || th <= 0 {
			im.res.notef(ann.Get(AnnotationThreshold), "SLO %q: annotation %s %q is not a duration; the SLO is not imported", name, AnnotationThreshold, text(ann.Get(AnnotationThreshold)))
			return
		}
		c.Latency = &spec.LatencySLO{Threshold: th, Objective: objective, Window: window}
		if !ownMetrics {
			if q := im.ratioQueries(indSpec.Get("ratioMetric"), s, path+".latency"); q != nil {
				c.Queries = &spec.Queries{Latency: q}
			}
		}
	case indSpec.Get("ratioMetric") != nil:
		c.Availability = &spec.AvailabilitySLO{Objective: objective, Window: window}
		if !ownMetrics {
			if q := im.ratioQueries(indSpec.Get("ratioMetric"), s, path+".availability"); q != nil {
				c.Queries = &spec.Queries{Availability: q}
			}
		}
	case indSpec.Get("thresholdMetric") != nil:
		op := text(obj.Get("op"))
		if op != "lt" && op != "lte" {
			im.res.notef(obj, "SLO %q: a threshold objective with op %q is not a latency bound (slolab reads lt and lte); it is not imported", name, op)
			return
		}
		v, err := strconv.ParseFloat(text(obj.Get("value")), 64)
		if err != nil || v <= 0 {
			im.res.notef(obj.Get("value"), "SLO %q: threshold value %q is not a positive number; it is not imported", name, text(obj.Get("value")))
			return
		}
		th := time.Duration(v * float64(im.opt.ThresholdUnit))
		c.Latency = &spec.LatencySLO{Threshold: th, Objective: objective, Window: window}
		s.Comment(path+".latency", "OpenSLO threshold %s read in %s: %s (op %s).", text(obj.Get("value")), spec.FormatDuration(im.opt.ThresholdUnit), spec.FormatDuration(th), op)
		im.res.notef(obj.Get("value"), "SLO %q: OpenSLO threshold values have no unit; %s was read as %s", name, text(obj.Get("value")), spec.FormatDuration(th))
		src := im.resolve(indSpec.Get("thresholdMetric").Get("metricSource"), "metricSourceRef", "DataSource")
		im.sourceNote(src, s, path+".latency", indSpec.Get("thresholdMetric"))
		if src != nil && im.sourceType(src) == "Prometheus" {
			s.Comment(path+".latency", "The threshold metric's query is not imported: slolab's latency SLI counts requests under the threshold; write queries.latency {good, total} for your histogram.")
			im.res.notef(indSpec.Get("thresholdMetric"), "SLO %q: a threshold metric is a value, not event counts; its query is not imported: write queries.latency {good, total}", name)
		}
	default:
		im.res.notef(ind, "SLO %q: its indicator has neither ratioMetric nor thresholdMetric; it is not imported", name)
		return
	}
	if existing == nil || existing.Alerting == nil {
		im.alerts(sp.Get("alertPolicies"), s, c, path)
	}
	imported = true
	if existing != nil {
		if c.Availability != nil {
			existing.Availability = c.Availability
		}
		if c.Latency != nil {
			existing.Latency = c.Latency
		}
		if c.Queries != nil {
			if existing.Queries == nil {
				existing.Queries = &spec.Queries{}
			}
			if c.Queries.Availability != nil {
				existing.Queries.Availability = c.Queries.Availability
			}
			if c.Queries.Latency != nil {
				existing.Queries.Latency = c.Queries.Latency
			}
		}
		if existing.Alerting == nil {
			existing.Alerting = c.Alerting
		}
		return
	}
	s.Service.CUJs = append(s.Service.CUJs, c)
}

// objective reads target (0.99) or targetPercent (99).
func (im *importer) objective(obj *spec.Node, slo string) (spec.Ratio, bool) {
	if t := obj.Get("target"); t != nil {
		r, err := spec.ParseRatio(text(t))
		if err == nil && !r.IsZero() && r.Cmp(spec.One) < 0 {
			return r, true
		}
		im.res.notef(t, "SLO %q: target %q is not a ratio strictly between 0 and 1; it is not imported", slo, text(t))
		return spec.Ratio{}, false
	}
	if t := obj.Get("targetPercent"); t != nil {
		r, err := spec.ParsePercent(text(t))
		if err == nil && !r.IsZero() && r.Cmp(spec.One) < 0 {
			return r, true
		}
		im.res.notef(t, "SLO %q: targetPercent %q is not strictly between 0 and 100; it is not imported", slo, text(t))
		return spec.Ratio{}, false
	}
	im.res.notef(obj, "SLO %q: the objective has no target; it is not imported", slo)
	return spec.Ratio{}, false
}

// openSLODuration reads OpenSLO durations: m (minute), h, d, w, M (month), Q, Y.
var openSLODuration = regexp.MustCompile(`^(\d+)(m|h|d|w|M|Q|Y)$`)

func (im *importer) window(tw *spec.Node, s *spec.Commented, path string) spec.Window {
	if tw == nil || tw.Kind != spec.ListNode || len(tw.Items) == 0 {
		return spec.DefaultWindow
	}
	w := tw.Items[0]
	if len(tw.Items) > 1 {
		im.res.notef(tw.Items[1], "only the first time window is imported")
	}
	dur := text(w.Get("duration"))
	rolling := text(w.Get("isRolling")) == "true"
	m := openSLODuration.FindStringSubmatch(dur)
	if m == nil {
		im.res.notef(w.Get("duration"), "time window %q is not an OpenSLO duration; the CUJ uses %s", dur, spec.DefaultWindow)
		s.Comment(path, "OpenSLO time window %q could not be read; the window is %s.", dur, spec.DefaultWindow)
		return spec.DefaultWindow
	}
	n, _ := strconv.Atoi(m[1])
	if !rolling {
		if n == 1 && m[2] == "M" {
			return spec.Window{Calendar: "month"}
		}
		desc := fmt.Sprintf("calendar window %s", dur)
		if cal := w.Get("calendar"); cal != nil {
			desc += fmt.Sprintf(" from %s %s", text(cal.Get("startTime")), text(cal.Get("timeZone")))
		}
		im.res.notef(w, "%s: slolab's calendar windows are months; it is read as a rolling window", desc)
		s.Comment(path, "OpenSLO %s is read as a rolling window (slolab's calendar windows are months).", desc)
	}
	var d time.Duration
	switch m[2] {
	case "m":
		d = time.Duration(n) * time.Minute
	case "h":
		d = time.Duration(n) * time.Hour
	case "d":
		d = time.Duration(n) * spec.Day
	case "w":
		d = time.Duration(n) * spec.Week
	case "M":
		d = time.Duration(n) * 30 * spec.Day
	case "Q":
		d = time.Duration(n) * 90 * spec.Day
	case "Y":
		d = time.Duration(n) * 365 * spec.Day
	}
	if m[2] == "M" || m[2] == "Q" || m[2] == "Y" {
		im.res.notef(w.Get("duration"), "rolling window %s is read as %s", dur, spec.FormatDuration(d))
	}
	if d < time.Hour || d > 400*spec.Day {
		im.res.notef(w.Get("duration"), "time window %s is outside slolab's 1h to 400d (OpenSLO's m is a minute; a month is M); the CUJ uses %s", dur, spec.DefaultWindow)
		s.Comment(path, "OpenSLO time window %s is outside 1h to 400d; the window is %s.", dur, spec.DefaultWindow)
		return spec.DefaultWindow
	}
	return spec.Window{Rolling: d}
}

func (im *importer) budgeting(sp *spec.Node, s *spec.Commented, path string) {
	m := text(sp.Get("budgetingMethod"))
	if m == "" || m == "Occurrences" {
		return
	}
	var detail string
	if objs := sp.Get("objectives"); objs != nil && objs.Kind == spec.ListNode && len(objs.Items) > 0 {
		o := objs.Items[0]
		if t := text(o.Get("timeSliceTarget")); t != "" {
			detail = fmt.Sprintf(" (slices of %s good at %s)", text(o.Get("timeSliceWindow")), t)
		} else if w := text(o.Get("timeSliceWindow")); w != "" {
			detail = fmt.Sprintf(" (slices of %s)", w)
		}
	}
	im.res.notef(sp.Get("budgetingMethod"), "budgeting method %s%s is not imported: slolab counts events (Occurrences)", m, detail)
	s.Comment(path, "OpenSLO budgeting method %s%s is read as Occurrences: slolab counts events.", m, detail)
}

func (im *importer) sourceType(src *spec.Node) string {
	if t := text(src.Get("type")); t != "" {
		return t
	}
	return text(src.Get("spec").Get("type"))
}

func (im *importer) sourceNote(src *spec.Node, s *spec.Commented, path string, at *spec.Node) {
	if src == nil {
		return
	}
	if t := im.sourceType(src); t != "Prometheus" {
		im.res.notef(at, "metric source type %q is not Prometheus: its query is not imported, and slolab's own metrics measure the CUJ", t)
		s.Comment(path, "OpenSLO metric source %q is not Prometheus: its query is not imported; slolab's own metrics apply.", t)
	}
}

// ratioQueries maps a ratio metric's Prometheus queries to event counts.
func (im *importer) ratioQueries(rm *spec.Node, s *spec.Commented, path string) *spec.QueryPair {
	if rm.Get("raw") != nil {
		im.res.notef(rm.Get("raw"), "a raw ratio metric is a ratio, not event counts; it is not imported")
		s.Comment(path, "The raw ratio query is not imported: slolab needs good or bad and total event counts.")
		return nil
	}
	counter := text(rm.Get("counter")) == "true"
	q := &spec.QueryPair{}
	var first *spec.Node
	for _, part := range []struct {
		key string
		dst *string
	}{{"good", &q.Good}, {"bad", &q.Bad}, {"total", &q.Total}} {
		p := rm.Get(part.key)
		if p == nil {
			continue
		}
		src := im.resolve(p.Get("metricSource"), "metricSourceRef", "DataSource")
		if src == nil {
			return nil
		}
		if first == nil {
			first = src
			im.sourceNote(src, s, path, p)
		}
		if im.sourceType(src) != "Prometheus" {
			return nil
		}
		query := text(src.Get("spec").Get("query"))
		if query == "" {
			query = text(src.Get("spec").Get("promql"))
		}
		*part.dst = countOver(query, counter)
	}
	if q.Total == "" || (q.Good == "") == (q.Bad == "") {
		im.res.notef(rm, "a ratio metric needs total and one of good and bad; its queries are not imported")
		return nil
	}
	how := "increase"
	if !counter {
		how = "sum_over_time"
	}
	im.res.notef(rm, "the ratio metric's Prometheus queries become event counts over each window with %s((QUERY)[{{.window}}:])", how)
	s.Comment(path, "OpenSLO queries wrapped in %s((QUERY)[{{.window}}:]) to count events over each window.", how)
	return q
}

// countOver turns an OpenSLO instant query into a count over {{.window}}: the
// increase of a counter, or the sum of a per-interval value.
func countOver(q string, counter bool) string {
	if counter {
		return fmt.Sprintf("increase((%s)[{{.window}}:])", q)
	}
	return fmt.Sprintf("sum_over_time((%s)[{{.window}}:])", q)
}

func (im *importer) alerts(policies *spec.Node, s *spec.Commented, c *spec.CUJ, path string) {
	if policies == nil || policies.Kind != spec.ListNode {
		return
	}
	for _, item := range policies.Items {
		p := item
		if text(item.Get("kind")) != "AlertPolicy" {
			p = im.resolve(item, "alertPolicyRef", "AlertPolicy")
		}
		if p == nil {
			continue
		}
		if nt := p.Get("spec").Get("notificationTargets"); nt != nil {
			im.res.notef(nt, "alert policy %q: notification targets are not imported; route slolab's alerts with Alertmanager", text(p.Get("metadata").Get("name")))
		}
		conds := p.Get("spec").Get("conditions")
		if conds == nil || conds.Kind != spec.ListNode {
			continue
		}
		for _, ci := range conds.Items {
			cond := ci
			if text(ci.Get("kind")) != "AlertCondition" {
				cond = im.resolve(ci, "conditionRef", "AlertCondition")
			}
			if cond == nil {
				continue
			}
			im.condition(cond, s, c, path)
		}
	}
}

func (im *importer) condition(cond *spec.Node, s *spec.Commented, c *spec.CUJ, path string) {
	cs := cond.Get("spec")
	k := cs.Get("condition")
	name := text(cond.Get("metadata").Get("name"))
	if text(k.Get("kind")) != "burnrate" {
		im.res.notef(cond, "alert condition %q of kind %q is not imported: slolab alerts on burn rates", name, text(k.Get("kind")))
		return
	}
	factor, err := spec.ParseRatio(text(k.Get("threshold")))
	long, err2 := spec.ParseDuration(strings.ReplaceAll(text(k.Get("lookbackWindow")), "M", "m"))
	if err != nil || err2 != nil || factor.IsZero() || long < 12*time.Minute {
		im.res.notef(cond, "alert condition %q: burn rate %q over %q cannot be read; it is not imported", name, text(k.Get("threshold")), text(k.Get("lookbackWindow")))
		return
	}
	sev := "ticket"
	switch strings.ToLower(text(cs.Get("severity"))) {
	case "page", "critical", "high", "urgent":
		sev = "page"
	}
	// slolab's own conditions carry their short window; others get the
	// Workbook's twelfth.
	short := long / 12
	if sw := cond.Get("metadata").Get("annotations").Get(AnnotationShortWindow); sw != nil {
		if d, err := spec.ParseDuration(text(sw)); err == nil && d > 0 && d < long {
			short = d
		} else {
			im.res.notef(sw, "alert condition %q: annotation %s %q is not a duration shorter than %s; the short window is a twelfth of it", name, AnnotationShortWindow, text(sw), spec.FormatDuration(long))
		}
	} else {
		im.res.notef(cond, "alert condition %q: burn rate %s over %s (severity %q) becomes a %s alert with the Workbook's short window of a twelfth, %s",
			name, factor.Decimal(), spec.FormatDuration(long), text(cs.Get("severity")), sev, spec.FormatDuration(short))
		s.Comment(path+".alerting", "From OpenSLO alert condition %q: short windows are a twelfth of the long one, as in the SRE Workbook.", name)
	}
	if c.Alerting == nil {
		c.Alerting = &spec.Alerting{}
	}
	c.Alerting.BurnRates = append(c.Alerting.BurnRates, spec.BurnRateAlert{Severity: sev, Long: long, Short: short, Factor: factor})
	if a := text(k.Get("alertAfter")); a != "" {
		if d, err := spec.ParseDuration(strings.ReplaceAll(a, "M", "m")); err != nil || d != 0 {
			im.res.notef(k.Get("alertAfter"), "alert condition %q: alertAfter %s is not imported: slolab alerts as soon as both windows burn, and the short window confirms the burn", name, a)
		}
	}
}
