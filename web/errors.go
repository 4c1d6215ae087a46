package web

import (
	"context"
	"fmt"
	"time"

	rpt "slolab.dev/slolab/report"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// The dashboard's new errors: classes of the last day the week before
// never saw, as 'slolab errors' reports them by default.
const (
	ErrorsSince    = 24 * time.Hour
	ErrorsBaseline = 7 * spec.Day
)

// ErrorsView is GET /api/errors: the error classes new in the last day.
type ErrorsView struct {
	// Empty says why there is nothing to list, when there is nothing.
	Empty string `json:"empty,omitempty"`
	rpt.NewErrors
}

// newErrors reads the store's error classes of the last day and the week
// before it.
func (d *Dashboard) newErrors(ctx context.Context) (*ErrorsView, error) {
	rec := d.cfg.Records
	if rec == nil || rec.Store == nil {
		return &ErrorsView{Empty: "No store: the proxy keeps its error classes in the embedded store (--store PATH); serve the dashboard with --store PATH to list the new ones.",
			NewErrors: rpt.NewErrors{Classes: []rpt.NewClass{}, Injected: []rpt.NewClass{}, Impact: []rpt.Impact{}}}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := d.cfg.Now()
	from := now.Add(-ErrorsSince).Truncate(time.Hour)
	window := slo.Range{From: from, To: now}
	base := slo.Range{From: from.Add(-ErrorsBaseline), To: from}
	seen, err := rec.Store.ErrorClasses(ctx, window.From, window.To)
	if err != nil {
		return nil, err
	}
	before, err := rec.Store.ErrorClasses(ctx, base.From, base.To)
	if err != nil {
		return nil, err
	}
	v := &ErrorsView{NewErrors: rpt.BuildNewErrors(seen, before, nil, nil)}
	v.Service, v.Source, v.Window, v.Baseline = d.cfg.Service.Name, "store "+rec.Path, window, base
	v.Since, v.BaselineSpan = spec.Duration(ErrorsSince), spec.Duration(ErrorsBaseline)
	if len(v.Classes) == 0 {
		v.Empty = fmt.Sprintf("No new error class in the last %s: every error the proxy saw was seen in the %s before, or none.",
			spec.FormatDuration(ErrorsSince), spec.FormatDuration(ErrorsBaseline))
	}
	return v, nil
}
