// Package grafana generates one Grafana dashboard per service, importable as
// is: a row per CUJ with its SLIs against their objectives and the error
// budget left, then burn rates, the latency distribution (a heatmap of the
// duration histogram) and the faults injected. Its panels read the series
// the rules of package promrules record, so load those rules first.
package grafana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// SchemaVersion is the dashboard JSON schema the output uses (Grafana 10.x and 11.x).
const SchemaVersion = 39

// UID is the dashboard's uid, which the alerts' dashboard links use.
func UID(svc *spec.Service) string { return "slolab-" + svc.Name }

type obj = map[string]any

const ds = "${datasource}"

// colour is Grafana's JSON key, spelt the American way.
const colour = "color" //nolint:misspell // Grafana's key

func datasource() obj { return obj{"type": "prometheus", "uid": ds} }

func target(ref, expr, legend string) obj {
	return obj{"refId": ref, "datasource": datasource(), "expr": expr, "legendFormat": legend, "range": true}
}

// layout places panels on Grafana's 24-column grid, row by row.
type layout struct {
	panels []obj
	x, y   int
	rowH   int
	id     int
}

func (l *layout) add(p obj, w, h int) {
	if l.x+w > 24 {
		l.x, l.y = 0, l.y+l.rowH
		l.rowH = 0
	}
	l.id++
	p["id"] = l.id
	p["gridPos"] = obj{"x": l.x, "y": l.y, "w": w, "h": h}
	l.panels = append(l.panels, p)
	l.x += w
	l.rowH = max(l.rowH, h)
}

func (l *layout) row(title string) {
	if l.x > 0 {
		l.x, l.y, l.rowH = 0, l.y+l.rowH, 0
	}
	l.add(obj{"type": "row", "title": title, "collapsed": false, "panels": []obj{}}, 24, 1)
	l.x, l.y, l.rowH = 0, l.y+1, 0
}

