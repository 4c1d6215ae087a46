// Package slothspec imports Sloth's prometheus/v1 spec into a slolab
// Service: each Sloth SLO becomes a CUJ with an availability SLO whose
// queries are Sloth's error and total queries, turned from rates into event
// counts. Alert routing survives the move: Sloth's alert name, its labels
// and annotations, those of its page and ticket alerts, disabled alerts,
// and the labels every Sloth alert carries from its recording rules
// (sloth_id, sloth_service, sloth_slo, sloth_severity, the spec's and the
// SLO's labels) become the CUJ's alerting, which `slolab gen prometheus`
// and the engine's notifications use. What has no slolab equivalent (raw
// ratio queries, plugins, a label slolab sets itself) is reported as a note
// with the Sloth file's position and as a comment in the written spec.
package slothspec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"slolab.dev/slolab/spec"
)

// Version is the Sloth spec version this package reads.
const Version = "prometheus/v1"

// Result is what an import produced.
type Result struct {
	Service *spec.Commented
	Notes   []string
}

func (r *Result) notef(n *spec.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil {
		msg = n.Pos.String() + ": " + msg
	}
	r.Notes = append(r.Notes, msg)
}

func text(n *spec.Node) string {
	if n == nil || n.Kind != spec.ScalarNode {
		return ""
	}
	return n.Value
}

var invalidName = regexp.MustCompile(`[^a-z0-9_-]+`)

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

// rateCall finds rate( and its variants that are not irate(.
var rateCall = regexp.MustCompile(`(^|[^A-Za-z0-9_:])rate\(`)

// Import reads one Sloth prometheus/v1 document.
func Import(name string, data []byte) (*Result, error) {
	docs, err := spec.ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 || docs[0].Kind != spec.MapNode {
		return nil, spec.Errors{{Pos: spec.Pos{File: name}, Msg: "want one Sloth spec (a mapping with version, service and slos)"}}
	}
	d := docs[0]
	if v := text(d.Get("version")); v != Version {
		return nil, spec.Errors{{Pos: d.Pos, Path: "version", Msg: fmt.Sprintf("want %q (Sloth's prometheus/v1 format), got %q", Version, v)}}
	}
	res := &Result{}
	svcName := text(d.Get("service"))
	svc := &spec.Service{Name: slolabName(svcName)}
	c := &spec.Commented{Service: svc}
	res.Service = c
	c.Comment("", "Imported from Sloth spec %s (%s).", name, Version)
	if svc.Name != svcName {
		res.notef(d.Get("service"), "service %q is named %q: slolab names are lower-case letters, digits, '-' and '_'", svcName, svc.Name)
	}
	owner := "unassigned"
	// Every Sloth alert carries sloth_service and the spec's labels (from
	// its recording rules); they route alerts, so they stay on slolab's.
	svc.Alerting = &spec.Alerting{AlertIdentity: spec.AlertIdentity{Labels: map[string]string{"sloth_service": svcName}}}
	if labels := d.Get("labels"); labels != nil && labels.Kind == spec.MapNode {
		svc.Labels = map[string]string{}
		for i, k := range labels.Keys {
			svc.Labels[k.Value] = text(labels.Items[i])
		}
		res.alertLabels(labels, "labels", svc.Alerting.Labels)
		if o := svc.Labels["owner"]; o != "" {
			owner = o
		} else if o := svc.Labels["team"]; o != "" {
			owner = o
		}
	}
	slos := d.Get("slos")
	if slos == nil || slos.Kind != spec.ListNode {
		return nil, spec.Errors{{Pos: d.Pos, Path: "slos", Msg: "want a list of SLOs"}}
	}
	seen := map[string]bool{}
	for _, s := range slos.Items {
		before := len(res.Notes)
		cuj := importSLO(s, svcName, owner, res, c, len(svc.CUJs))
		if cuj == nil {
			for _, n := range res.Notes[before:] {
				c.Comment("", "Not imported: %s", n)
			}
			continue
		}
		if seen[cuj.Name] {
			cuj.Name = fmt.Sprintf("%s-%d", cuj.Name, len(svc.CUJs)+1)
		}
		seen[cuj.Name] = true
		svc.CUJs = append(svc.CUJs, cuj)
	}
	if len(svc.CUJs) == 0 {
		return nil, spec.Errors{{Pos: slos.Pos, Path: "slos", Msg: "no SLO could be imported:\n" + strings.Join(res.Notes, "\n")}}
	}
	return res, nil
}

// alertLabels copies a Sloth mapping of labels into an alert's labels,
// leaving out (with a note) those slolab sets itself.
func (r *Result) alertLabels(n *spec.Node, what string, into map[string]string) {
	if n == nil || n.Kind != spec.MapNode {
		return
	}
	for i, k := range n.Keys {
		if slices.Contains(spec.AlertLabels, k.Value) {
			r.notef(k, "%s: label %s=%q is not kept on the alerts: slolab sets %s itself", what, k.Value, text(n.Items[i]), k.Value)
			continue
		}
		into[k.Value] = text(n.Items[i])
	}
}

