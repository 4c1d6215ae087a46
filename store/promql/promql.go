// Package promql reads SLO events from Prometheus, for fleets of proxies
// whose metrics Prometheus (or Thanos, Mimir) aggregates: slolab's own
// slolab_* metrics summed across proxies and client groups, or the
// good/bad/total queries a spec gives per CUJ for SLIs measured by Istio or
// the app itself.
//
// slolab's counters are never read through increase(), which extrapolates
// to a window's edges and so yields fractions of requests. Each series'
// increase over one step (a minute, the store's bucket) is its value at the
// step's end minus its value at its start, or its value at the end when the
// series is new or restarted (its value fell); a window's count sums those
// per-step increases with a subquery aligned to whole minutes. Restarted,
// new and vanished proxies are all counted, exactly to the last scrape
// before each minute boundary.
package promql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Config configures a Source.
type Config struct {
	// URL is Prometheus' base URL, e.g. http://prometheus:9090.
	URL string
	// Service is the spec whose CUJs are read.
	Service *spec.Service
	// Matchers are extra label matchers for slolab's metrics, such as
	// `job="slolab"` or `namespace="chat"`, to pick one service's proxies.
	Matchers string
	// RoundTripper is the HTTP transport (default http.DefaultTransport).
	RoundTripper http.RoundTripper
	// Step is the resolution of History (default 1m, the store's).
	Step time.Duration
	// Recorded reads the per-minute increases the rules of `slolab gen
	// prometheus` record (RecordedRules) instead of the counters: a scan of
	// one sample a minute per CUJ however many proxies, where the counters
	// need a subquery over every proxy's series. The rules must have been
	// evaluated over every window read (backfill them with promtool tsdb
	// create-blocks-from rules when they are new), and their matchers, not
	// Matchers, pick the proxies. The counts are those of the counters, to
	// the request; each minute is recorded after it ends, so Latest, the
	// last instant a status is complete at, is up to a minute behind the
	// clock. Revisions (the canary judge, which wants the freshest minute)
	// still reads the counters.
	Recorded bool
}

// Source reads SLO events from Prometheus.
type Source struct {
	cfg     Config
	api     v1.API
	cujs    string // regexp alternation of the CUJs that use slolab's metrics
	queries map[slo.Key]*userQuery
	batch   recordedBatch
}

var (
	_ slo.Source  = (*Source)(nil)
	_ slo.Spanner = (*Source)(nil)
)

type userQuery struct {
	good, bad, total *template.Template
}

// New returns a Source. It checks the spec's queries parse as templates; it
// does not contact Prometheus.
func New(cfg Config) (*Source, error) {
	if cfg.Service == nil {
		return nil, fmt.Errorf("promql: a service spec is required")
	}
	if cfg.Step == 0 {
		cfg.Step = time.Minute
	}
	if cfg.Recorded && cfg.Step != RecordedInterval {
		return nil, slolab.Errorf(slolab.Invalid, "prometheus source: the recorded increases are per %s; a step of %s needs the counters", Duration(RecordedInterval), Duration(cfg.Step))
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, slolab.Errorf(slolab.Invalid, "prometheus URL %q: want http://host:port or https://...", cfg.URL)
	}
	client, err := api.NewClient(api.Config{Address: cfg.URL, RoundTripper: cfg.RoundTripper})
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "prometheus URL %q: %w", cfg.URL, err)
	}
	s := &Source{cfg: cfg, api: v1.NewAPI(client), queries: map[slo.Key]*userQuery{}}
	var own []string
	for _, c := range cfg.Service.CUJs {
		pairs := map[slo.Kind]*spec.QueryPair{}
		if c.Queries != nil {
			pairs[slo.Availability], pairs[slo.Latency] = c.Queries.Availability, c.Queries.Latency
		}
		for _, k := range slo.Kinds {
			p := pairs[k]
			if p == nil {
				continue
			}
			uq, err := parseQueries(c.Name, k, p)
			if err != nil {
				return nil, err
			}
			s.queries[slo.Key{CUJ: c.Name, Kind: k}] = uq
		}
		own = append(own, regexp.QuoteMeta(c.Name))
	}
	s.cujs = strings.Join(own, "|")
	return s, nil
}

