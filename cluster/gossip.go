package cluster

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

// maxBroadcast is the largest message sent by gossip, which piggybacks on
// UDP packets of at most 1,400 bytes; larger ones (a rule with a long
// replacement body, the report of a member holding many rules) go to every
// member over TCP instead.
const maxBroadcast = 1000

// broadcast is one queued message; a newer one with the same name replaces
// it in the queue.
type broadcast struct {
	name string
	msg  []byte
}

func (b *broadcast) Name() string                                { return b.name }
func (b *broadcast) Message() []byte                             { return b.msg }
func (b *broadcast) Finished()                                   {}
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool { return false }

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

// outgoing is a message a change left to send: gossip repeats it, and an
// urgent one (a change) also goes at once to every member.
type outgoing struct {
	name   string
	msg    []byte
	urgent bool
}

// send queues env for gossip, or for a reliable send to every member when
// it is too large for a packet. A change (urgent) also goes at once to every
// member in one packet each, so it applies everywhere within milliseconds
// rather than at the next gossip rounds; gossip then repeats it for members
// that missed the packet. Nothing leaves before flush, and nothing made
// inside a transaction (Snapshot) before Commit. Callers hold n.mu and call
// n.flush after unlocking.
func (n *Node) send(name string, env *envelope, urgent bool) {
	msg, err := encode(env)
	if err != nil {
		n.cfg.Logger.Error("cluster: encoding a message", "err", err)
		return
	}
	n.outbox = append(n.outbox, outgoing{name: name, msg: msg, urgent: urgent})
}

// transmit hands one message to gossip and, when it is urgent or too large
// for a packet, sends it to every member directly.
func (n *Node) transmit(o outgoing) {
	small := len(o.msg) <= maxBroadcast
	if small {
		n.queue.QueueBroadcast(&broadcast{name: o.name, msg: o.msg})
		if !o.urgent {
			return
		}
	}
	n.inflight.Go(func() { // never block memberlist's goroutines on a TCP send
		for _, m := range n.ml.Members() {
			if m.Name == n.cfg.Name {
				continue
			}
			send := n.ml.SendReliable
			if small {
				send = n.ml.SendBestEffort
			}
			if err := send(m, o.msg); err != nil {
				n.cfg.Logger.Warn("cluster: sending to a member", "member", m.Name, "err", err)
			}
		}
	})
}

// relay gossips on a change this member just learnt of, as Alertmanager's
// peers pass on new silences: a member that joined through this one, and
// that the change's origin did not know of yet, still hears of it. Only
// newer versions are relayed, so a change stops once every member has it.
// Callers hold n.mu and call n.flush after unlocking.
func (n *Node) relay(name string, env *envelope) {
	msg, err := encode(env)
	if err == nil && len(msg) <= maxBroadcast {
		n.outbox = append(n.outbox, outgoing{name: name, msg: msg})
	}
}

// flush runs what changes left to do outside the lock: the messages to
// send and the OnChange callbacks; inside a transaction it keeps them for
// Commit (or Restore drops them).
func (n *Node) flush() {
	n.mu.Lock()
	if n.held {
		n.held = false
		select {
		case n.poke <- struct{}{}:
		default:
		}
	}
	if n.tx != nil {
		n.mu.Unlock()
		return
	}
	out, changes := n.outbox, n.changes
	n.outbox, n.changes = nil, nil
	n.mu.Unlock()
	for _, o := range out {
		n.transmit(o)
	}
	if n.cfg.OnChange != nil {
		for _, c := range changes {
			n.cfg.OnChange(c)
		}
	}
}

// ruleMessage encodes one rule record for an envelope.
func ruleMessage(r *ruleRecord) json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil {
		return nil
	}
	return b
}

// merge applies every record of env that is newer than what the node holds.
func (n *Node) merge(env *envelope, sync bool) {
	n.txMu.Lock() // a change under way here goes first: see Snapshot
	defer n.txMu.Unlock()
	n.mu.Lock()
	now := n.cfg.Now()
	for _, raw := range env.Rules {
		var r ruleRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			n.cfg.Logger.Warn("cluster: a member sent a rule this member cannot read", "err", err)
			continue
		}
		n.mergeRule(&r, now, sync)
	}
	if len(env.Groupings) > 0 {
		for _, g := range env.Groupings {
			n.mergeGrouping(g, sync)
		}
		n.reconcileGroupings(now, sync)
	}
	if c := env.Canary; c != nil {
		n.mergeCanary(c, sync)
	}
	for _, r := range env.Reports {
		if r.Member == n.cfg.Name {
			continue
		}
		if old := n.reports[r.Member]; old == nil || r.Seq > old.Seq {
			n.reports[r.Member] = r
			if m := n.members[r.Member]; r.Leaving && m != nil && m.state == MemberDead {
				m.state = MemberLeft
			}
		}
	}
	n.mu.Unlock()
	n.flush()
}

