package cli

import (
	"context"
	"fmt"
	"time"

	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/promql"
)

// fleetWindows are a CUJ's realised windows across a fleet, from
// Prometheus: every member's requests over the same windows as the proxy's
// live ones, in whole minutes ending at the minute boundary at.
func fleetWindows(ctx context.Context, src *promql.Source, cuj string, at time.Time) ([]admin.WindowSLI, error) {
	out := make([]admin.WindowSLI, 0, len(admin.LiveWindows))
	for _, w := range admin.LiveWindows {
		ev, err := src.Events(ctx, slo.Last(w, at))
		if err != nil {
			return nil, err
		}
		a := ev[slo.Key{CUJ: cuj, Kind: slo.Availability}]
		out = append(out, admin.WindowSLI{Window: spec.Duration(w), Span: spec.Duration(w), Total: a.Total, Bad: a.Bad,
			Slow: ev[slo.Key{CUJ: cuj, Kind: slo.Latency}].Bad})
	}
	return out, nil
}

// fleetNote warns when the proxy is one member of a fleet and the realised
// windows would be that member's alone.
func (s *simulation) fleetNote(ctx context.Context) {
	if s.prom != nil {
		fmt.Fprintf(s.log, "slolab simulate: realised from %s: every member's requests, in whole minutes\n", s.promURL)
		return
	}
	st, err := s.api.Cluster(ctx)
	if err != nil {
		return
	}
	alive := 0
	for _, m := range st.Members {
		if m.State == cluster.MemberAlive {
			alive++
		}
	}
	if alive > 1 {
		fmt.Fprintf(s.log, "slolab simulate: the proxy is one of %d fleet members: injected counts are the fleet's, the realised windows this member's alone; give --prometheus URL for the fleet's\n", alive)
	}
}

// realisedWindows puts the fleet's windows from Prometheus in place of the
// member's own, when simulate reads Prometheus.
func (s *simulation) realisedWindows(ctx context.Context, resp *admin.CUJsResponse, cuj string) error {
	if s.prom == nil {
		return nil
	}
	c := cujStatus(resp, cuj)
	if c == nil {
		return nil
	}
	w, err := fleetWindows(ctx, s.prom, cuj, slo.Align(time.Now(), time.Minute))
	if err != nil {
		return err
	}
	c.Windows = w
	return nil
}