func parseQueries(cuj string, k slo.Kind, p *spec.QueryPair) (*userQuery, error) {
	uq := &userQuery{}
	for _, q := range []struct {
		text string
		dst  **template.Template
		name string
	}{{p.Good, &uq.good, "good"}, {p.Bad, &uq.bad, "bad"}, {p.Total, &uq.total, "total"}} {
		if q.text == "" {
			continue
		}
		t, err := template.New(q.name).Option("missingkey=error").Parse(q.text)
		if err != nil {
			return nil, slolab.Errorf(slolab.Invalid, "%s: cujs[%s].queries.%s.%s: %w", p.Pos, cuj, k, q.name, err)
		}
		*q.dst = t
	}
	return uq, nil
}

// Duration formats d as a PromQL duration: "5m", "30d", "1h30m", "1500ms".
func Duration(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", spec.Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// selector returns a slolab metric selector for the spec's CUJs.
func (s *Source) selector(metric string, extra ...string) string {
	return metricSelector(metric, s.cujs, s.cfg.Matchers, extra...)
}

// metricSelector selects metric for the CUJs cuj=~cujs matches, narrowed
// by matchers and extra.
func metricSelector(metric, cujs, matchers string, extra ...string) string {
	m := []string{fmt.Sprintf("cuj=~%q", cujs)}
	if matchers != "" {
		m = append(m, matchers)
	}
	m = append(m, extra...)
	return metric + "{" + strings.Join(m, ", ") + "}"
}

// StepIncrease returns PromQL for each series' increase over the step
// ending at the evaluation time, without extrapolation: the value now minus
// the value a step ago, or the value now for a series that is new or
// restarted.
func StepIncrease(sel string, step time.Duration) string {
	return fmt.Sprintf("(%s - %s offset %s) >= 0 or %s", sel, sel, Duration(step), sel)
}

// Increase returns PromQL for the increase over the window of length w
// ending at the evaluation time, summed by the given labels: the sum of the
// per-step increases at the w/step step ends inside (end − w, end]. The
// subquery's range stops a second short of w so that the step ending at
// end − w is left out whether the range is closed (Prometheus 2) or
// left-open (Prometheus 3).
func Increase(sel string, w, step time.Duration, by string) string {
	return fmt.Sprintf("sum_over_time((sum by (%s) (%s))[%s:%s])", by, StepIncrease(sel, step), Duration(w-time.Second), Duration(step))
}

// Queries are the PromQL expressions Events evaluates at the end of a
// window of length w, for the CUJs that use slolab's metrics: requests by
// CUJ and status code (availability-bad codes are picked out in Go), and
// latency buckets by CUJ and le (the +Inf bucket counts every request).
type Queries struct {
	Requests, LatencyBuckets string
}

// selectors of the two counters Events and History read, and their groupings.
func (s *Source) selectors() [2][2]string {
	return [2][2]string{
		{s.selector(sli.MetricRequests), "cuj, code"},
		{s.selector(sli.MetricDuration + "_bucket"), "cuj, le"},
	}
}

// QueriesFor returns the expressions for a window of length w.
func (s *Source) QueriesFor(w time.Duration) Queries {
	sel := s.selectors()
	return Queries{
		Requests:       Increase(sel[0][0], w, s.cfg.Step, sel[0][1]),
		LatencyBuckets: Increase(sel[1][0], w, s.cfg.Step, sel[1][1]),
	}
}

// badCode matches the code label of availability-bad requests.
var badCode = regexp.MustCompile("^(?:" + sli.AvailabilityBadCodes + ")$")

// tally adds one sample of the requests or the buckets query to per-CUJ counts.
type tally struct {
	total, bad, count, good uint64
	threshold               bool // the bucket at the latency threshold was seen
}

func (s *Source) tally(per map[string]*tally, query int, m model.Metric, n uint64) {
	cuj := string(m["cuj"])
	a := per[cuj]
	if a == nil {
		a = &tally{}
		per[cuj] = a
	}
	s.add(a, query, m, n)
}

// add adds one sample of the requests (query 0) or the buckets query to a tally.
func (s *Source) add(a *tally, query int, m model.Metric, n uint64) {
	cuj := string(m["cuj"])
	if query == 0 {
		a.total += n
		if badCode.MatchString(string(m["code"])) {
			a.bad += n
		}
		return
	}
	le := string(m["le"])
	if le == "+Inf" {
		a.count += n
		return
	}
	// le values are compared as numbers, so "1" and "1.0" (OpenMetrics) both match 1s.
	c := s.cfg.Service.CUJ(cuj)
	v, err := strconv.ParseFloat(le, 64)
	if c != nil && c.Latency != nil && err == nil && v == c.Latency.Threshold.Seconds() {
		a.good += n
		a.threshold = true
	}
}

// counts turns a CUJ's tally into its counts; Slow is only meaningful for
// CUJs with a latency SLO.
func (a *tally) counts() slo.Counts {
	return slo.Counts{Total: a.total, Bad: min(a.bad, a.total), Slow: a.count - min(a.good, a.count)}
}

// Events implements slo.Source: every CUJ's events over r, evaluated at r.To.
func (s *Source) Events(ctx context.Context, r slo.Range) (map[slo.Key]slo.Events, error) {
	out := map[slo.Key]slo.Events{}
	w := r.Duration()
	if w <= 0 {
		return out, nil
	}
	if w%s.cfg.Step != 0 || !slo.Align(r.To, s.cfg.Step).Equal(r.To) {
		return nil, slolab.Errorf(slolab.Invalid, "prometheus source: window %s..%s is not in whole %s steps",
			r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), Duration(s.cfg.Step))
	}
	if s.cujs != "" {
		per, err := s.tallies(ctx, w, r.To)
		if err != nil {
			return nil, err
		}
		for cuj, a := range per {
			c := a.counts()
			out[slo.Key{CUJ: cuj, Kind: slo.Availability}] = c.Events(slo.Availability)
			if sc := s.cfg.Service.CUJ(cuj); sc != nil && sc.Latency != nil {
				if a.count > 0 && !a.threshold {
					return nil, slolab.Errorf(slolab.Failed, "prometheus has no %s bucket le=%q for CUJ %s: the proxy's histogram must include the CUJ's latency threshold",
						sli.MetricDuration, leOf(sc.Latency.Threshold), cuj)
				}
				out[slo.Key{CUJ: cuj, Kind: slo.Latency}] = slo.Events{Total: a.count, Bad: c.Slow}
			}
		}
	}
	for k, uq := range s.queries {
		e, err := s.userEvents(ctx, uq, w, r.To)
		if err != nil {
			return nil, fmt.Errorf("CUJ %s %s queries: %w", k.CUJ, k.Kind, err)
		}
		out[k] = e
	}
	return out, nil
}