// observe moves the clock past a version seen.
func (n *Node) observe(v Version) {
	n.clock = max(n.clock, v.Time)
}

// next returns the version of a change made here now.
func (n *Node) next() Version {
	t := max(uint64(n.cfg.Now().UnixMilli()), n.clock+1)
	n.clock = t
	return Version{Time: t, Member: n.cfg.Name}
}

func (n *Node) mergeRule(r *ruleRecord, now time.Time, sync bool) {
	n.observe(r.Version)
	cur := n.rules[r.Name]
	if cur != nil && !r.Version.After(cur.Version) {
		return
	}
	n.rules[r.Name] = r
	n.held = true
	if !sync {
		n.relay("rule/"+r.Name, &envelope{Rules: []json.RawMessage{ruleMessage(r)}})
	}
	if !n.applyRule(r, now) {
		return
	}
	c := Change{Member: r.Version.Member, Version: r.Version, Action: r.Action, Fault: r.Name, At: r.At, Sync: sync}
	if r.Rule != nil {
		c.Detail = r.Rule
	}
	n.changes = append(n.changes, c)
}

// applyRule makes the registry hold what a record says and reports whether
// that changed anything here. Callers hold n.mu.
func (n *Node) applyRule(r *ruleRecord, now time.Time) bool {
	if r.Rule == nil {
		delete(n.applied, r.Name)
		_, err := n.cfg.Faults.Delete(r.Name)
		return err == nil
	}
	if !r.Expires.After(now) {
		// The lease ended: wherever the rule still is, it has lapsed at
		// this same instant; a member that never held it does not start.
		if _, held := n.applied[r.Name]; held {
			n.applied[r.Name] = r.Version
			_, _ = n.cfg.Faults.Apply(r.Rule, r.Created, r.Expires)
		}
		return false
	}
	if _, err := n.cfg.Faults.Apply(r.Rule, r.Created, r.Expires); err != nil {
		delete(n.applied, r.Name)
		n.cfg.Logger.Warn("cluster: a rule from another member does not apply here", "fault", r.Name, "member", r.Version.Member, "err", err)
		return false
	}
	n.applied[r.Name] = r.Version
	return true
}

func (n *Node) mergeCanary(c *canaryRecord, sync bool) {
	n.observe(c.Version)
	if n.canary != nil && !c.Version.After(n.canary.Version) {
		return
	}
	n.canary = c
	n.held = true
	if !sync {
		n.relay("canary", &envelope{Canary: c})
	}
	if n.cfg.Split == nil {
		n.cfg.Logger.Warn("cluster: another member set a canary weight, but this proxy does not split traffic", "member", c.Version.Member, "weight", c.Weight)
		return
	}
	if n.cfg.Split.Weight().Cmp(c.Weight) == 0 {
		return // the same weight keeps its exact pattern
	}
	if _, err := n.cfg.Split.SetWeight(c.Weight); err != nil {
		n.cfg.Logger.Warn("cluster: the canary weight from another member does not apply here", "member", c.Version.Member, "err", err)
		return
	}
	n.changes = append(n.changes, Change{Member: c.Version.Member, Version: c.Version, Action: c.Action, Detail: map[string]spec.Ratio{"weight": c.Weight}, At: c.At, Sync: sync})
}

// ownReport builds this member's report from its registry. Callers hold n.mu.
func (n *Node) ownReport(now time.Time) *report {
	r := &report{Member: n.cfg.Name, At: now.UTC(), Spec: n.cfg.SpecDigest}
	r.Groupings = n.heldGroupings()
	if n.canary != nil {
		r.Canary = n.canary.Version
	}
	for _, st := range n.cfg.Faults.List() {
		r.Rules = append(r.Rules, ruleReport{
			Name: st.Rule.Name, Version: n.heldVersion(st), Created: st.Created.UTC(),
			State: st.State, Matched: st.Matched, Injected: st.Injected,
		})
	}
	return r
}

// heldVersion is the version of the record the registry's rule came from.
func (n *Node) heldVersion(st fault.Status) Version {
	if r := n.rules[st.Rule.Name]; r != nil && r.Rule != nil && r.Created.Equal(st.Created) {
		return r.Version
	}
	return Version{}
}

// report sends this member's report when it changed (or every tenth
// interval anyway; and its last one, at once, when it leaves).
func (n *Node) report(leaving bool) {
	n.txMu.Lock() // report what is committed
	defer n.txMu.Unlock()
	n.mu.Lock()
	if n.closed || n.ml == nil {
		n.mu.Unlock()
		return
	}
	now := n.cfg.Now()
	r := n.ownReport(now)
	stale := n.sent == nil || now.Sub(n.sent.At) >= 10*n.cfg.ReportInterval
	if !leaving && !stale && sameReport(n.sent, r) {
		n.mu.Unlock()
		return
	}
	n.seq = max(n.seq+1, uint64(now.UnixNano()))
	r.Seq, r.Leaving = n.seq, leaving
	n.sent = r
	n.send("report/"+n.cfg.Name, &envelope{Reports: []*report{r}}, leaving)
	n.mu.Unlock()
	n.flush()
}

