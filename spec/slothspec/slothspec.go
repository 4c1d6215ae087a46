// Package slothspec imports Sloth's prometheus/v1 spec into a slolab
// Service: each Sloth SLO becomes a CUJ with an availability SLO whose
// queries are Sloth's error and total queries, turned from rates into event
// counts. What has no slolab equivalent (raw ratio queries, plugins, alert
// names, labels and annotations, disabled alerts) is reported as a note with
// the Sloth file's position and as a comment in the written spec.
package slothspec

import (
	"fmt"
	"regexp"
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
	if labels := d.Get("labels"); labels != nil && labels.Kind == spec.MapNode {
		svc.Labels = map[string]string{}
		for i, k := range labels.Keys {
			svc.Labels[k.Value] = text(labels.Items[i])
		}
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
		cuj := importSLO(s, owner, res, c, len(svc.CUJs))
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

func importSLO(s *spec.Node, owner string, res *Result, c *spec.Commented, i int) *spec.CUJ {
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
	if l := s.Get("labels"); l != nil && len(l.Keys) > 0 {
		res.notef(l, "SLO %q: its labels are not imported: slolab labels every series with service, cuj and slo", sloName)
	}
	if a := s.Get("alerting"); a != nil {
		for _, k := range []string{"name", "labels", "annotations"} {
			if v := a.Get(k); v != nil {
				res.notef(v, "SLO %q: alerting.%s is not imported: slolab's alerts are SLOBurnRateHigh with severity, window and runbook labels and annotations", sloName, k)
			}
		}
		for _, k := range []string{"page_alert", "ticket_alert"} {
			pa := a.Get(k)
			if pa == nil {
				continue
			}
			if text(pa.Get("disable")) == "true" {
				res.notef(pa.Get("disable"), "SLO %q: %s is disabled in Sloth; slolab has no switch per severity, so the CUJ keeps the Workbook's %s alerts", sloName, k, strings.TrimSuffix(k, "_alert"))
				c.Comment(path+".availability", "Sloth disabled this SLO's %s; slolab keeps the Workbook's %s alerts.", k, strings.TrimSuffix(k, "_alert"))
			}
			for _, kk := range []string{"labels", "annotations"} {
				if pa.Get(kk) != nil {
					res.notef(pa.Get(kk), "SLO %q: alerting.%s.%s is not imported", sloName, k, kk)
				}
			}
		}
	}
	return cuj
}

// counts turns a Sloth rate query into an event count over the same window.
func counts(q string) string {
	return rateCall.ReplaceAllString(q, "${1}increase(")
}
