package cluster

import (
	"encoding/json"
	"maps"
	"sort"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/split"
)

// The methods below are the ones the admin API calls on the proxy's
// fault.Registry and split: each change applies here first (the registry
// validates it), then goes to every member; reads answer with the fleet's
// totals.

// closedErr refuses changes once the member leaves. Callers hold n.mu.
func (n *Node) closedErr() error {
	if n.closed {
		return slolab.Errorf(slolab.Unavailable, "this proxy is leaving the cluster: make the change through another member")
	}
	return nil
}

// Put adds or replaces a rule on every member.
func (n *Node) Put(s *spec.FaultRule) (fault.Status, bool, error) {
	n.mu.Lock()
	if err := n.closedErr(); err != nil {
		n.mu.Unlock()
		return fault.Status{}, false, err
	}
	st, created, err := n.cfg.Faults.Put(s)
	if err != nil {
		n.mu.Unlock()
		return st, created, err
	}
	action := "replace"
	if created {
		action = "put"
	}
	n.setRule(&ruleRecord{Name: s.Name, Rule: st.Rule, Created: st.Created, Expires: st.ExpiresAt, Action: action})
	st = n.fleet(st)
	n.mu.Unlock()
	n.flush()
	return st, created, nil
}

// setRule versions a change made here, records it and sends it. Callers
// hold n.mu and call n.flush after unlocking.
func (n *Node) setRule(r *ruleRecord) {
	r.Version, r.At = n.next(), n.cfg.Now().UTC()
	r.Created, r.Expires = r.Created.UTC(), r.Expires.UTC()
	n.rules[r.Name] = r
	n.held = true
	if r.Rule != nil {
		n.applied[r.Name] = r.Version
	} else {
		delete(n.applied, r.Name)
	}
	n.send("rule/"+r.Name, &envelope{Rules: []json.RawMessage{ruleMessage(r)}}, true)
}

// Renew extends a rule's lease on every member, to the same absolute end.
func (n *Node) Renew(name string, ttl time.Duration) (fault.Status, error) {
	n.mu.Lock()
	if err := n.closedErr(); err != nil {
		n.mu.Unlock()
		return fault.Status{}, err
	}
	st, err := n.cfg.Faults.Renew(name, ttl)
	if err != nil {
		n.mu.Unlock()
		return st, err
	}
	n.setRule(&ruleRecord{Name: name, Rule: st.Rule, Created: st.Created, Expires: st.ExpiresAt, Action: "renew"})
	st = n.fleet(st)
	n.mu.Unlock()
	n.flush()
	return st, nil
}

// Delete removes a rule from every member and returns its fleet totals.
func (n *Node) Delete(name string) (fault.Status, error) {
	n.mu.Lock()
	if err := n.closedErr(); err != nil {
		n.mu.Unlock()
		return fault.Status{}, err
	}
	st, err := n.cfg.Faults.Delete(name)
	rec := n.rules[name]
	if err != nil {
		// The rule may be the fleet's without applying here (another
		// member's TCP listener): deleting it still deletes it everywhere.
		if slolab.KindOf(err) != slolab.NotFound || rec == nil || rec.Rule == nil {
			n.mu.Unlock()
			return st, err
		}
		st = fault.Status{Rule: rec.Rule, State: fault.StateFinished, Created: rec.Created, ExpiresAt: rec.Expires}
	}
	n.setRule(&ruleRecord{Name: name, Created: st.Created, Expires: latest(st.ExpiresAt, n.cfg.Now()), Action: "delete"})
	st = n.fleet(st)
	n.mu.Unlock()
	n.flush()
	return st, nil
}

