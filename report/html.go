package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// HTML writes the review as one self-contained page (inline CSS and SVG, no
// scripts), to attach to the meeting's notes or mail around.
func HTML(w io.Writer, r *slo.Review) error {
	return page.Execute(w, reviewPage{Review: r})
}

// reviewPage is what the page shows: the review and, read from a store,
// its new errors.
type reviewPage struct {
	*slo.Review
	NewErrors *NewErrors
}

var page = template.Must(template.New("review").Funcs(template.FuncMap{
	"time":      Time,
	"span":      func(d spec.Duration) string { return spec.FormatDuration(time.Duration(d)) },
	"sli":       SLIPercent,
	"count":     Count,
	"allowed":   Allowed,
	"pct":       func(v float64) string { return Percent(v, 1) },
	"sloName":   SLOName,
	"alerts":    alertSummary,
	"left":      budgetLeft,
	"state":     budgetState,
	"bad":       badWord,
	"step":      stepName,
	"label":     func(end time.Time, step spec.Duration) string { return stepLabel(end, time.Duration(step)) },
	"resolved":  resolvedAt,
	"lasted":    lasted,
	"burndown":  burndown,
	"peak":      func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"cap":       capitalise,
	"healthy":   func(s slo.SLOReview) bool { return !s.Budget.Exhausted && s.Met && len(s.Policy) == 0 },
	"exhausted": func(s slo.SLOReview) bool { return s.Budget.Exhausted || !s.Met },
	"history":   func(p reviewPage) []string { return HistoryNotes(&p.Span, p.To, time.Duration(p.Window)) },
	"statusOf":  statusText,
	"signature": signatureText,
	"seen":      seenTime,
	"example":   exampleText,
	"since":     func(d spec.Duration) string { return spec.FormatDuration(time.Duration(d)) },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SLO review: {{.Service}}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 64rem; color: #1d2329; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; } th, td { padding: .25rem .7rem; border-bottom: 1px solid #e6e9ec; text-align: left; }
th { background: #f4f6f8; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; } .warn { color: #9a6700; } .bad { color: #cf222e; font-weight: 600; }
.policy { background: #fff8c5; border-left: 4px solid #d4a72c; padding: .5rem 1rem; }
svg { display: block; margin: .4rem 0 .8rem; } .muted { color: #57606a; }
</style>
</head>
<body>
<h1>SLO review: {{.Service}}</h1>
<p class="muted">Window {{span .Window}}: {{time .From}} → {{time .To}}. Budgets and SLIs count every request in the window; the burn-down has a row per {{step .Step}}.</p>
{{range history .}}<p class="policy">{{.}}</p>
{{end}}<table>
<tr><th>CUJ</th><th>Owner</th><th>SLO</th><th>SLI</th><th>Budget left</th><th>Alerts</th><th>Policy</th></tr>
{{- range $c := .CUJs}}{{range .SLOs}}
<tr><td><a href="#{{$c.Name}}">{{$c.Name}}</a></td><td>{{$c.Owner}}</td><td>{{sloName .Kind .Objective .Threshold}}</td>
<td class="n">{{sli .SLIPercent}}</td><td class="n {{if exhausted .}}bad{{else if healthy .}}ok{{else}}warn{{end}}">{{left .}}</td>
<td>{{alerts .Alerts}}</td><td>{{range $i, $p := .Policy}}{{if $i}}; {{end}}{{$p.When}}{{else}}—{{end}}</td></tr>
{{- end}}{{end}}
</table>
{{- range $c := .CUJs}}
<h2 id="{{.Name}}">{{.Name}} <span class="muted">({{.Owner}})</span></h2>
{{if .Description}}<p>{{.Description}}</p>{{end}}
{{- range .SLOs}}
<h3>{{cap (sloName .Kind .Objective .Threshold)}}</h3>
<p>SLI {{sli .SLIPercent}}: {{count .Events.Total}} requests, {{count .Events.Bad}} {{bad .Kind}}.
{{- if .Events.Total}}{{if .Met}} <span class="ok">The objective is met.</span>{{else}} <span class="bad">The objective is missed.</span>{{end}}{{end}}
{{- if .TooFewToJudge}} <span class="warn">Too few to judge.</span>{{end}}<br>
Budget: {{allowed .Budget.Allowed}} bad requests allowed, {{count .Budget.Spent}} spent ({{pct .Budget.ConsumedPercent}}): {{state .}}.</p>
{{burndown .Trend}}
<table>
<tr><th>{{cap (step $.Step)}}</th><th>Requests</th><th>Bad</th><th>Spent</th><th>Left</th></tr>
{{- range .Trend}}
<tr><td>{{label .End $.Step}}</td><td class="n">{{count .Events.Total}}</td><td class="n">{{count .Events.Bad}}</td><td class="n">{{pct .ConsumedPercent}}</td><td class="n">{{pct .RemainingPercent}}</td></tr>
{{- end}}
</table>
{{- if .Alerts}}
<table>
<tr><th>Alert</th><th>Windows</th><th>Fired</th><th>Resolved</th><th>Lasted</th><th>Peak burn rate</th></tr>
{{- range .Alerts}}
<tr><td>{{.Severity}}</td><td>{{.Pair}} ≥ {{.Factor}}</td><td>{{time .Fired}}</td><td>{{resolved .}}</td><td>{{lasted . $.To}}</td><td class="n">{{peak .PeakBurn}}</td></tr>
{{- end}}
</table>
{{- else}}
<p class="muted">No alert fired.</p>
{{- end}}
{{- end}}
{{- if .Policy}}
<div class="policy"><strong>Error-budget policy</strong><ul>
{{- range .Policy}}<li>{{.When}}: {{.Action}}</li>{{end}}
</ul></div>
{{- end}}
{{- end}}
{{- with .NewErrors}}
<h2>New errors</h2>
{{- if .Classes}}
<p>Error classes seen in the last {{since .Since}} that the {{since .BaselineSpan}} before never saw, most frequent first (the first example of each; no headers, no query).</p>
<table><tr><th>CUJ</th><th>Route</th><th>Status</th><th>Requests</th><th>First seen</th><th>Signature</th><th>Example</th></tr>
{{- range .Classes}}
<tr><td>{{.CUJ}}</td><td><code>{{.Route}}</code></td><td>{{statusOf .Class}}</td><td class="n">{{.Count}}</td><td>{{seen .FirstSeen}}</td><td><code>{{signature .Class}}</code></td><td><code>{{example .Class}}</code></td></tr>
{{- end}}
</table>
<h3>SLO impact</h3>
<ul>{{range .Impact}}<li>{{.Text}}</li>{{end}}</ul>
{{- else}}
<p>No error class was seen for the first time in the last {{since .Since}} (against the {{since .BaselineSpan}} before).</p>
{{- end}}
{{- if .Injected}}<p class="muted">{{len .Injected}} new classes of injected faults are kept apart ('slolab errors -o json' lists them).</p>{{end}}
{{- end}}
</body>
</html>
`))

// burndown draws the budget left after each step as an inline SVG line,
// from 100% at the top to 0% (and below, when overspent) at the bottom.
func burndown(tr []slo.TrendPoint) template.HTML {
	const w, h = 600, 120
	if len(tr) == 0 {
		return ""
	}
	lo := 0.0
	for _, p := range tr {
		lo = min(lo, p.RemainingPercent)
	}
	y := func(v float64) float64 { return (100 - v) / (100 - lo) * h }
	var pts []string
	pts = append(pts, fmt.Sprintf("0,%.1f", y(100)))
	for i, p := range tr {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", float64(i+1)/float64(len(tr))*w, y(p.RemainingPercent)))
	}
	colour := "#1a7f37"
	if last := tr[len(tr)-1].RemainingPercent; last < 25 {
		colour = "#cf222e"
	} else if last < 50 {
		colour = "#9a6700"
	}
	return template.HTML(fmt.Sprintf(`<svg width="%d" height="%d" viewBox="0 -2 %d %d" role="img" aria-label="budget burn-down">`+
		`<line x1="0" y1="%.1f" x2="%d" y2="%.1f" stroke="#d0d7de"/>`+
		`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/></svg>`,
		w, h+4, w, h+4, y(0), w, y(0), colour, strings.Join(pts, " ")))
}