func sameReport(a, b *report) bool {
	return a.Spec == b.Spec && maps.Equal(a.Groupings, b.Groupings) && a.Canary == b.Canary && slices.EqualFunc(a.Rules, b.Rules, func(x, y ruleReport) bool {
		return x.Name == y.Name && x.Version == y.Version && x.Created.Equal(y.Created) && x.State == y.State && x.Matched == y.Matched && x.Injected == y.Injected
	})
}

// sweep forgets deletions, lapsed rules and silent members' reports older
// than the retention.
func (n *Node) sweep() {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	defer n.flush()
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Now()
	for name, r := range n.rules {
		if now.Sub(latest(r.Expires, r.At)) > n.cfg.Retention {
			delete(n.rules, name)
			delete(n.applied, name)
		}
	}
	for run, g := range n.groupings {
		if now.Sub(latest(g.Expires, g.At)) > n.cfg.Retention {
			delete(n.groupings, run)
			delete(n.invalid, run)
		}
	}
	if len(n.groupings) > 0 {
		n.reconcileGroupings(now, false) // a run that yielded its CUJs may hold them now
	}
	for name, r := range n.reports {
		if now.Sub(r.At) > n.cfg.Retention {
			delete(n.reports, name)
		}
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// fullState is every record and every report the node knows, for a
// full-state sync. Callers hold n.mu.
func (n *Node) fullState() *envelope {
	env := &envelope{Canary: n.canary}
	for _, run := range slices.Sorted(maps.Keys(n.groupings)) {
		env.Groupings = append(env.Groupings, n.groupings[run])
	}
	for _, r := range n.rules {
		env.Rules = append(env.Rules, ruleMessage(r))
	}
	if !n.closed {
		own := n.ownReport(n.cfg.Now())
		n.seq = max(n.seq+1, uint64(own.At.UnixNano()))
		own.Seq = n.seq
		env.Reports = append(env.Reports, own)
	}
	for _, r := range n.reports {
		env.Reports = append(env.Reports, r)
	}
	return env
}

// delegate is the Node as memberlist's Delegate.
type delegate Node

func (d *delegate) NodeMeta(int) []byte { return nil }

func (d *delegate) NotifyMsg(msg []byte) {
	n := (*Node)(d)
	env, err := decode(msg)
	if err != nil {
		n.cfg.Logger.Warn("cluster: an unreadable message", "err", err)
		return
	}
	n.merge(env, false)
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(bool) []byte {
	n := (*Node)(d)
	n.txMu.Lock() // never send a change that may still be undone
	n.mu.Lock()
	env := n.fullState()
	n.mu.Unlock()
	n.txMu.Unlock()
	msg, err := encode(env)
	if err != nil {
		n.cfg.Logger.Error("cluster: encoding the full state", "err", err)
		return nil
	}
	return msg
}

func (d *delegate) MergeRemoteState(buf []byte, _ bool) {
	n := (*Node)(d)
	env, err := decode(buf)
	if err != nil {
		n.cfg.Logger.Warn("cluster: an unreadable full state", "err", err)
		return
	}
	n.merge(env, true)
}

// events is the Node as memberlist's EventDelegate.
type events Node

func (e *events) NotifyJoin(m *memberlist.Node) {
	e.setMember(m, MemberAlive)
	if m.Name != e.cfg.Name {
		e.cfg.Logger.Info("cluster: member joined", "member", m.Name, "address", m.Address())
	}
}

// NotifyLeave tells a member that left (its last report said so) from one
// that failed: memberlist reports both alike.
func (e *events) NotifyLeave(m *memberlist.Node) {
	n := (*Node)(e)
	n.mu.Lock()
	state := MemberDead
	if r := n.reports[m.Name]; r != nil && r.Leaving {
		state = MemberLeft
	}
	n.members[m.Name] = &member{addr: m.Address(), state: state, since: n.cfg.Now()}
	n.mu.Unlock()
	if m.Name == e.cfg.Name {
		return
	}
	if state == MemberLeft {
		e.cfg.Logger.Info("cluster: member left", "member", m.Name, "address", m.Address())
		return
	}
	e.cfg.Logger.Warn("cluster: member failed; its rules stay with the others until their leases end", "member", m.Name, "address", m.Address())
}

func (e *events) NotifyUpdate(m *memberlist.Node) { e.setMember(m, MemberAlive) }

func (e *events) setMember(m *memberlist.Node, state string) {
	n := (*Node)(e)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[m.Name] = &member{addr: m.Address(), state: state, since: n.cfg.Now()}
}