// tallies counts every CUJ's events over the window of length w ending at
// at, from the recorded increases or from the counters.
func (s *Source) tallies(ctx context.Context, w time.Duration, at time.Time) (map[string]*tally, error) {
	if s.cfg.Recorded {
		return s.recordedTallies(ctx, w, at)
	}
	q := s.QueriesFor(w)
	per := map[string]*tally{}
	for i, expr := range []string{q.Requests, q.LatencyBuckets} {
		v, err := s.vector(ctx, expr, at)
		if err != nil {
			return nil, err
		}
		for _, smp := range v {
			s.tally(per, i, smp.Metric, count(smp.Value))
		}
	}
	return per, nil
}

// Span implements slo.Spanner for the CUJs that use slolab's metrics: they
// hold events from the first step inside r in which any proxy counted a
// request (Events counts each step's requests at the step's end), as the
// store holds them from its first bucket. Requests before a proxy's first
// scrape count in the step of that scrape, so the start is known to within
// a scrape interval. Without any request in r, they hold nothing of it.
// CUJs with their own queries are taken to cover every window.
func (s *Source) Span(ctx context.Context, r slo.Range) (slo.Span, error) {
	to := slo.Align(r.To, s.cfg.Step)
	if s.cujs == "" || to.Sub(r.From) < s.cfg.Step {
		return slo.Span{}, nil
	}
	if s.cfg.Recorded {
		return s.recordedSpan(ctx, r.From, to)
	}
	expr := fmt.Sprintf("min_over_time(timestamp(sum(%s) > 0)[%s:%s])",
		StepIncrease(s.selector(sli.MetricRequests), s.cfg.Step), Duration(to.Sub(r.From)-time.Second), Duration(s.cfg.Step))
	v, err := s.vector(ctx, expr, to)
	if err != nil {
		return slo.Span{}, err
	}
	if len(v) == 0 {
		return slo.Span{Start: to}, nil
	}
	first := time.Unix(0, int64(math.Round(float64(v[0].Value)*1e3))*int64(time.Millisecond)).UTC()
	return slo.Span{Start: first.Add(-s.cfg.Step)}, nil
}

