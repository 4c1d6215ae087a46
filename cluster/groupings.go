package cluster

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

// Experiment runs hold groupings on the CUJs they measure, one record per
// run, replicated like the rules: versioned, with absolute lease ends, and
// deletions remembered. The registry refuses a grouping that would share a
// CUJ with another run's live grouping; in a fleet two members may accept
// two such runs at the same moment, so every member settles them the same
// way: of the live runs that want one CUJ, the one with the earlier claim
// holds it, and the other yields its grouping on every member.

// SetGrouping installs a run's grouping on every member.
func (n *Node) SetGrouping(g *spec.Grouping) (fault.GroupingStatus, error) {
	n.mu.Lock()
	defer n.flush()
	defer n.mu.Unlock()
	if err := n.closedErr(); err != nil {
		return fault.GroupingStatus{}, err
	}
	st, err := n.cfg.Faults.SetGrouping(g)
	if err != nil {
		return st, err
	}
	n.setGrouping(&groupingRecord{Run: g.Run, Grouping: g, Expires: st.ExpiresAt, Action: "grouping.put"})
	return st, nil
}

// RenewGrouping extends a run's grouping's lease on every member ("" for
// the only grouping this member holds), to the same absolute end.
func (n *Node) RenewGrouping(run string, ttl time.Duration) (fault.GroupingStatus, error) {
	n.mu.Lock()
	defer n.flush()
	defer n.mu.Unlock()
	if err := n.closedErr(); err != nil {
		return fault.GroupingStatus{}, err
	}
	st, err := n.cfg.Faults.RenewGrouping(run, ttl)
	if err != nil {
		return st, err
	}
	n.setGrouping(&groupingRecord{Run: st.Grouping.Run, Grouping: st.Grouping, Expires: st.ExpiresAt, Action: "grouping.renew"})
	return st, nil
}

// ClearGrouping removes a run's grouping from every member ("" for the only
// grouping this member holds). A run's live grouping that does not apply
// here (it yielded its CUJs to an earlier run) is still removed everywhere.
func (n *Node) ClearGrouping(run string) bool {
	n.mu.Lock()
	defer n.flush()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	// The deletion is remembered past the lease of what it deleted.
	until := n.cfg.Now()
	if st, err := n.cfg.Faults.Grouping(run); err == nil {
		run, until = st.Grouping.Run, latest(until, st.ExpiresAt)
		n.cfg.Faults.ClearGrouping(run)
	} else if r := n.groupings[run]; run == "" || r == nil || r.Grouping == nil {
		return false
	} else {
		until = latest(until, r.Expires)
	}
	n.setGrouping(&groupingRecord{Run: run, Expires: until, Action: "grouping.delete"})
	return true
}

// Grouping returns a run's grouping as this member applies it.
func (n *Node) Grouping(run string) (fault.GroupingStatus, error) { return n.cfg.Faults.Grouping(run) }

// Groupings returns every run's grouping as this member applies it.
func (n *Node) Groupings() []fault.GroupingStatus { return n.cfg.Faults.Groupings() }

// setGrouping versions a grouping change made here, records it and sends
// it. A put or renewal of a run that holds a lease keeps the run's claim.
// Callers hold n.mu and call n.flush after unlocking.
func (n *Node) setGrouping(g *groupingRecord) {
	now := n.cfg.Now()
	g.Version, g.At, g.Expires = n.next(), now.UTC(), g.Expires.UTC()
	if g.Grouping != nil {
		g.Claim = g.Version
		if old := n.groupings[g.Run]; old != nil && old.Grouping != nil && old.Expires.After(now) {
			g.Claim = old.Claim
		}
	}
	n.groupings[g.Run] = g
	n.held = true
	n.send("grouping/"+g.Run, &envelope{Groupings: []*groupingRecord{g}}, true)
	n.reconcileGroupings(now, false) // another run may hold a CUJ this one gave up
}

// mergeGrouping takes a run's record from another member when it is newer
// than the one held; the caller then reconciles. Callers hold n.mu.
func (n *Node) mergeGrouping(g *groupingRecord, sync bool) {
	n.observe(g.Version)
	if cur := n.groupings[g.Run]; cur != nil && !g.Version.After(cur.Version) {
		return
	}
	g.Expires = g.Expires.UTC()
	n.groupings[g.Run] = g
	n.held = true
	if !sync {
		n.relay("grouping/"+g.Run, &envelope{Groupings: []*groupingRecord{g}})
	}
}

// holders decides which runs' live groupings apply at now: by claim,
// earliest first, each run whose CUJs no run before it holds. The answer is
// a function of the records and the time alone, so every member that holds
// the same records applies the same groupings. It returns, for every live
// run that yields, the run that holds its CUJs instead. Callers hold n.mu.
func (n *Node) holders(now time.Time) (hold map[string]bool, yields map[string]string) {
	var live []*groupingRecord
	for _, g := range n.groupings {
		if g.Grouping != nil && g.Expires.After(now) {
			live = append(live, g)
		}
	}
	slices.SortFunc(live, func(a, b *groupingRecord) int {
		switch {
		case a.Claim.After(b.Claim):
			return 1
		case b.Claim.After(a.Claim):
			return -1
		}
		return cmp.Compare(a.Run, b.Run)
	})
	hold, yields = map[string]bool{}, map[string]string{}
	var held []*groupingRecord
	for _, g := range live {
		if i := slices.IndexFunc(held, func(h *groupingRecord) bool { return shareCUJ(h.Grouping, g.Grouping) }); i >= 0 {
			yields[g.Run] = held[i].Run
			continue
		}
		hold[g.Run] = true
		held = append(held, g)
	}
	return hold, yields
}

