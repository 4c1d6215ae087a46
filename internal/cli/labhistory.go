package cli

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"time"

	"slolab.dev/slolab/backfill"
	"slolab.dev/slolab/load"
	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// defaultLabHistory is how much synthetic history the lab writes before it
// starts: the longest window of examples/chat.yaml, so every window is full.
const defaultLabHistory = 30 * spec.Day

// labHistory is what the lab wrote as its synthetic history, for the banner.
type labHistory struct {
	synthetic slo.Synthetic
	buckets   int
	took      time.Duration
	skipped   string // why none was written
}

func (h labHistory) String() string {
	if h.skipped != "" {
		return "none: " + h.skipped
	}
	return fmt.Sprintf("%s of synthetic minutes before %s (%s); %s buckets written in %s",
		rpt.Span(h.synthetic.Until.Sub(h.synthetic.From)), h.synthetic.Until.Local().Format("15:04:05"),
		h.synthetic.Description, rpt.Count(uint64(h.buckets)), h.took.Round(time.Millisecond))
}

// placeholder is a {var} of a load template's path.
var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// writeHistory writes d of synthetic minutes before until into the lab's
// store: every CUJ at the steady load's exact rate, its latencies drawn
// from the demo app's baseline for the routes the load sends it to (each
// template by its weight), no failures (the app fails none by itself). A
// store that already holds minutes keeps them and gets no history.
func (l *lab) writeHistory(ctx context.Context, plan *load.Plan, d time.Duration, until time.Time) (labHistory, error) {
	st := l.stack.store
	ext, err := st.Extent(ctx)
	if err != nil {
		return labHistory{}, err
	}
	if !ext.Last.IsZero() {
		return labHistory{skipped: fmt.Sprintf("the store already holds minutes from %s on", ext.First.Local().Format("2006-01-02 15:04"))}, nil
	}
	until = until.Round(0).UTC() // no monotonic reading: it is stored
	cfg := backfill.Config{Bounds: l.stack.recorder.Bounds(), From: until.Add(-d), Until: until, Seed: l.o.seed}
	for _, cp := range plan.CUJs {
		c := l.svc.CUJ(cp.Name)
		r := cp.Stages[0].From
		bc := backfill.CUJ{
			Name:      cp.Name,
			PerMinute: new(big.Rat).SetFrac(new(big.Int).Mul(new(big.Int).SetUint64(r.Freq), big.NewInt(int64(time.Minute))), big.NewInt(int64(r.Per))),
		}
		if c.Latency != nil {
			bc.Threshold = c.Latency.Threshold
		}
		for _, t := range cp.Templates {
			route := l.stack.routes.Match(templateRequest(t))
			delay, ok := l.app.Baseline(route.Pattern)
			if !ok {
				return labHistory{}, fmt.Errorf("the lab's history: the demo app does not serve %s %s (CUJ %s)", t.Method, t.Path, cp.Name)
			}
			bc.Latency = append(bc.Latency, backfill.Part{Quantile: delay.Quantile, Weight: float64(t.Weight)})
		}
		cfg.CUJs = append(cfg.CUJs, bc)
	}
	latencies := "the demo app's baseline latencies"
	if l.o.noLatency {
		latencies = "no latency (--no-latency)"
	}
	h, err := backfill.New(cfg)
	if err != nil {
		return labHistory{}, err
	}
	syn := slo.Synthetic{From: cfg.From, Until: cfg.Until,
		Description: fmt.Sprintf("steady load %s in the spec's mix, %s, no failures; seed %d", l.rate, latencies, l.o.seed)}
	start := time.Now()
	n, err := st.AddSynthetic(ctx, cfg.Bounds, syn, h.Minutes())
	if err != nil {
		return labHistory{}, err
	}
	return labHistory{synthetic: syn, buckets: n, took: time.Since(start)}, nil
}

// templateRequest is a request of a load template, with every placeholder
// filled in, for matching it to its route.
func templateRequest(t *load.Template) *http.Request {
	path, _, _ := strings.Cut(placeholder.ReplaceAllString(t.Path, "1"), "?")
	r, err := http.NewRequest(t.Method, "http://"+t.Host+path, nil)
	if err != nil { // a path the template compiler accepted always parses
		return &http.Request{Method: t.Method}
	}
	return r
}
