package experiment

import (
	"context"
	"time"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
)

// Injector is what the runner drives: fault rules and the grouping, each
// with a lease. The proxy's admin client is one.
type Injector interface {
	PutFault(ctx context.Context, r *spec.FaultRule) (fault.Status, error)
	GetFault(ctx context.Context, name string) (fault.Status, error)
	RenewFault(ctx context.Context, name string, ttl time.Duration) (fault.Status, error)
	DeleteFault(ctx context.Context, name string) (fault.Status, error)
	ListFaults(ctx context.Context) ([]fault.Status, error)
	SetGrouping(ctx context.Context, g *spec.Grouping) (fault.GroupingStatus, error)
	RenewGrouping(ctx context.Context, run string, ttl time.Duration) (fault.GroupingStatus, error)
	DeleteGrouping(ctx context.Context, run string) error
}

var (
	_ Injector = (*admin.Client)(nil)
	_ View     = AdminView{}
)

// AdminView reads SLIs from a proxy's admin API (GET /api/v1/sli): live
// windows per CUJ and client group, reaching back as far as the proxy keeps.
type AdminView struct {
	Client *admin.Client
}

// SLI implements View.
func (v AdminView) SLI(ctx context.Context, q Query) (SLI, error) {
	var r *admin.SLIResponse
	var err error
	if q.Since.IsZero() {
		r, err = v.Client.SLI(ctx, q.CUJ, q.Group, q.Run, q.Window)
	} else {
		r, err = v.Client.SLISince(ctx, q.CUJ, q.Group, q.Run, q.Since)
	}
	if err != nil {
		return SLI{}, err
	}
	s := SLI{Total: r.Total, Bad: r.Bad, Slow: r.Slow, Hist: r.Hist, Span: time.Duration(r.Span)}
	for _, b := range r.Bounds {
		s.Bounds = append(s.Bounds, time.Duration(b))
	}
	return s, nil
}