// shareCUJ reports whether two groupings hold a CUJ in common (no CUJs:
// every CUJ).
func shareCUJ(a, b *spec.Grouping) bool {
	if len(a.CUJs) == 0 || len(b.CUJs) == 0 {
		return true
	}
	return slices.ContainsFunc(a.CUJs, func(c string) bool { return slices.Contains(b.CUJs, c) })
}

// reconcileGroupings makes the registry hold what the records say: a
// deleted run's grouping goes, a run that yields its CUJs to an earlier
// claim goes, a lapsed run this member held takes the lease end it lapsed
// at, and every run that holds its CUJs applies with its lease end. Each
// change to the registry that a record brought is handed to OnChange (sync:
// the record came in a full-state sync). Callers hold n.mu and call n.flush
// after unlocking.
func (n *Node) reconcileGroupings(now time.Time, sync bool) {
	hold, yields := n.holders(now)
	had := map[string]fault.GroupingStatus{}
	for _, st := range n.cfg.Faults.Groupings() {
		had[st.Grouping.Run] = st
	}
	runs := slices.Sorted(maps.Keys(n.groupings))
	var apply []string
	// Removals and lapses first, so that no run that holds a CUJ now finds
	// it taken by what the registry held before.
	for _, run := range runs {
		g := n.groupings[run]
		old, ok := had[run]
		switch {
		case n.invalid[run] == g.Version:
			// It does not apply here (tried once): nothing to do until it changes.
		case hold[run]:
			if !ok || !old.ExpiresAt.Equal(g.Expires) || !old.Grouping.Equal(g.Grouping) {
				apply = append(apply, run)
			}
		case !ok:
		case g.Grouping == nil || yields[run] != "":
			n.cfg.Faults.ClearGrouping(run)
			c := Change{Member: g.Version.Member, Version: g.Version, Action: "grouping.delete", Fault: run, At: g.At, Sync: sync}
			if g.Grouping != nil { // it yields: the run that holds its CUJs made the change
				w := n.groupings[yields[run]]
				c.Member, c.Version, c.At = w.Version.Member, w.Version, w.At
				c.Detail = map[string]string{"yieldedTo": yields[run]}
				n.cfg.Logger.Warn("cluster: a run's grouping yields its CUJs to a run that claimed them earlier", "run", run, "heldBy", yields[run], "member", g.Version.Member)
			}
			n.changes = append(n.changes, c)
		case !old.ExpiresAt.Equal(g.Expires) || !old.Grouping.Equal(g.Grouping):
			// The lease ended: the run lapses here at the instant it lapsed
			// everywhere; a member that never held it does not start.
			if _, err := n.cfg.Faults.ApplyGrouping(g.Grouping, g.Expires); err != nil {
				n.notApplied(run, err)
			}
		}
	}
	// The runs that hold their CUJs share none, but one may still find a
	// CUJ held by another's previous grouping, applied later in this pass:
	// a second pass applies it.
	errs := map[string]error{}
	for range 2 {
		var retry []string
		for _, run := range apply {
			g := n.groupings[run]
			if _, err := n.cfg.Faults.ApplyGrouping(g.Grouping, g.Expires); err != nil {
				errs[run] = err
				retry = append(retry, run)
				continue
			}
			n.changes = append(n.changes, Change{Member: g.Version.Member, Version: g.Version, Action: g.Action, Fault: run, Detail: g.Grouping, At: g.At, Sync: sync})
		}
		apply = retry
	}
	for _, run := range apply {
		n.notApplied(run, errs[run])
	}
}

// notApplied logs a run's grouping that does not apply here, once for a
// version that never will (this member's spec lacks a CUJ, its --max-ttl is
// shorter). Callers hold n.mu.
func (n *Node) notApplied(run string, err error) {
	g := n.groupings[run]
	if slolab.KindOf(err) == slolab.Invalid {
		n.invalid[run] = g.Version
	}
	n.cfg.Logger.Warn("cluster: a run's grouping from another member does not apply here", "run", run, "member", g.Version.Member, "err", err)
}

// heldGroupings are the versions of the runs' groupings the registry holds
// as their records say, for this member's report. Callers hold n.mu.
func (n *Node) heldGroupings() map[string]Version {
	out := map[string]Version{}
	for _, st := range n.cfg.Faults.Groupings() {
		run := st.Grouping.Run
		v := Version{}
		if g := n.groupings[run]; g != nil && g.Grouping != nil && g.Expires.Equal(st.ExpiresAt) && g.Grouping.Equal(st.Grouping) {
			v = g.Version
		}
		out[run] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