// Get returns a rule with the fleet's totals.
func (n *Node) Get(name string) (fault.Status, error) {
	st, err := n.cfg.Faults.Get(name)
	if err != nil {
		return st, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fleet(st), nil
}

// List returns every rule this member holds with the fleet's totals.
func (n *Node) List() []fault.Status {
	list := n.cfg.Faults.List()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range list {
		list[i] = n.fleet(list[i])
	}
	return list
}

// fleet adds the other members' counts of the same incarnation of the rule
// to this member's, with one row per member. Callers hold n.mu.
func (n *Node) fleet(st fault.Status) fault.Status {
	st.Members = []fault.MemberCounts{{
		Member: n.cfg.Name, State: st.State, Matched: st.Matched, Injected: st.Injected, Version: n.heldVersion(st).String(),
	}}
	for _, name := range n.others() {
		mc := fault.MemberCounts{Member: name, State: fault.StateMissing}
		if r := n.reports[name]; r != nil {
			mc.Reported = r.At
			for _, rr := range r.Rules {
				if rr.Name == st.Rule.Name && rr.Created.Equal(st.Created) {
					mc.State, mc.Matched, mc.Injected, mc.Version = rr.State, rr.Matched, rr.Injected, rr.Version.String()
					st.Matched += rr.Matched
					st.Injected += rr.Injected
				}
			}
		}
		if m := n.members[name]; m == nil || m.state == MemberDead || m.state == MemberLeft {
			if mc.State == fault.StateMissing {
				continue // a member gone before it held this rule
			}
			mc.Gone = true
		}
		st.Members = append(st.Members, mc)
	}
	return st
}

// others lists the other members seen (by membership or by their
// reports), sorted. Callers hold n.mu.
func (n *Node) others() []string {
	var out []string
	for name := range n.members {
		if name != n.cfg.Name {
			out = append(out, name)
		}
	}
	for name := range n.reports {
		if _, ok := n.members[name]; !ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// SetWeight sets the canary's weight on every member.
func (n *Node) SetWeight(w spec.Ratio) (split.Status, error) {
	n.mu.Lock()
	defer n.flush()
	defer n.mu.Unlock()
	if err := n.closedErr(); err != nil {
		return split.Status{}, err
	}
	if n.cfg.Split == nil {
		return split.Status{}, slolab.Errorf(slolab.NotFound, "the proxy does not split traffic")
	}
	st, err := n.cfg.Split.SetWeight(w)
	if err != nil {
		return st, err
	}
	n.canary = &canaryRecord{Version: n.next(), Weight: w, Action: "canary.weight", At: n.cfg.Now().UTC()}
	n.held = true
	n.send("canary", &envelope{Canary: n.canary}, true)
	return st, nil
}

// txState is what a change made inside a transaction may have to be
// undone to: the records, and what was left to send before it began.
type txState struct {
	rules     map[string]*ruleRecord
	applied   map[string]Version
	groupings map[string]*groupingRecord
	canary    *canaryRecord
	outbox    int
	changes   int
}

// Snapshot begins a change that may have to be undone, as the admin API
// makes every change: it records the registry's rules and groupings (the
// returned snapshot) and the node's records, and until Commit or Restore
// nothing made through the node leaves this member, nor do changes from
// other members apply. Every Snapshot must be followed by one Commit or
// Restore.
func (n *Node) Snapshot() fault.Snapshot {
	n.txMu.Lock()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tx = &txState{
		rules: maps.Clone(n.rules), applied: maps.Clone(n.applied), groupings: maps.Clone(n.groupings), canary: n.canary,
		outbox: len(n.outbox), changes: len(n.changes),
	}
	return n.cfg.Faults.Snapshot()
}

// Restore undoes the change begun with Snapshot: the registry takes the
// snapshot's rules and groupings back, the node its records, and what the
// change would have sent to the other members is dropped, so no member
// applies a change that was refused here. (The canary weight is the
// caller's to set back: the node sets it through the split.)
func (n *Node) Restore(s fault.Snapshot) {
	n.mu.Lock()
	n.cfg.Faults.Restore(s)
	tx := n.tx
	if tx != nil {
		n.rules, n.applied, n.groupings, n.canary = tx.rules, tx.applied, tx.groupings, tx.canary
		n.outbox, n.changes = n.outbox[:tx.outbox], n.changes[:tx.changes]
		n.tx = nil
	}
	n.mu.Unlock()
	if tx != nil {
		n.txMu.Unlock()
	}
	n.flush()
}

// Commit sends the change begun with Snapshot to the other members.
func (n *Node) Commit() {
	n.mu.Lock()
	tx := n.tx
	n.tx = nil
	n.mu.Unlock()
	if tx != nil {
		n.txMu.Unlock()
	}
	n.flush()
}
