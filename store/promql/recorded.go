package promql

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"slolab.dev/slolab"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// The per-minute increases of slolab's counters that the rules of `slolab
// gen prometheus` record (RecordedRules) and a Source with Config.Recorded
// reads. Each series is one CUJ and revision of a service (labels service,
// cuj, revision), summed over proxies, groups, routes and codes; each sample
// is the increase over the last whole minute of the clock before the rule's
// evaluation, computed as StepIncrease computes it: whole requests, never
// extrapolated.
//
// A 30-day window is then a scan of 43,200 samples of four series per CUJ,
// where the counters need a subquery that evaluates the increase at 43,200
// steps over every proxy's series (docs/benchmarks.md times both).
const (
	RecordRequests    = "slolab:requests:increase1m"       // every request
	RecordRequestsBad = "slolab:requests_bad:increase1m"   // requests bad for availability: 5xx, no response
	RecordTimed       = "slolab:requests_timed:increase1m" // requests the duration histogram counted (its +Inf bucket)
	RecordFast        = "slolab:requests_fast:increase1m"  // of those, at or under the CUJ's latency threshold
)

// records are the recorded series in the order Events tallies them.
var records = [4]string{RecordRequests, RecordRequestsBad, RecordTimed, RecordFast}

// RecordedInterval is how often the rules must be evaluated: the minute
// every record's name and every sample's increase is over.
const RecordedInterval = time.Minute

// RecordedRule is one recording rule of RecordedRules.
type RecordedRule struct {
	Record, Expr string
	Labels       map[string]string
}

// RecordedRules returns the rules recording the per-minute increases of
// svc's CUJs, to be evaluated every RecordedInterval; matchers narrow
// slolab's metrics as Config.Matchers does (a Source reading the recorded
// series finds them by service and CUJ, so its own Matchers do not apply).
//
// A rule group is evaluated at a fixed offset φ into each minute (Prometheus
// derives it from the group's name and file, and promtool's backfill uses
// the same), so each rule evaluates the increase in a one-minute subquery,
// whose step Prometheus aligns to the clock: the sample recorded at m + φ is
// the increase of the minute (m − 1m, m], the same minute and the same count
// the counters give at step m. Windows read from the records then equal
// windows read from the counters, to the request.
// CUJs whose SLIs all come from their own queries need no records: with
// none left, there are no rules.
func RecordedRules(svc *spec.Service, matchers string) []RecordedRule {
	cujs := ownMetricCUJs(svc)
	if len(cujs) == 0 {
		return nil
	}
	labels := map[string]string{"service": svc.Name}
	all := cujRegexp(cujs)
	rules := []RecordedRule{
		{RecordRequests, minuteIncrease(metricSelector(sli.MetricRequests, all, matchers)), labels},
		{RecordRequestsBad, minuteIncrease(metricSelector(sli.MetricRequests, all, matchers, fmt.Sprintf("code=~%q", sli.AvailabilityBadCodes))), labels},
	}
	// Latency: the histogram's count, and its bucket at each CUJ's
	// threshold (CUJs sharing a threshold share a selector).
	var timed []*spec.CUJ
	byThreshold := map[time.Duration][]*spec.CUJ{}
	for _, c := range cujs {
		if c.Latency != nil && (c.Queries == nil || c.Queries.Latency == nil) {
			timed = append(timed, c)
			byThreshold[c.Latency.Threshold] = append(byThreshold[c.Latency.Threshold], c)
		}
	}
	if len(timed) == 0 {
		return rules
	}
	bucket := sli.MetricDuration + "_bucket"
	rules = append(rules, RecordedRule{RecordTimed, minuteIncrease(metricSelector(bucket, cujRegexp(timed), matchers, `le="+Inf"`)), labels})
	thresholds := make([]time.Duration, 0, len(byThreshold))
	for d := range byThreshold {
		thresholds = append(thresholds, d)
	}
	slices.Sort(thresholds)
	fast := make([]string, len(thresholds))
	for i, d := range thresholds {
		fast[i] = minuteIncrease(metricSelector(bucket, cujRegexp(byThreshold[d]), matchers, fmt.Sprintf("le=~%q", leRegexp(d))))
	}
	return append(rules, RecordedRule{RecordFast, strings.Join(fast, "\nor\n"), labels})
}

// minuteIncrease is PromQL for the increase of sel's series, summed by CUJ
// and revision, over the last whole minute of the clock before the
// evaluation time, whatever that time's offset in the minute.
func minuteIncrease(sel string) string {
	return fmt.Sprintf("last_over_time((sum by (cuj, revision) (%s))[%s:%s])",
		StepIncrease(sel, RecordedInterval), Duration(RecordedInterval), Duration(RecordedInterval))
}

