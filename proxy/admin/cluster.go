package admin

import (
	"context"
	"net/http"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/cluster"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// Faults is what the admin API reads and changes: the proxy's
// *fault.Registry, or a *cluster.Node that applies every change on each
// member of a fleet and answers with the fleet's totals.
type Faults interface {
	Put(*spec.FaultRule) (fault.Status, bool, error)
	Get(name string) (fault.Status, error)
	List() []fault.Status
	Delete(name string) (fault.Status, error)
	Renew(name string, ttl time.Duration) (fault.Status, error)
	SetGrouping(*spec.Grouping) (fault.GroupingStatus, error)
	RenewGrouping(run string, ttl time.Duration) (fault.GroupingStatus, error)
	Grouping(run string) (fault.GroupingStatus, error)
	Groupings() []fault.GroupingStatus
	ClearGrouping(run string) bool
	// Snapshot and Restore undo a change the audit log cannot record.
	Snapshot() fault.Snapshot
	Restore(fault.Snapshot)
}

// Committer is a Faults whose changes reach beyond this proxy, as a
// *cluster.Node's reach every member of a fleet. Between Snapshot and Commit
// a change stays on this proxy: the admin API commits it once the audit log
// holds it, and Restore undoes it, so a change refused here is applied
// nowhere.
type Committer interface {
	Commit()
}

// Weights sets the canary's weight: a *split.Split, or a *cluster.Node.
type Weights interface {
	SetWeight(spec.Ratio) (split.Status, error)
}

// Cluster is the fleet a proxy is a member of.
type Cluster interface {
	Name() string
	Status() cluster.Status
}

var (
	_ Faults    = (*fault.Registry)(nil)
	_ Faults    = (*cluster.Node)(nil)
	_ Committer = (*cluster.Node)(nil)
	_ Weights   = (*split.Split)(nil)
	_ Weights   = (*cluster.Node)(nil)
	_ Cluster   = (*cluster.Node)(nil)
)

func (h *handler) cluster(*http.Request, identity) (int, any, error) {
	if h.cfg.Cluster == nil {
		return 0, nil, slolab.Errorf(slolab.NotFound, "this proxy is not a member of a cluster: start it with --cluster-listen ADDR --cluster-peer ADDR")
	}
	return http.StatusOK, h.cfg.Cluster.Status(), nil
}

// Cluster returns the fleet as the proxy sees it; NotFound when it is on its own.
func (c *Client) Cluster(ctx context.Context) (cluster.Status, error) {
	var st cluster.Status
	err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, &st)
	return st, err
}
