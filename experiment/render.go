package experiment

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"slolab.dev/slolab/spec"
)

// Report renderers live here rather than in package report: an experiment's
// timeline is read to the second, while report.Time and report.Span write SLO
// reviews to the minute.

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMarkdown writes the report for people: the verdict first, then the
// hypothesis, the method with intended and realised rates, guardrails,
// recovery, the groups compared, expectations and the timeline.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Experiment %s: %s\n\n", r.Experiment, r.Verdict)
	p("> %s\n\n", mdEscape(r.Reason))
	if r.Failed != nil {
		p("Deciding expression (%s): `%s`", r.Failed.Section, r.Failed.Expr)
		if v := r.Failed.Values(); v != "" {
			p(" — measured %s", mdEscape(v))
		}
		if r.Failed.Error != "" {
			p(" — error: %s", mdEscape(r.Failed.Error))
		}
		p("\n\n")
	}
	if r.Description != "" {
		p("%s\n\n", mdEscape(r.Description))
	}
	p("- Service: %s\n", r.Service)
	p("- Started: %s; ended: %s (%s)\n", stamp(r.Started), stamp(r.Ended), spec.FormatDuration(r.Ended.Sub(r.Started).Round(time.Second)))
	if !r.MethodStarted.IsZero() {
		p("- Method: %s to %s (%s)\n", stamp(r.MethodStarted), stamp(r.MethodEnded), spec.FormatDuration(r.MethodEnded.Sub(r.MethodStarted).Round(time.Second)))
	}
	if g := r.BlastRadius; g != nil {
		p("- Blast radius: %s of clients by %s (salt %q); everyone else is the control group\n", g.Experiment, g.By, g.Salt)
	} else {
		p("- Blast radius: every client (no control group)\n")
	}
	p("- Evaluated every %s (%d %s); leases of %s, renewed every %s\n\n", r.Interval, r.Evaluations, plural(r.Evaluations, "evaluation", "evaluations"), r.Lease, spec.FormatDuration(time.Duration(r.Lease)/3))

	outcomes := func(title string, os []Outcome) {
		if len(os) == 0 {
			return
		}
		p("## %s\n\n| | expression | measured |\n|---|---|---|\n", title)
		for _, o := range os {
			mark := "✔"
			if o.failed() {
				mark = "✘"
			}
			expr := "`" + o.Expr + "`"
			if o.Description != "" {
				expr += " — " + mdEscape(o.Description)
			}
			p("| %s | %s | %s |\n", mark, expr, mdEscape(measured(o)))
		}
		p("\n")
	}
	outcomes("Steady state before", r.SteadyBefore)

	if len(r.Faults) > 0 {
		p("## Method: intended and realised\n\n| step | stage | fault | match | actions | intended | matched | injected | realised | from | to |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range r.Faults {
			p("| %s | %d | %s | %s | %s | %s | %d | %d | %s | %s | %s |\n", f.Step, f.Stage, f.Fault, mdEscape(f.Match), mdEscape(f.Actions), f.Intended, f.Matched, f.Injected, f.Realised(), offset(r.Started, f.From), offset(r.Started, f.To))
		}
		p("\n")
	}
	outcomes("Guardrails (last evaluation)", r.Guardrails)
	if len(r.Recovery) > 0 {
		p("## Recovery\n\n| CUJ | recovered | after the method | watched |\n|---|---|---|---|\n")
		for _, rc := range r.Recovery {
			after := "-"
			if rc.Recovered {
				after = rc.After.String()
			}
			p("| %s | %s | %s | %s |\n", rc.CUJ, yesNo(rc.Recovered), after, rc.Waited)
		}
		p("\n")
	}
	outcomes("Steady state after", r.SteadyAfter)
	if len(r.Comparison) > 0 {
		p("## Experiment group against control group\n\nTests are one-sided (is the experiment group worse?) at a significance of %s.\n\n", r.Significance)
		p("| CUJ | group | requests | failed | availability | under threshold | p50 | p99 | within SLO |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range r.Comparison {
			for _, g := range []struct {
				name string
				s    GroupSLI
			}{{"experiment", c.Experiment}, {"control", c.Control}} {
				p("| %s | %s | %d | %d | %s | %s | %s | %s | %s |\n", cujLabel(c), g.name, g.s.Total, g.s.Bad, percent(g.s.Availability), latencyGood(g.s), g.s.P50, g.s.P99, yesNo(g.s.WithinSLO))
			}
		}
		p("\n")
		for _, c := range r.Comparison {
			p("- **%s**: %s.\n", c.CUJ, mdEscape(c.Summary))
			p("  Errors: Fisher's exact test p = %s, odds ratio %s.", pValue(c.Errors.P), odds(float64(c.Errors.OddsRatio)))
			if c.Slow != nil {
				p(" Over the threshold: Fisher's exact test p = %s.", pValue(c.Slow.P))
			}
			p(" Latency: Mann-Whitney U = %.0f, z = %.2f, p = %s, P(slower) = %s.\n", c.Latency.U, c.Latency.Z, pValue(c.Latency.P), superiority(float64(c.Latency.Superiority)))
		}
		p("\n")
	}
	outcomes("Expectations", r.Expect)
	p("## Timeline\n\n| time | since start | event |\n|---|---|---|\n")
	for _, e := range r.Timeline {
		p("| %s | %s | %s |\n", e.At.UTC().Format("15:04:05"), offset(r.Started, e.At), mdEscape(e.Text))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func offset(start, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "+" + spec.FormatDuration(t.Sub(start).Round(time.Second))
}

func measured(o Outcome) string {
	if o.Error != "" {
		return "error: " + o.Error
	}
	var parts []string
	for _, m := range o.Measures {
		s := m.Call + " = " + m.Value
		if m.Detail != "" {
			s += " (" + m.Detail + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func cujLabel(c Comparison) string {
	if c.Targeted {
		return c.CUJ + " (targeted)"
	}
	return c.CUJ
}

func percent(f float64) string { return formatFloat(f) + "%" }

func latencyGood(g GroupSLI) string {
	if g.LatencyGood == nil {
		return "-"
	}
	return percent(*g.LatencyGood)
}

func superiority(f float64) string {
	if f != f {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", f)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// mdEscape keeps text from breaking a Markdown table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp": stamp, "offset": offset, "measured": measured, "percent": percent, "latencyGood": latencyGood,
	"pValue": pValue, "odds": func(n Number) string { return odds(float64(n)) }, "superiority": func(n Number) string { return superiority(float64(n)) }, "yesNo": yesNo, "cujLabel": cujLabel,
	"ok": func(o Outcome) bool { return !o.failed() },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Experiment {{.Experiment}}: {{.Verdict}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1 .held{color:#17803d}h1 .failed,h1 .aborted,h1 .refused,h1 .interrupted{color:#b42318}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}code{background:#f4f4f4;padding:0 .2em}
.bad{color:#b42318}.good{color:#17803d}blockquote{border-left:4px solid #ccc;margin:0;padding:.2em 1em}
</style></head><body>
<h1>Experiment {{.Experiment}}: <span class="{{.Verdict}}">{{.Verdict}}</span></h1>
<blockquote>{{.Reason}}</blockquote>
{{with .Failed}}<p>Deciding expression ({{.Section}}): <code>{{.Expr}}</code>{{with .Values}} — measured {{.}}{{end}}{{with .Error}} — error: {{.}}{{end}}</p>{{end}}
{{with .Description}}<p>{{.}}</p>{{end}}
<ul>
<li>Service: {{.Service}}</li>
<li>Started {{stamp .Started}}, ended {{stamp .Ended}}</li>
{{if not .MethodStarted.IsZero}}<li>Method: {{stamp .MethodStarted}} to {{stamp .MethodEnded}}</li>{{end}}
{{with .BlastRadius}}<li>Blast radius: {{.Experiment}} of clients by {{.By}}; everyone else is the control group</li>{{else}}<li>Blast radius: every client</li>{{end}}
<li>Evaluated every {{.Interval}} ({{.Evaluations}} evaluations); leases of {{.Lease}}</li>
</ul>
{{define "outcomes"}}<table><tr><th></th><th>expression</th><th>measured</th></tr>
{{range .}}<tr><td class="{{if ok .}}good">✔{{else}}bad">✘{{end}}</td><td><code>{{.Expr}}</code>{{with .Description}} — {{.}}{{end}}</td><td>{{measured .}}</td></tr>
{{end}}</table>{{end}}
{{with .SteadyBefore}}<h2>Steady state before</h2>{{template "outcomes" .}}{{end}}
{{if .Faults}}<h2>Method: intended and realised</h2>
<table><tr><th>step</th><th>stage</th><th>fault</th><th>match</th><th>actions</th><th>intended</th><th>matched</th><th>injected</th><th>realised</th><th>from</th><th>to</th></tr>
{{range .Faults}}<tr><td>{{.Step}}</td><td class="num">{{.Stage}}</td><td>{{.Fault}}</td><td>{{.Match}}</td><td>{{.Actions}}</td><td class="num">{{.Intended}}</td><td class="num">{{.Matched}}</td><td class="num">{{.Injected}}</td><td class="num">{{.Realised}}</td><td>{{offset $.Started .From}}</td><td>{{offset $.Started .To}}</td></tr>
{{end}}</table>{{end}}
{{with .Guardrails}}<h2>Guardrails (last evaluation)</h2>{{template "outcomes" .}}{{end}}
{{with .Recovery}}<h2>Recovery</h2>
<table><tr><th>CUJ</th><th>recovered</th><th>after the method</th><th>watched</th></tr>
{{range .}}<tr><td>{{.CUJ}}</td><td>{{yesNo .Recovered}}</td><td>{{if .Recovered}}{{.After}}{{else}}-{{end}}</td><td>{{.Waited}}</td></tr>
{{end}}</table>{{end}}
{{with .SteadyAfter}}<h2>Steady state after</h2>{{template "outcomes" .}}{{end}}
{{if .Comparison}}<h2>Experiment group against control group</h2>
<p>Tests are one-sided (is the experiment group worse?) at a significance of {{.Significance}}.</p>
<table><tr><th>CUJ</th><th>group</th><th>requests</th><th>failed</th><th>availability</th><th>under threshold</th><th>p50</th><th>p99</th><th>within SLO</th></tr>
{{range .Comparison}}{{$c := .}}{{with .Experiment}}<tr><td>{{cujLabel $c}}</td><td>experiment</td><td class="num">{{.Total}}</td><td class="num">{{.Bad}}</td><td class="num">{{percent .Availability}}</td><td class="num">{{latencyGood .}}</td><td class="num">{{.P50}}</td><td class="num">{{.P99}}</td><td>{{yesNo .WithinSLO}}</td></tr>{{end}}
{{with .Control}}<tr><td>{{cujLabel $c}}</td><td>control</td><td class="num">{{.Total}}</td><td class="num">{{.Bad}}</td><td class="num">{{percent .Availability}}</td><td class="num">{{latencyGood .}}</td><td class="num">{{.P50}}</td><td class="num">{{.P99}}</td><td>{{yesNo .WithinSLO}}</td></tr>{{end}}
{{end}}</table>
<ul>{{range .Comparison}}<li><strong>{{.CUJ}}</strong>: {{.Summary}}.<br>Errors: Fisher's exact test p = {{pValue .Errors.P}}, odds ratio {{odds .Errors.OddsRatio}}.{{with .Slow}} Over the threshold: Fisher's exact test p = {{pValue .P}}.{{end}} Latency: Mann-Whitney U = {{printf "%.0f" .Latency.U}}, z = {{printf "%.2f" .Latency.Z}}, p = {{pValue .Latency.P}}, P(slower) = {{superiority .Latency.Superiority}}.</li>
{{end}}</ul>{{end}}
{{with .Expect}}<h2>Expectations</h2>{{template "outcomes" .}}{{end}}
<h2>Timeline</h2>
<table><tr><th>time</th><th>since start</th><th>event</th></tr>
{{range .Timeline}}<tr><td>{{.At.UTC.Format "15:04:05"}}</td><td>{{offset $.Started .At}}</td><td>{{.Text}}</td></tr>
{{end}}</table>
</body></html>
`))

// WriteHTML writes the report as a self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	return htmlTemplate.Execute(w, r)
}
