package cluster

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/memberlist"

	"slolab.dev/slolab/spec"
)

// Status is what GET /api/v1/cluster reports: the members, their state and
// the versions they hold, and every replicated record.
type Status struct {
	// Self is the member answering.
	Self      string `json:"self"`
	Label     string `json:"label,omitempty"`
	Encrypted bool   `json:"encrypted"`
	// Members are every member seen, this one first, then by name.
	Members []MemberStatus `json:"members"`
	// Rules are the replicated fault rules, deletions included, by name.
	Rules []RuleStatus `json:"rules"`
	// Groupings are the replicated runs' groupings, deletions included, by
	// run.
	Groupings []RecordStatus `json:"groupings"`
	Canary    *RecordStatus  `json:"canary,omitempty"`
}

// MemberStatus is one member as this one sees it.
type MemberStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// State is alive, suspect, dead or left.
	State string    `json:"state"`
	Self  bool      `json:"self,omitempty"`
	Since time.Time `json:"since,omitzero"`
	// Reported is when its last report arrived (its counts and versions).
	Reported time.Time `json:"reported,omitzero"`
	// Spec is a digest of the service spec it runs.
	Spec string `json:"spec,omitempty"`
	// Rules are the rules it holds: name → version.
	Rules map[string]string `json:"rules"`
	// Groupings are the runs' groupings it holds: run → version.
	Groupings map[string]string `json:"groupings,omitempty"`
	Canary    string            `json:"canary,omitempty"`
}

