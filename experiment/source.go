package experiment

import (
	"context"
	"fmt"
	"time"

	"slolab.dev/slolab/slo"
)

var _ View = SourceView{}

// SourceView reads SLIs from one of the SLO engine's sources — Prometheus
// for a fleet of proxies (store/promql), or the embedded store — instead of
// one proxy's admin API. Those keep request and bad-request counts per CUJ,
// not per client group and not the latency histogram, so group arguments
// other than "all" and the percentile functions are errors under it.
type SourceView struct {
	Source slo.Source
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// SLI implements View. A store or Prometheus counts every request of a CUJ
// together, so a query narrowed to a run (q.Run) reads them all: keeping
// runs apart needs the proxy's admin API (AdminView).
func (v SourceView) SLI(ctx context.Context, q Query) (SLI, error) {
	if q.Group != "" && q.Group != GroupAll {
		return SLI{}, fmt.Errorf("the %s group cannot be read from this source: it counts every client together; read the proxy's admin API for groups", q.Group)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	r := slo.Last(q.Window, now)
	if !q.Since.IsZero() {
		r = slo.Range{From: q.Since, To: now}
	}
	m, err := v.Source.Events(ctx, r)
	if err != nil {
		return SLI{}, err
	}
	avail, lat := m[slo.Key{CUJ: q.CUJ, Kind: slo.Availability}], m[slo.Key{CUJ: q.CUJ, Kind: slo.Latency}]
	s := SLI{Total: max(avail.Total, lat.Total), Bad: avail.Bad, Slow: lat.Bad, Span: r.Duration()}
	return s, nil
}
