// Package gen holds what every generator shares: the files a generator
// produces, the notes it makes about what its target cannot express, and the
// few facts about a CUJ's SLOs (their kinds, budgets and PromQL for slolab's
// own metrics) that several targets spell out in their own syntax.
//
// Each target lives in its own package under gen/ and is a pure function from
// a spec to files: no clock, no randomness, no I/O, so the same spec always
// generates the same bytes, whether it was written in YAML or CUE.
package gen

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"text/template"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/spec"
)

// Series the Prometheus rules record and dashboards read. Every one carries
// the labels service, cuj and slo.
const (
	RecordBadEvents  = "slolab:slo_bad_events:increase" // + the base window: increase5m
	RecordEvents     = "slolab:slo_events:increase"     // + the base window
	RecordErrorRatio = "slolab:slo_error_ratio:ratio"   // + a window: ratio1h
	RecordObjective  = "slolab:slo_objective"           // also labelled window
	RecordBudgetLeft = "slolab:slo_error_budget_remaining"
)

// File is one generated file: a name relative to the output directory, and its bytes.
type File struct {
	Name string
	Data []byte
}

// Output is what a generator produced.
type Output struct {
	Files []File
	// Notes say what the target cannot express exactly and how the generator
	// approximated it; the CLI prints them on stderr, and generators also
	// write them into the files where the format has comments.
	Notes []string
}

// Notef adds a note.
func (o *Output) Notef(format string, args ...any) {
	o.Notes = append(o.Notes, fmt.Sprintf(format, args...))
}

// SLOKind names an SLI.
type SLOKind string

// The SLIs a CUJ may have.
const (
	Availability SLOKind = "availability"
	Latency      SLOKind = "latency"
)

// SLO is one objective of one CUJ, flattened for generators.
type SLO struct {
	Service   *spec.Service
	CUJ       *spec.CUJ
	Kind      SLOKind
	Objective spec.Ratio
	Window    spec.Window
	Threshold time.Duration // latency only
	Query     *spec.QueryPair
}

// Name is "update-availability".
func (s SLO) Name() string { return s.CUJ.Name + "-" + string(s.Kind) }

// Budget is the error ratio the objective allows: 1 − objective.
func (s SLO) Budget() spec.Ratio { return s.Objective.OneMinus() }

// Describe is "99.9% of requests succeed" or "99% of requests complete within 1s".
func (s SLO) Describe() string {
	if s.Kind == Latency {
		return fmt.Sprintf("%s of requests complete within %s", s.Objective, spec.FormatDuration(s.Threshold))
	}
	return fmt.Sprintf("%s of requests succeed", s.Objective)
}

// SLOs lists a service's objectives in spec order: per CUJ, availability then latency.
func SLOs(svc *spec.Service) []SLO {
	var out []SLO
	for _, c := range svc.CUJs {
		if a := c.Availability; a != nil {
			s := SLO{Service: svc, CUJ: c, Kind: Availability, Objective: a.Objective, Window: a.Window}
			if c.Queries != nil {
				s.Query = c.Queries.Availability
			}
			out = append(out, s)
		}
		if l := c.Latency; l != nil {
			s := SLO{Service: svc, CUJ: c, Kind: Latency, Objective: l.Objective, Window: l.Window, Threshold: l.Threshold}
			if c.Queries != nil {
				s.Query = c.Queries.Latency
			}
			out = append(out, s)
		}
	}
	return out
}

// WindowDuration is the length of an SLO window: a calendar month counts as
// 30 days wherever a target needs a fixed length.
func WindowDuration(w spec.Window) time.Duration {
	if w.Calendar != "" {
		return 30 * spec.Day
	}
	return w.Rolling
}

// PromDuration writes d the way PromQL range selectors read it ("5m", "30d", "1h30m").
func PromDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
	return spec.FormatDuration(d)
}

// LeValue is the "le" label of the duration histogram's bucket at threshold
// d, as client_golang writes it ("0.5", "1"). Prometheus 3 rewrites integral
// bounds as "1.0" on scrape, so LeMatcher matches both spellings.
func LeValue(d time.Duration) string {
	return spec.NewRatio(uint64(d), uint64(time.Second)).Decimal()
}