// ownMetricCUJs are the CUJs with an SLI read from slolab's own metrics
// rather than from queries of their own.
func ownMetricCUJs(svc *spec.Service) []*spec.CUJ {
	var out []*spec.CUJ
	for _, c := range svc.CUJs {
		if q := c.Queries; q == nil || q.Availability == nil || c.Latency != nil && q.Latency == nil {
			out = append(out, c)
		}
	}
	return out
}

// cujRegexp is an alternation of the CUJs' names, for cuj=~.
func cujRegexp(cujs []*spec.CUJ) string {
	names := make([]string, len(cujs))
	for i, c := range cujs {
		names[i] = regexp.QuoteMeta(c.Name)
	}
	return strings.Join(names, "|")
}

// leRegexp matches the le label of the bucket at threshold d however its
// number is written: "1", "1.0" (OpenMetrics), "0.3", "0.30".
func leRegexp(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
	switch {
	case strings.ContainsAny(s, "e"):
		return regexp.QuoteMeta(s)
	case strings.Contains(s, "."):
		return regexp.QuoteMeta(s) + "0*"
	}
	return regexp.QuoteMeta(s) + `(\.0*)?`
}

// recordedSelector selects a recorded series of this Source's service. The
// rules record only the CUJs that read slolab's metrics, so the service
// picks them; a matcher of a hundred CUJs' names would cost the index more
// than the samples cost.
func (s *Source) recordedSelector(record string) string {
	return fmt.Sprintf("%s{service=%q}", record, s.cfg.Service.Name)
}

// recordedEnd finds where the records of this Source's service stand at
// the instant at: the offset φ of their evaluations in the minute, and the
// end of the last minute recorded by at + 1m (its sample lies at that end
// + φ). No sample in the five minutes before is an error naming the rules.
func (s *Source) recordedEnd(ctx context.Context, at time.Time) (phi time.Duration, last time.Time, err error) {
	expr := fmt.Sprintf("max(timestamp(%s))", s.recordedSelector(RecordRequests))
	v, err := s.vector(ctx, expr, at.Add(RecordedInterval-time.Millisecond))
	if err != nil {
		return 0, time.Time{}, err
	}
	if len(v) == 0 {
		return 0, time.Time{}, slolab.Errorf(slolab.NotFound, "prometheus has no %s for service %s around %s: load the rules of 'slolab gen prometheus' (their group slolab-%s-increases), and backfill them over past windows with promtool tsdb create-blocks-from rules",
			RecordRequests, s.cfg.Service.Name, at.UTC().Format(time.RFC3339), s.cfg.Service.Name)
	}
	ts := time.UnixMilli(int64(math.Round(float64(v[0].Value) * 1000)))
	last = ts.Truncate(RecordedInterval)
	return ts.Sub(last), last, nil
}

// recordedSpan is Span from the records: the counters' subquery evaluates
// the increase of every proxy's series at each of a 30-day window's 43,200
// steps, more samples than Prometheus loads for one query by default (its
// --query.max-samples) once a fleet has a hundred CUJs, where the records
// hold one series per CUJ. A subquery step at minute t sees the sample
// recorded at t − 1m + φ, the increase of (t − 2m, t − 1m] (with φ = 0, the
// one at t itself, of (t − 1m, t]); the steps are shifted by that minute so
// that the same minutes are read as the counters read, and the first minute
// with a request starts the span, as it does from the counters.
func (s *Source) recordedSpan(ctx context.Context, from, to time.Time) (slo.Span, error) {
	phi, _, err := s.recordedEnd(ctx, to)
	if err != nil {
		return slo.Span{}, err
	}
	lag := time.Duration(0) // from a step to the end of the minute it sees
	if phi > 0 {
		lag = RecordedInterval
	}
	expr := fmt.Sprintf("min_over_time(timestamp(sum(%s) > 0)[%s:%s])",
		s.recordedSelector(RecordRequests), Duration(to.Sub(from)-time.Second), Duration(RecordedInterval))
	v, err := s.vector(ctx, expr, to.Add(lag))
	if err != nil {
		return slo.Span{}, err
	}
	if len(v) == 0 {
		return slo.Span{Start: to}, nil
	}
	step := time.Unix(0, int64(math.Round(float64(v[0].Value)*1e3))*int64(time.Millisecond)).UTC()
	return slo.Span{Start: step.Add(-lag - RecordedInterval)}, nil
}

// Latest returns the end of the last minute the records hold: the instant
// a status from them is complete at. It is up to a minute behind now.
func (s *Source) Latest(ctx context.Context, now time.Time) (time.Time, error) {
	_, last, err := s.recordedEnd(ctx, now)
	return last, err
}

// recordedBatch holds, for one instant, the tallies of every window the
// service's SLOs read. A status asks for its windows one at a time; the
// first request fetches them all at once, every query in parallel.
type recordedBatch struct {
	mu      sync.Mutex
	at      time.Time
	tallies map[time.Duration]map[string]*tally
}