// Revisions returns the counts of every CUJ that uses slolab's metrics per
// revision ("stable" and "canary" while proxies split traffic, "" otherwise)
// over the window of length w ending at at, both in whole steps, exactly as
// Events counts: the canary judge's input from a fleet. CUJs with their own
// queries have no revision and are left out.
func (s *Source) Revisions(ctx context.Context, at time.Time, w time.Duration) (map[string]map[string]slo.Counts, error) {
	if w <= 0 || w%s.cfg.Step != 0 || !slo.Align(at, s.cfg.Step).Equal(at) {
		return nil, slolab.Errorf(slolab.Invalid, "prometheus source: a window of %s ending at %s is not in whole %s steps",
			Duration(w), at.Format(time.RFC3339), Duration(s.cfg.Step))
	}
	out := map[string]map[string]slo.Counts{}
	if s.cujs == "" {
		return out, nil
	}
	sel := s.selectors()
	per := map[[2]string]*tally{}
	for i, expr := range []string{
		Increase(sel[0][0], w, s.cfg.Step, "cuj, revision, code"),
		Increase(sel[1][0], w, s.cfg.Step, "cuj, revision, le"),
	} {
		v, err := s.vector(ctx, expr, at)
		if err != nil {
			return nil, err
		}
		for _, smp := range v {
			k := [2]string{string(smp.Metric["cuj"]), string(smp.Metric["revision"])}
			if per[k] == nil {
				per[k] = &tally{}
			}
			s.add(per[k], i, smp.Metric, count(smp.Value))
		}
	}
	for k, a := range per {
		c := a.counts()
		if sc := s.cfg.Service.CUJ(k[0]); sc != nil && sc.Latency != nil {
			if a.count > 0 && !a.threshold {
				return nil, slolab.Errorf(slolab.Failed, "prometheus has no %s bucket le=%q for CUJ %s: the proxy's histogram must include the CUJ's latency threshold",
					sli.MetricDuration, leOf(sc.Latency.Threshold), k[0])
			}
		} else {
			c.Slow = 0
		}
		if out[k[0]] == nil {
			out[k[0]] = map[string]slo.Counts{}
		}
		out[k[0]][k[1]] = c
	}
	return out, nil
}

func leOf(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) }

// count turns a sample into a whole number of events.
func count(v model.SampleValue) uint64 {
	f := float64(v)
	if math.IsNaN(f) || f <= 0 {
		return 0
	}
	return uint64(math.Round(f))
}

func (s *Source) vector(ctx context.Context, expr string, at time.Time) (model.Vector, error) {
	v, _, _, err := s.api.Query(ctx, expr, at)
	if err != nil {
		return nil, s.wrap(err, expr)
	}
	switch x := v.(type) {
	case model.Vector:
		return x, nil
	case *model.Scalar:
		return model.Vector{{Value: x.Value, Timestamp: x.Timestamp}}, nil
	}
	return nil, slolab.Errorf(slolab.Invalid, "prometheus query %s returned a %s, want an instant vector", expr, v.Type())
}

func (s *Source) wrap(err error, expr string) error {
	var apiErr *v1.Error
	if errors.As(err, &apiErr) && apiErr.Type == v1.ErrBadData {
		return slolab.Errorf(slolab.Invalid, "prometheus rejected %s: %s", expr, apiErr.Msg)
	}
	return slolab.Errorf(slolab.Unavailable, "prometheus at %s: %w", s.cfg.URL, err)
}

// userEvents evaluates a spec's queries for a window of length w ending at at.
func (s *Source) userEvents(ctx context.Context, uq *userQuery, w time.Duration, at time.Time) (slo.Events, error) {
	eval := func(t *template.Template) (uint64, error) {
		var b strings.Builder
		if err := t.Execute(&b, map[string]string{"window": Duration(w)}); err != nil {
			return 0, err
		}
		v, err := s.vector(ctx, b.String(), at)
		if err != nil {
			return 0, err
		}
		var n uint64
		for _, smp := range v {
			n += count(smp.Value)
		}
		return n, nil
	}
	total, err := eval(uq.total)
	if err != nil {
		return slo.Events{}, err
	}
	if uq.bad != nil {
		bad, err := eval(uq.bad)
		return slo.Events{Total: total, Bad: min(bad, total)}, err
	}
	good, err := eval(uq.good)
	return slo.Events{Total: total, Bad: total - min(good, total)}, err
}

