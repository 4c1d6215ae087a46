package main

import (
	"fmt"
	"regexp"
	"strings"
)

// docs/benchmarks.md is generated: the template holds the prose that does
// not change between runs and a pair of markers per section,
//
//	<!-- bench:NAME:begin -->
//	<!-- bench:NAME:end -->
//
// and fill puts each section's body between its markers. A section this run
// did not measure keeps the body the current document has (so `-only proxy`
// refreshes one section), and the summary is rebuilt from the reading lines
// of every section.

var markerRe = regexp.MustCompile(`<!-- bench:([a-z0-9-]+):begin -->`)

// sectionNames lists the sections of a template, in order.
func sectionNames(tmpl string) []string {
	var names []string
	for _, m := range markerRe.FindAllStringSubmatch(tmpl, -1) {
		names = append(names, m[1])
	}
	return names
}

func markers(name string) (begin, end string) {
	return "<!-- bench:" + name + ":begin -->", "<!-- bench:" + name + ":end -->"
}

// section returns the body between a section's markers in doc.
func section(doc, name string) (string, bool) {
	begin, end := markers(name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", false
	}
	rest := doc[i+len(begin):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return strings.TrimPrefix(rest[:j], "\n"), true
}

// replaceSection puts body between name's markers in doc.
func replaceSection(doc, name, body string) (string, error) {
	begin, end := markers(name)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("template has no %s … %s pair", begin, end)
	}
	if body != "" && !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return doc[:i+len(begin)] + "\n" + body + doc[j:], nil
}

// fill builds the document from the template: fresh bodies for the sections
// in fresh, the old document's bodies for the others, then the summary.
func fill(tmpl, old string, fresh map[string]string) (string, error) {
	bodies := map[string]string{}
	names := sectionNames(tmpl)
	for _, name := range names {
		if name == "summary" {
			continue
		}
		body, ok := fresh[name]
		if !ok {
			body, ok = section(old, name)
		}
		if !ok || strings.TrimSpace(body) == "" {
			body = fmt.Sprintf("*Not run yet: `go run ./bench -only %s`.*\n", name)
		}
		bodies[name] = body
	}
	bodies["summary"] = summarize(names, bodies)
	doc := tmpl
	for _, name := range names {
		var err error
		if doc, err = replaceSection(doc, name, bodies[name]); err != nil {
			return "", err
		}
	}
	for name := range fresh {
		if _, ok := bodies[name]; !ok {
			return "", fmt.Errorf("section %q has no markers in the template", name)
		}
	}
	return doc, nil
}

var readingRe = regexp.MustCompile(`(?m)^- \*\*(leads|trails|on par|meets goal|misses goal)\*\*: (.*)$`)

// sectionTitles names sections in the summary.
var sectionTitles = map[string]string{
	"proxy": "Proxy", "exact": "Rate exactness", "delay": "Delay fidelity", "load": "Load generator",
	"realtime": "Load generator, real time", "slo": "SLO engine", "slo-prometheus": "SLO engine on Prometheus", "memory": "Memory", "profile": "Request path profile",
}

// summarize gathers every section's reading lines under where slolab leads,
// where it trails and where it is on par.
func summarize(names []string, bodies map[string]string) string {
	groups := map[string][]string{}
	for _, name := range names {
		if name == "summary" {
			continue
		}
		title := sectionTitles[name]
		if title == "" {
			title = name
		}
		for _, m := range readingRe.FindAllStringSubmatch(bodies[name], -1) {
			groups[m[1]] = append(groups[m[1]], fmt.Sprintf("- %s: %s", title, m[2]))
		}
	}
	var b strings.Builder
	for _, g := range []struct{ key, head string }{
		{"leads", "Where slolab leads"},
		{"trails", "Where slolab trails"},
		{"on par", "Where it is on par (within the noise of a shared machine: 5% for throughput, 20% or 1 ms for latency)"},
		{"meets goal", "Goals met"},
		{"misses goal", "Goals missed"},
	} {
		if len(groups[g.key]) == 0 && strings.HasSuffix(g.key, "goal") {
			continue
		}
		fmt.Fprintf(&b, "%s:\n\n", g.head)
		if len(groups[g.key]) == 0 {
			b.WriteString("- nowhere in this run.\n\n")
			continue
		}
		b.WriteString(strings.Join(groups[g.key], "\n") + "\n\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
