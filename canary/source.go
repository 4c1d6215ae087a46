package canary

import (
	"context"
	"slices"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Source gives what every CUJ's revisions served over the last window.
type Source interface {
	Observe(ctx context.Context, svc *spec.Service, window time.Duration) (*Observed, error)
}

// Admin reads a running proxy's live windows over its admin API
// (GET /api/v1/counts): the last six hours, to the second.
type Admin struct {
	Client *admin.Client
	URL    string // for reports
}

var _ Source = (*Admin)(nil)

// Observe implements Source.
func (a *Admin) Observe(ctx context.Context, svc *spec.Service, window time.Duration) (*Observed, error) {
	resp, err := a.Client.Counts(ctx, window)
	if err != nil {
		return nil, err
	}
	return FromCounts(svc, resp, "proxy "+a.URL)
}

// FromCounts turns a proxy's counts into the judge's input. The slow counts
// are recomputed from the histogram at svc's thresholds, so a spec judged
// with a different threshold than the proxy runs is judged exactly — or
// refused when the proxy's histogram has no bucket boundary there.
func FromCounts(svc *spec.Service, resp *admin.CountsResponse, source string) (*Observed, error) {
	if resp.Service != svc.Name {
		return nil, slolab.Errorf(slolab.Invalid, "%s measures service %q, not %q: judge with the spec the proxy runs", source, resp.Service, svc.Name)
	}
	obs := &Observed{
		Source: source, At: resp.Now, Window: time.Duration(resp.Window), Span: time.Duration(resp.Span),
		CUJs: map[string]Revisions{},
	}
	for _, b := range resp.Bounds {
		obs.Bounds = append(obs.Bounds, time.Duration(b))
	}
	if resp.Split != nil && resp.Split.Weight != nil {
		w := *resp.Split.Weight
		obs.Weight = &w
	}
	byName := map[string]admin.CUJCounts{}
	for _, c := range resp.CUJs {
		byName[c.CUJ] = c
	}
	for _, c := range svc.CUJs {
		cc, ok := byName[c.Name]
		if !ok {
			return nil, slolab.Errorf(slolab.Invalid, "%s does not measure CUJ %q: judge with the spec the proxy runs", source, c.Name)
		}
		slowFrom := -1
		if c.Latency != nil {
			slowFrom = slices.Index(obs.Bounds, c.Latency.Threshold) + 1
			if slowFrom == 0 {
				return nil, slolab.Errorf(slolab.Invalid, "%s has no histogram bucket at CUJ %s's latency threshold %s: judge with the spec the proxy runs", source, c.Name, spec.FormatDuration(c.Latency.Threshold))
			}
		}
		var rv Revisions
		for _, r := range cc.Revisions {
			counts := Counts{Total: r.Total, Bad: r.Bad, Slow: 0, Hist: r.Hist}
			if slowFrom > 0 {
				if len(r.Hist) != len(obs.Bounds)+1 {
					return nil, slolab.Errorf(slolab.Internal, "%s: CUJ %s: a histogram of %d buckets for %d bounds", source, c.Name, len(r.Hist), len(obs.Bounds))
				}
				for _, v := range r.Hist[slowFrom:] {
					counts.Slow += v
				}
			}
			rev, ok := match.ParseRevision(r.Revision)
			if !ok {
				return nil, slolab.Errorf(slolab.Internal, "%s: CUJ %s: unknown revision %q", source, c.Name, r.Revision)
			}
			switch rev {
			case match.RevisionStable:
				rv.Stable = counts
			case match.RevisionCanary:
				rv.Canary = counts
			default:
				rv.Unsplit = counts
			}
		}
		obs.CUJs[c.Name] = rv
	}
	return obs, nil
}

// Revisioned is what the embedded store and Prometheus give: every CUJ's
// counts per revision over a range.
type Revisioned interface {
	Revisions(ctx context.Context, r slo.Range) (map[string]map[string]slo.Counts, error)
}

// Stored reads minute buckets: the embedded store (`slolab proxy --store`)
// or Prometheus. They resolve whole minutes, so a window ends at End — the
// last whole minute the source holds, or an instant the user chose.
type Stored struct {
	Source Revisioned
	Name   string // for reports: "store slolab.db", "prometheus http://…"
	// End returns the end of the window to judge.
	End func(ctx context.Context) (time.Time, error)
}

var _ Source = (*Stored)(nil)

// Observe implements Source.
func (s *Stored) Observe(ctx context.Context, svc *spec.Service, window time.Duration) (*Observed, error) {
	end, err := s.End(ctx)
	if err != nil {
		return nil, err
	}
	window = (window + time.Minute - 1).Truncate(time.Minute) // whole minutes
	revs, err := s.Source.Revisions(ctx, slo.Range{From: end.Add(-window), To: end})
	if err != nil {
		return nil, err
	}
	obs := &Observed{Source: s.Name, At: end, Window: window, Span: window, CUJs: map[string]Revisions{}}
	for _, c := range svc.CUJs {
		var rv Revisions
		for rev, n := range revs[c.Name] {
			counts := Counts{Total: n.Total, Bad: n.Bad}
			if c.Latency != nil {
				counts.Slow = n.Slow
			}
			switch rev {
			case match.RevisionStable.String():
				rv.Stable = counts
			case match.RevisionCanary.String():
				rv.Canary = counts
			default:
				rv.Unsplit = counts
			}
		}
		obs.CUJs[c.Name] = rv
	}
	return obs, nil
}

// PrometheusRevisions adapts a Prometheus source, which evaluates a window
// of whole steps at its end, to Revisioned.
type PrometheusRevisions struct {
	Source interface {
		Revisions(ctx context.Context, at time.Time, w time.Duration) (map[string]map[string]slo.Counts, error)
	}
}

// Revisions implements Revisioned.
func (p PrometheusRevisions) Revisions(ctx context.Context, r slo.Range) (map[string]map[string]slo.Counts, error) {
	return p.Source.Revisions(ctx, r.To, r.Duration())
}