func importSLO(s *spec.Node, svcName, owner string, res *Result, c *spec.Commented, i int) *spec.CUJ {
	sloName := text(s.Get("name"))
	path := spec.CUJPath(i)
	cuj := &spec.CUJ{Name: slolabName(sloName), Owner: owner, Description: text(s.Get("description"))}
	objective, err := spec.ParsePercent(text(s.Get("objective")))
	if err != nil || objective.IsZero() || objective.Cmp(spec.One) >= 0 {
		res.notef(s.Get("objective"), "SLO %q: objective %q is not a percentage strictly between 0 and 100; the SLO is not imported", sloName, text(s.Get("objective")))
		return nil
	}
	sli := s.Get("sli")
	var q *spec.QueryPair
	switch {
	case sli.Get("events") != nil:
		ev := sli.Get("events")
		bad, total := text(ev.Get("error_query")), text(ev.Get("total_query"))
		if bad == "" || total == "" {
			res.notef(ev, "SLO %q: events need error_query and total_query; the SLO is not imported", sloName)
			return nil
		}
		q = &spec.QueryPair{Bad: counts(bad), Total: counts(total)}
		if q.Bad != bad || q.Total != total {
			res.notef(ev, "SLO %q: Sloth's queries are rates and slolab's count events, so rate( became increase( (the ratio is the same)", sloName)
		}
	case sli.Get("raw") != nil:
		res.notef(sli.Get("raw"), "SLO %q: a raw error_ratio_query is a ratio, not event counts; the SLO is not imported (write it as events)", sloName)
		return nil
	case sli.Get("plugin") != nil:
		res.notef(sli.Get("plugin"), "SLO %q: Sloth SLI plugin %q is not imported; the SLO is not imported (write it as events)", sloName, text(sli.Get("plugin").Get("id")))
		return nil
	default:
		res.notef(s, "SLO %q has no sli; it is not imported", sloName)
		return nil
	}
	cuj.Availability = &spec.AvailabilitySLO{Objective: objective, Window: spec.DefaultWindow}
	cuj.Queries = &spec.Queries{Availability: q}
	cuj.Routes = []spec.Route{{Pattern: "GET /" + cuj.Name}}
	c.Comment(path, "From Sloth SLO %q (%s).", sloName, s.Pos)
	c.Comment(path, "Sloth has no routes: replace the placeholder route with the CUJ's real ones.")
	res.notef(s, "SLO %q: Sloth has no routes; CUJ %s gets the placeholder route %q", sloName, cuj.Name, cuj.Routes[0].Pattern)
	if strings.Contains(strings.ToLower(sloName), "latency") {
		res.notef(s.Get("name"), "SLO %q reads as a latency SLO, but Sloth's events carry no threshold: it is imported as the CUJ's availability SLO over its own queries", sloName)
		c.Comment(path+".availability", "Sloth's SLO %q may measure latency; slolab keeps its event queries here.", sloName)
	}
	// Sloth's alerts of this SLO: their name, the labels from its recording
	// rules (sloth_id, sloth_slo, the SLO's labels) and alerting's.
	id := spec.AlertIdentity{Labels: map[string]string{"sloth_id": svcName + "-" + sloName, "sloth_slo": sloName}}
	res.alertLabels(s.Get("labels"), fmt.Sprintf("SLO %q", sloName), id.Labels)
	a := s.Get("alerting")
	id.Name = text(a.Get("name"))
	res.alertLabels(a.Get("labels"), fmt.Sprintf("SLO %q: alerting", sloName), id.Labels)
	id.Annotations = stringMap(a.Get("annotations"))
	cuj.Alerting = &spec.Alerting{AlertIdentity: id}
	for _, sev := range []struct {
		key, severity string
		into          **spec.SeverityAlerting
	}{{"page_alert", "page", &cuj.Alerting.Page}, {"ticket_alert", "ticket", &cuj.Alerting.Ticket}} {
		pa := a.Get(sev.key)
		// Sloth labels each alert with its severity.
		sa := &spec.SeverityAlerting{AlertIdentity: spec.AlertIdentity{Labels: map[string]string{"sloth_severity": sev.severity}}}
		*sev.into = sa
		if pa == nil {
			continue
		}
		res.alertLabels(pa.Get("labels"), fmt.Sprintf("SLO %q: alerting.%s", sloName, sev.key), sa.Labels)
		sa.Annotations = stringMap(pa.Get("annotations"))
		if text(pa.Get("disable")) == "true" {
			sa.Disable = true
			c.Comment(path+".alerting", "Sloth disabled this SLO's %s: the CUJ has no %s alerts.", sev.key, sev.severity)
		}
	}
	if id.Name == "" && !(cuj.Alerting.Page.Disable && cuj.Alerting.Ticket.Disable) {
		res.notef(s, "SLO %q: Sloth's alerting has no name; the alerts are named %s", sloName, spec.DefaultAlertName)
	}
	return cuj
}

// stringMap reads a Sloth mapping of strings; nil when there is none.
func stringMap(n *spec.Node) map[string]string {
	if n == nil || n.Kind != spec.MapNode {
		return nil
	}
	m := make(map[string]string, len(n.Keys))
	for i, k := range n.Keys {
		m[k.Value] = text(n.Items[i])
	}
	return m
}

// counts turns a Sloth rate query into an event count over the same window.
func counts(q string) string {
	return rateCall.ReplaceAllString(q, "${1}increase(")
}