// RuleStatus is one replicated rule record.
type RuleStatus struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Origin is the member where the last change was made.
	Origin    string    `json:"origin"`
	Action    string    `json:"action"`
	At        time.Time `json:"at"`
	Deleted   bool      `json:"deleted,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
	// HeldBy are the alive members holding this version.
	HeldBy []string `json:"heldBy"`
	// Converged: every alive member holds this version (for a deletion,
	// none holds the rule any more).
	Converged bool `json:"converged"`
}

// RecordStatus is a run's replicated grouping or the canary weight.
type RecordStatus struct {
	// Run is the experiment run whose grouping this is ("" for a grouping
	// of no run, and for the canary weight).
	Run       string      `json:"run,omitempty"`
	Version   string      `json:"version"`
	Origin    string      `json:"origin"`
	Action    string      `json:"action"`
	At        time.Time   `json:"at"`
	ExpiresAt time.Time   `json:"expiresAt,omitzero"`
	Weight    *spec.Ratio `json:"weight,omitempty"`
	Deleted   bool        `json:"deleted,omitempty"`
	HeldBy    []string    `json:"heldBy"`
	// YieldsTo names the run that holds this live grouping's CUJs on every
	// member instead, because it claimed them first; the grouping applies
	// nowhere while that run holds them.
	YieldsTo string `json:"yieldsTo,omitempty"`
	// Converged: every alive member holds this version (for a deletion or
	// a grouping that yields, none holds the run's grouping any more).
	Converged bool `json:"converged"`
}

// Status reports the cluster as this member sees it.
func (n *Node) Status() Status {
	suspect := map[string]bool{}
	for _, m := range n.ml.Members() {
		if m.State == memberlist.StateSuspect {
			suspect[m.Name] = true
		}
	}
	self := n.ml.LocalNode().Address()
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now()
	st := Status{Self: n.cfg.Name, Label: n.cfg.Label, Encrypted: len(n.cfg.Key) > 0, Members: []MemberStatus{}, Rules: []RuleStatus{}, Groupings: []RecordStatus{}}

	own := n.ownReport(now)
	reports := map[string]*report{n.cfg.Name: own}
	st.Members = append(st.Members, memberStatus(own, MemberStatus{Name: n.cfg.Name, Address: self, State: MemberAlive, Self: true}))
	var alive []string // alive members with a report, this one included
	alive = append(alive, n.cfg.Name)
	for _, name := range n.others() {
		ms := MemberStatus{Name: name, State: MemberLeft}
		if m := n.members[name]; m != nil {
			ms.Address, ms.State, ms.Since = m.addr, m.state, m.since
			if m.state == MemberAlive && suspect[name] {
				ms.State = MemberSuspect
			}
		}
		r := n.reports[name]
		if r != nil {
			ms.Reported = r.At
		}
		st.Members = append(st.Members, memberStatus(r, ms))
		if ms.State == MemberAlive || ms.State == MemberSuspect {
			alive = append(alive, name)
			reports[name] = r
		}
	}

	names := make([]string, 0, len(n.rules))
	for name := range n.rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := n.rules[name]
		rs := RuleStatus{Name: name, Version: r.Version.String(), Origin: r.Version.Member, Action: r.Action, At: r.At,
			Deleted: r.Rule == nil, ExpiresAt: r.Expires, HeldBy: []string{}}
		holders, holdingAny := 0, 0
		for _, m := range alive {
			v, held := heldBy(reports[m], name)
			if held {
				holdingAny++
			}
			if held && v == r.Version {
				holders++
				rs.HeldBy = append(rs.HeldBy, m)
			}
		}
		rs.Converged = holders == len(alive)
		if rs.Deleted {
			rs.Converged = holdingAny == 0
		}
		st.Rules = append(st.Rules, rs)
	}
	_, yields := n.holders(now)
	for _, run := range slices.Sorted(maps.Keys(n.groupings)) {
		g := n.groupings[run]
		rs := RecordStatus{Run: run, Version: g.Version.String(), Origin: g.Version.Member, Action: g.Action, At: g.At, ExpiresAt: g.Expires,
			Deleted: g.Grouping == nil, YieldsTo: yields[run], HeldBy: []string{}}
		holdingAny := 0
		for _, m := range alive {
			v, held := reports[m].heldGrouping(run)
			if held {
				holdingAny++
			}
			if held && v == g.Version {
				rs.HeldBy = append(rs.HeldBy, m)
			}
		}
		rs.Converged = len(rs.HeldBy) == len(alive)
		if rs.Deleted || rs.YieldsTo != "" {
			rs.Converged = holdingAny == 0
		}
		st.Groupings = append(st.Groupings, rs)
	}
	if c := n.canary; c != nil {
		w := c.Weight
		rs := &RecordStatus{Version: c.Version.String(), Origin: c.Version.Member, Action: c.Action, At: c.At, Weight: &w, HeldBy: []string{}}
		for _, m := range alive {
			if r := reports[m]; r != nil && r.Canary == c.Version {
				rs.HeldBy = append(rs.HeldBy, m)
			}
		}
		rs.Converged = len(rs.HeldBy) == len(alive)
		st.Canary = rs
	}
	return st
}

// heldBy returns the version of a rule a member's report says it holds.
func heldBy(r *report, name string) (Version, bool) {
	if r == nil {
		return Version{}, false
	}
	for _, rr := range r.Rules {
		if rr.Name == name {
			return rr.Version, true
		}
	}
	return Version{}, false
}

func memberStatus(r *report, ms MemberStatus) MemberStatus {
	ms.Rules = map[string]string{}
	if r == nil {
		return ms
	}
	ms.Spec = r.Spec
	for _, rr := range r.Rules {
		ms.Rules[rr.Name] = rr.Version.String()
	}
	for run, v := range r.Groupings {
		if ms.Groupings == nil {
			ms.Groupings = map[string]string{}
		}
		ms.Groupings[run] = v.String()
	}
	ms.Canary = r.Canary.String()
	return ms
}

// heldGrouping returns the version of a run's grouping a member's report
// says it holds.
func (r *report) heldGrouping(run string) (Version, bool) {
	if r == nil {
		return Version{}, false
	}
	v, ok := r.Groupings[run]
	return v, ok
}
