package experiment

import (
	"context"
	"testing"
	"time"

	"slolab.dev/slolab/slo"
)

// Expressions read the SLO engine's sources too: counts per CUJ, but no
// groups and no histogram, and they say so.
func TestExpressionsOverAnSLOSource(t *testing.T) {
	at := time.Date(2026, 11, 17, 12, 0, 0, 0, time.UTC)
	b := slo.NewHistoryBuilder(at.Add(-time.Hour), at)
	for m := range 60 {
		b.AddCounts("update", at.Add(-time.Hour+time.Duration(m)*time.Minute), slo.Counts{Total: 100, Bad: 1, Slow: 2})
	}
	h, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := compileDoc(t, experimentDoc(`  blastRadius: {by: "header:X-User", experiment: 10%}
  steadyState:
    - availability("update", "5m") == 99.0 && latency_ratio("update", "5m") == 98.0 && requests("update", "1h") == 6000
    - availability("update", "5m", "control") > 1
    - p99("update", "5m") < 1s
  method: [{duration: 1m}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &evaluator{view: SourceView{Source: h, Now: func() time.Time { return at }}, svc: c.Service, exp: c.Experiment, groups: true}
	c.fns.ev = ev
	ev.round(context.Background(), at)
	want := []struct {
		holds bool
		err   string
	}{
		{true, ""},
		{false, `availability("update", "5m", "control"): the control group cannot be read from this source: it counts every client together; read the proxy's admin API for groups`},
		{false, `p99("update", "5m"): this source keeps no latency histogram; read the proxy's admin API for percentiles`},
	}
	for i, h := range c.SteadyState {
		o := ev.eval(h)
		if o.Holds != want[i].holds || o.Error != want[i].err {
			t.Errorf("%s: holds %v, error %q; want %v, %q", o.Expr, o.Holds, o.Error, want[i].holds, want[i].err)
		}
	}
}