// Generate writes SERVICE-dashboard.json.
func Generate(svc *spec.Service) (*gen.Output, error) {
	out := &gen.Output{}
	l := &layout{}
	svcSel := fmt.Sprintf(`service="%s"`, svc.Name)
	slos := gen.SLOs(svc)
	for _, c := range svc.CUJs {
		title := "CUJ " + c.Name
		if c.Description != "" {
			title += ": " + c.Description
		}
		l.row(title)
		for _, s := range slos {
			if s.CUJ != c {
				continue
			}
			sel := fmt.Sprintf(`{%s,cuj="%s",slo="%s"}`, svcSel, c.Name, s.Kind)
			objective := s.Objective.Float()
			l.add(obj2timeseries(fmt.Sprintf("%s %s SLI: %s", c.Name, s.Kind, s.Describe()), "percentunit", []obj{
				target("A", fmt.Sprintf("1 - %s5m%s", gen.RecordErrorRatio, sel), "5m"),
				target("B", fmt.Sprintf("1 - %s1h%s", gen.RecordErrorRatio, sel), "1h"),
			}, thresholds(objective), nil), 9, 8)
			l.add(obj{
				"type":        "stat",
				"title":       fmt.Sprintf("%s %s budget left (%s)", c.Name, s.Kind, s.Window),
				"datasource":  datasource(),
				"targets":     []obj{target("A", gen.RecordBudgetLeft+sel, "")},
				"fieldConfig": obj{"defaults": obj{"unit": "percentunit", "thresholds": obj{"mode": "absolute", "steps": []obj{{colour: "red", "value": nil}, {colour: "orange", "value": 0}, {colour: "green", "value": 0.25}}}}, "overrides": []obj{}},
				"options":     obj{"reduceOptions": obj{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}, "colorMode": "background", "graphMode": "area"},
			}, 3, 8)
		}
	}
	l.row("Burn rates, latency and faults")
	cujSel := fmt.Sprintf(`{%s,cuj=~"$cuj"}`, svcSel)
	var burn []obj
	for i, w := range []string{"5m", "1h", "6h", "3d"} {
		// The burn rate is the error ratio over the budget, 1 − objective;
		// the objective series carries a window label the ratio does not.
		burn = append(burn, target(string(rune('A'+i)), fmt.Sprintf("%s%s%s / ignoring(window) (1 - %s%s)", gen.RecordErrorRatio, w, cujSel, gen.RecordObjective, cujSel), "{{cuj}} {{slo}} "+w))
	}
	l.add(obj2timeseries("Burn rate (1 = spending the budget exactly over the SLO window)", "none", burn, obj{"mode": "absolute", "steps": []obj{{colour: "green", "value": nil}, {colour: "orange", "value": 1}, {colour: "red", "value": 14.4}}}, nil), 24, 9)
	l.add(obj{
		"type":       "heatmap",
		"title":      "Latency distribution ($cuj)",
		"datasource": datasource(),
		"targets": []obj{{
			"refId": "A", "datasource": datasource(), "format": "heatmap", "legendFormat": "{{le}}", "range": true,
			"expr": fmt.Sprintf(`sum by (le) (increase(%s_bucket{cuj=~"$cuj"}[$__rate_interval]))`, sli.MetricDuration),
		}},
		"options": obj{"calculate": false, "yAxis": obj{"unit": "s"}, "cellGap": 1, colour: obj{"mode": "scheme", "scheme": "Oranges"}},
	}, 12, 9)
	l.add(obj2timeseries("Requests per second by CUJ", "reqps", []obj{
		target("A", fmt.Sprintf(`sum by (cuj) (rate(%s{cuj=~"$cuj"}[$__rate_interval]))`, sli.MetricRequests), "{{cuj}}"),
		target("B", fmt.Sprintf(`sum by (cuj) (rate(%s{cuj=~"$cuj",code=~"%s"}[$__rate_interval]))`, sli.MetricRequests, sli.AvailabilityBadCodes), "{{cuj}} errors"),
	}, nil, nil), 12, 9)
	l.add(obj2timeseries("Faults injected per second", "reqps", []obj{
		target("A", fmt.Sprintf(`sum by (fault) (rate(%s[$__rate_interval]))`, sli.MetricFaultInjected), "{{fault}} injected"),
		target("B", fmt.Sprintf(`sum by (fault) (rate(%s[$__rate_interval]))`, sli.MetricFaultMatched), "{{fault}} matched"),
	}, nil, obj{"drawStyle": "bars", "fillOpacity": 60}), 24, 8)

	var options []obj
	for _, c := range svc.CUJs {
		options = append(options, obj{"text": c.Name, "value": c.Name, "selected": false})
	}
	dash := obj{
		"uid":           UID(svc),
		"title":         "slolab " + svc.Name,
		"description":   fmt.Sprintf("SLOs per Critical User Journey of %s, generated by slolab from its spec. Needs the rules of `slolab gen prometheus`.", svc.Name),
		"tags":          []string{"slolab", "slo", svc.Name},
		"schemaVersion": SchemaVersion,
		"version":       1,
		"editable":      true,
		"graphTooltip":  1,
		"time":          obj{"from": "now-6h", "to": "now"},
		"refresh":       "30s",
		"timezone":      "",
		"panels":        l.panels,
		"annotations":   obj{"list": []obj{}},
		"links":         []obj{},
		"templating": obj{"list": []obj{
			{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": obj{}, "hide": 0},
			{"name": "cuj", "label": "CUJ", "type": "custom", "query": strings.Join(svc.CUJNames(), ","), "multi": true, "includeAll": true,
				"allValue": ".+", "current": obj{"text": "All", "value": "$__all"}, "options": options, "hide": 0},
		}},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(dash); err != nil {
		return nil, err
	}
	out.Files = append(out.Files, gen.File{Name: svc.Name + "-dashboard.json", Data: b.Bytes()})
	return out, nil
}

func thresholds(objective float64) obj {
	return obj{"mode": "absolute", "steps": []obj{{colour: "red", "value": nil}, {colour: "green", "value": objective}}}
}

func obj2timeseries(title, unit string, targets []obj, th obj, custom obj) obj {
	defaults := obj{"unit": unit, "custom": obj{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0}}
	if custom != nil {
		defaults["custom"] = custom
	}
	if th != nil {
		defaults["thresholds"] = th
		c := defaults["custom"].(obj)
		c["thresholdsStyle"] = obj{"mode": "line"}
	}
	return obj{
		"type":        "timeseries",
		"title":       title,
		"datasource":  datasource(),
		"targets":     targets,
		"fieldConfig": obj{"defaults": defaults, "overrides": []obj{}},
		"options":     obj{"legend": obj{"displayMode": "list", "placement": "bottom"}, "tooltip": obj{"mode": "multi"}},
	}
}