// statusWindows are the rolling windows a status of svc reads.
func statusWindows(svc *spec.Service) []time.Duration {
	ws := []time.Duration{slo.BurnBasis}
	for _, x := range slo.SLOs(svc) {
		if x.Window.Calendar == "" {
			ws = append(ws, x.Window.Rolling)
		}
		ws = append(ws, x.Windows()...)
	}
	slices.Sort(ws)
	return slices.Compact(ws)
}

// recordedTallies returns every CUJ's tally over the window of length w
// ending at at, from the recorded series.
func (s *Source) recordedTallies(ctx context.Context, w time.Duration, at time.Time) (map[string]*tally, error) {
	if len(ownMetricCUJs(s.cfg.Service)) == 0 {
		return map[string]*tally{}, nil
	}
	b := &s.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.tallies[w]; ok && b.at.Equal(at) {
		return t, nil
	}
	ws := []time.Duration{w}
	if !b.at.Equal(at) {
		ws = append(ws, statusWindows(s.cfg.Service)...)
		b.at, b.tallies = at, map[time.Duration]map[string]*tally{}
	}
	if err := s.fetchRecorded(ctx, ws, at, b.tallies); err != nil {
		b.at, b.tallies = time.Time{}, nil
		return nil, err
	}
	return b.tallies[w], nil
}

// fetchRecorded tallies the recorded series over windows of the given
// lengths ending at at, into into. The minute ending at m is recorded at
// m + φ, so a window's minutes are the samples in [at − w + 1m + φ, at + φ]:
// each query is evaluated at at + φ over w less a millisecond, which holds
// exactly those under Prometheus 2's closed ranges and 3's left-open ones.
func (s *Source) fetchRecorded(ctx context.Context, windows []time.Duration, at time.Time, into map[time.Duration]map[string]*tally) error {
	phi, last, err := s.recordedEnd(ctx, at)
	if err != nil {
		return err
	}
	if last.Before(at) {
		return slolab.Errorf(slolab.Unavailable, "the recorded increases of service %s end at %s, before %s: the rules record each minute after it ends; ask for an earlier instant",
			s.cfg.Service.Name, last.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	type result struct {
		w   time.Duration
		rec int
		v   model.Vector
		err error
	}
	results := make(chan result)
	n := 0
	for _, w := range slices.Compact(slices.Sorted(slices.Values(windows))) {
		if _, done := into[w]; done {
			continue
		}
		into[w] = map[string]*tally{}
		for i, rec := range records {
			n++
			go func() {
				expr := fmt.Sprintf("sum by (cuj) (sum_over_time(%s[%s]))", s.recordedSelector(rec), Duration(w-time.Millisecond))
				v, err := s.vector(ctx, expr, at.Add(phi))
				results <- result{w, i, v, err}
			}()
		}
	}
	var first error
	for range n {
		r := <-results
		if r.err != nil {
			first = cmp.Or(first, r.err)
			continue
		}
		for _, smp := range r.v {
			addRecorded(into[r.w], r.rec, string(smp.Metric["cuj"]), count(smp.Value))
		}
	}
	return first
}

// addRecorded adds n events of record i (in the order of records) to a CUJ's tally.
func addRecorded(per map[string]*tally, i int, cuj string, n uint64) {
	a := per[cuj]
	if a == nil {
		a = &tally{}
		per[cuj] = a
	}
	switch records[i] {
	case RecordRequests:
		a.total += n
	case RecordRequestsBad:
		a.bad += n
	case RecordTimed:
		a.count += n
	case RecordFast:
		a.good += n
		a.threshold = true
	}
}

// recordedHistory reads [from, to) minute by minute from the recorded
// series: the minute ending at m is the sample at m + φ, read at m + φ
// within 1m − 1ms, so that no sample serves two minutes and a minute whose
// rule evaluation was missed counts nothing rather than another's count.
func (s *Source) recordedHistory(ctx context.Context, from, to time.Time) (map[int64]map[string]*tally, error) {
	per := map[int64]map[string]*tally{}
	if len(ownMetricCUJs(s.cfg.Service)) == 0 {
		return per, nil
	}
	phi, last, err := s.recordedEnd(ctx, to)
	if err != nil {
		return nil, err
	}
	if last.Before(to) {
		to = last
	}
	for i, rec := range records {
		expr := fmt.Sprintf("sum by (cuj) (last_over_time(%s[%s]))", s.recordedSelector(rec), Duration(RecordedInterval-time.Millisecond))
		err := s.stepsAt(ctx, expr, from, to, phi, func(m model.Metric, t int64, n uint64) {
			if per[t] == nil {
				per[t] = map[string]*tally{}
			}
			addRecorded(per[t], i, string(m["cuj"]), n)
		})
		if err != nil {
			return nil, err
		}
	}
	return per, nil
}