// LeMatcher is a PromQL label matcher for the bucket at threshold d.
func LeMatcher(d time.Duration) string {
	v := LeValue(d)
	if strings.ContainsAny(v, ".e") {
		return fmt.Sprintf(`le="%s"`, v)
	}
	return fmt.Sprintf(`le=~"%s(\\.0)?"`, v)
}

// Selector writes a PromQL selector body from label matchers, skipping empty ones.
func Selector(matchers ...string) string {
	var parts []string
	for _, m := range matchers {
		if m != "" {
			parts = append(parts, m)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Events are PromQL expressions counting an SLO's events over a window.
type Events struct {
	Bad, Total string
	// BadOnly is Bad without the fallback to 0: empty when no bad event
	// series exists.
	BadOnly string
}

// EventsOver returns expressions counting the SLO's bad and total events over
// window: sums over every label but the CUJ (groups, routes, codes, proxies),
// from slolab's own metrics or the CUJ's queries. extra is added to every
// selector of slolab's metrics (job="chat-proxy"). A bad-event count with no
// series is 0, not empty, so a CUJ without failures reads as 0%.
func EventsOver(s SLO, window time.Duration, extra string) (Events, error) {
	w := PromDuration(window)
	if s.Query != nil {
		total, err := expand(s.Query.Total, w)
		if err != nil {
			return Events{}, fmt.Errorf("%v: %s query total: %w", s.Query.Pos, s.Kind, err)
		}
		if s.Query.Bad != "" {
			bad, err := expand(s.Query.Bad, w)
			if err != nil {
				return Events{}, fmt.Errorf("%v: %s query bad: %w", s.Query.Pos, s.Kind, err)
			}
			return Events{Bad: fmt.Sprintf("(sum(%s) or vector(0))", bad), BadOnly: fmt.Sprintf("sum(%s)", bad), Total: fmt.Sprintf("sum(%s)", total)}, nil
		}
		good, err := expand(s.Query.Good, w)
		if err != nil {
			return Events{}, fmt.Errorf("%v: %s query good: %w", s.Query.Pos, s.Kind, err)
		}
		bad := fmt.Sprintf("(sum(%s) - sum(%s))", total, good)
		return Events{Bad: bad, BadOnly: bad, Total: fmt.Sprintf("sum(%s)", total)}, nil
	}
	cuj := fmt.Sprintf(`cuj="%s"`, s.CUJ.Name)
	if s.Kind == Latency {
		count := fmt.Sprintf("sum(increase(%s_count%s[%s]))", sli.MetricDuration, Selector(cuj, extra), w)
		good := fmt.Sprintf("sum(increase(%s_bucket%s[%s]))", sli.MetricDuration, Selector(cuj, LeMatcher(s.Threshold), extra), w)
		bad := fmt.Sprintf("(%s - %s)", count, good)
		return Events{Bad: bad, BadOnly: bad, Total: count}, nil
	}
	bad := fmt.Sprintf(`sum(increase(%s%s[%s]))`, sli.MetricRequests, Selector(cuj, fmt.Sprintf(`code=~"%s"`, sli.AvailabilityBadCodes), extra), w)
	total := fmt.Sprintf("sum(increase(%s%s[%s]))", sli.MetricRequests, Selector(cuj, extra), w)
	return Events{Bad: "(" + bad + " or vector(0))", BadOnly: bad, Total: total}, nil
}

// expand fills {{.window}} in a user query.
func expand(q, window string) (string, error) {
	t, err := template.New("query").Option("missingkey=error").Parse(q)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]string{"window": window}); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Threshold writes an exact ratio as a PromQL number: a decimal when it has
// one, else a division.
func Threshold(r spec.Ratio) string {
	if s := r.Decimal(); !strings.Contains(s, "/") {
		return s
	}
	return fmt.Sprintf("(%d / %d)", r.Num(), r.Den())
}

// SortedKeys returns a map's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