// History reads [from, to) at cfg.Step resolution, for backtests and
// reviews: the same per-step increases as Events, through range queries of
// at most maxPoints steps each.
func (s *Source) History(ctx context.Context, from, to time.Time) (*slo.History, error) {
	from, to = slo.Align(from, s.cfg.Step), slo.Align(to, s.cfg.Step)
	b := slo.NewHistoryBuilder(from, to)
	span, err := s.Span(ctx, slo.Range{From: from, To: to})
	if err != nil {
		return nil, err
	}
	b.SetSpan(span)
	if s.cujs != "" {
		per, err := s.historyTallies(ctx, from, to)
		if err != nil {
			return nil, err
		}
		for t, cujs := range per {
			for cuj, a := range cujs {
				b.AddCounts(cuj, time.Unix(t, 0), a.counts())
			}
		}
	}
	for k, uq := range s.queries {
		if err := s.userHistory(ctx, b, k, uq, from, to); err != nil {
			return nil, fmt.Errorf("CUJ %s %s queries: %w", k.CUJ, k.Kind, err)
		}
	}
	return b.Build()
}

// historyTallies counts every CUJ's events in each step of [from, to), keyed
// by the step's start, from the recorded increases or from the counters.
func (s *Source) historyTallies(ctx context.Context, from, to time.Time) (map[int64]map[string]*tally, error) {
	if s.cfg.Recorded {
		return s.recordedHistory(ctx, from, to)
	}
	per := map[int64]map[string]*tally{}
	for i, sel := range s.selectors() {
		expr := fmt.Sprintf("sum by (%s) (%s)", sel[1], StepIncrease(sel[0], s.cfg.Step))
		err := s.steps(ctx, expr, from, to, func(m model.Metric, t int64, n uint64) {
			if per[t] == nil {
				per[t] = map[string]*tally{}
			}
			s.tally(per[t], i, m, n)
		})
		if err != nil {
			return nil, err
		}
	}
	return per, nil
}

// maxPoints keeps range queries under Prometheus' 11,000 points a series.
const maxPoints = 10_000

// steps evaluates expr at every step end in (from, to] and calls f with
// each sample, keyed by its step's start (Unix seconds).
func (s *Source) steps(ctx context.Context, expr string, from, to time.Time, f func(model.Metric, int64, uint64)) error {
	return s.stepsAt(ctx, expr, from, to, 0, f)
}

// stepsAt is steps evaluating expr shift after each step's end.
func (s *Source) stepsAt(ctx context.Context, expr string, from, to time.Time, shift time.Duration, f func(model.Metric, int64, uint64)) error {
	step := s.cfg.Step
	for start := from.Add(step); !start.After(to); start = start.Add(step * maxPoints) {
		end := earliest(start.Add(step*(maxPoints-1)), to)
		v, _, _, err := s.api.QueryRange(ctx, expr, v1.Range{Start: start.Add(shift), End: end.Add(shift), Step: step})
		if err != nil {
			return s.wrap(err, expr)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return slolab.Errorf(slolab.Invalid, "prometheus range query %s returned a %s", expr, v.Type())
		}
		for _, ss := range m {
			for _, p := range ss.Values {
				f(ss.Metric, p.Timestamp.Time().Add(-shift-step).Unix(), count(p.Value))
			}
		}
	}
	return nil
}

// userHistory evaluates a spec's queries over each step.
func (s *Source) userHistory(ctx context.Context, b *slo.HistoryBuilder, k slo.Key, uq *userQuery, from, to time.Time) error {
	series := map[string]map[int64]uint64{}
	for name, t := range map[string]*template.Template{"good": uq.good, "bad": uq.bad, "total": uq.total} {
		if t == nil {
			continue
		}
		var q strings.Builder
		if err := t.Execute(&q, map[string]string{"window": Duration(s.cfg.Step)}); err != nil {
			return err
		}
		vals := map[int64]uint64{}
		err := s.steps(ctx, q.String(), from, to, func(_ model.Metric, t int64, n uint64) { vals[t] += n })
		if err != nil {
			return err
		}
		series[name] = vals
	}
	for t, total := range series["total"] {
		e := slo.Events{Total: total}
		if bad, ok := series["bad"]; ok {
			e.Bad = min(bad[t], total)
		} else {
			e.Bad = total - min(series["good"][t], total)
		}
		b.AddEvents(k, time.Unix(t, 0), e)
	}
	return nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Scalar evaluates expr at at and returns the sum of its samples, for
// checks and progress reports.
func (s *Source) Scalar(ctx context.Context, expr string, at time.Time) (float64, error) {
	v, err := s.vector(ctx, expr, at)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, smp := range v {
		sum += float64(smp.Value)
	}
	return sum, nil
}
