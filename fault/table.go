package fault

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// Rule is a compiled fault rule. Its counters and lease live in state shared
// by every table the rule appears in, so swapping tables never resets them.
type Rule struct {
	Spec  *spec.FaultRule
	cuj   int // dense CUJ index, -1 for any
	route int // route ID, -1 for any
	group match.Group
	state *state
}

type state struct {
	counter *Counter
	expires atomic.Int64 // lease end, Unix nanoseconds
	removed atomic.Bool  // deleted or replaced: holders of the rule (open TCP connections) stop applying it
}

// Counter returns the rule's matched/injected counter.
func (r *Rule) Counter() *Counter { return r.state.counter }

// Expires returns the end of the rule's lease.
func (r *Rule) Expires() time.Time { return time.Unix(0, r.state.expires.Load()) }

// active reports whether the rule applies at now: started, not stopped, lease held.
func (r *Rule) active(now time.Time) bool {
	if now.UnixNano() >= r.state.expires.Load() || r.state.removed.Load() {
		return false
	}
	s := r.Spec
	return (s.Start.IsZero() || !now.Before(s.Start)) && (s.Stop.IsZero() || now.Before(s.Stop))
}

func (r *Rule) matches(req *http.Request, route *match.Route, group match.Group) bool {
	if r.route >= 0 && r.route != route.ID {
		return false
	}
	if r.group != match.GroupNone && r.group != group {
		return false
	}
	s := &r.Spec.Match
	if s.Method != "" && s.Method != req.Method {
		return false
	}
	for name, want := range s.Headers {
		vals := req.Header.Values(name)
		if len(vals) == 0 || want != "*" && !slices.Contains(vals, want) {
			return false
		}
	}
	return true
}

// Table is an immutable set of compiled rules, in evaluation order (ascending
// priority, then name), indexed by route so a request only looks at the
// rules that can concern it: a rule on another CUJ or another route costs a
// request nothing. Publish a new Table to change anything.
type Table struct {
	rules   []*Rule
	byRoute [][]*Rule          // by route ID: the rules whose CUJ and route selectors admit the route
	tcp     map[string][]*Rule // TCP rules by listener
	// groupers holds, per CUJ index, the grouping of the run that holds
	// the CUJ, if any, with its lease end.
	groupers []leasedGrouper
}

type leasedGrouper struct {
	g  *match.Grouper
	to int64 // lease end, Unix nanoseconds
}

func newTable(routes []*match.Route, rules []*Rule, groupers []leasedGrouper) *Table {
	slices.SortFunc(rules, func(a, b *Rule) int {
		if a.Spec.Priority != b.Spec.Priority {
			return a.Spec.Priority - b.Spec.Priority
		}
		return strings.Compare(a.Spec.Name, b.Spec.Name)
	})
	t := &Table{rules: rules, byRoute: make([][]*Rule, len(routes)), groupers: groupers, tcp: map[string][]*Rule{}} // route IDs are dense
	for _, r := range rules {
		if l := r.Spec.Match.TCP; l != "" {
			t.tcp[l] = append(t.tcp[l], r)
			continue
		}
		for _, rt := range routes {
			if (r.cuj < 0 || r.cuj == rt.CUJ) && (r.route < 0 || r.route == rt.ID) {
				t.byRoute[rt.ID] = append(t.byRoute[rt.ID], r)
			}
		}
	}
	return t
}

// TCP returns the TCP rules of a listener in evaluation order.
func (t *Table) TCP(listener string) []*Rule { return t.tcp[listener] }

// Active reports whether the rule applies at now: started, not stopped, and
// its lease held. Long-lived users (a TCP connection) check it as they go,
// so a rule that ends or lapses stops acting on connections already open.
func (r *Rule) Active(now time.Time) bool { return r.active(now) }

// Rules returns the rules in evaluation order.
func (t *Table) Rules() []*Rule { return t.rules }

// Group returns the client group of a request on a route, and the grouper
// of the run that holds the route's CUJ: none and nil when no grouping
// holds the CUJ with a lease.
func (t *Table) Group(req *http.Request, route *match.Route, clientIP string, now time.Time) (match.Group, *match.Grouper) {
	if route == nil || route.CUJ >= len(t.groupers) {
		return match.GroupNone, nil
	}
	lg := t.groupers[route.CUJ]
	if lg.g == nil || now.UnixNano() >= lg.to {
		return match.GroupNone, nil
	}
	return lg.g.Group(req, clientIP), lg.g
}

// Decision is what the faults do to one request.
type Decision struct {
	// Delay is the sum of the delays of every injected rule.
	Delay time.Duration
	// Terminal is the injected rule that answers instead of the upstream
	// (abort or status), if any.
	Terminal *Rule
	// Modifiers are the injected rules with replace or patch actions, in
	// evaluation order; later ones see the earlier ones' changes.
	Modifiers []*Rule
	// Injected lists every injected rule, for response headers and logs.
	Injected []*Rule
}

// Decide offers a request to the rules of its route in evaluation order. Each
// rule whose selector matches takes the next position in its own matched
// stream and injects at its exact rate. Injected delays add up; replace and
// patch actions apply in order; the first injected terminal action (abort or
// status) wins, and the rules after it do not see the request at all, so every
// rule's rate holds exactly over the requests it was offered.
func (t *Table) Decide(req *http.Request, route *match.Route, group match.Group, now time.Time) Decision {
	var d Decision
	for _, r := range t.byRoute[route.ID] {
		if !r.active(now) || !r.matches(req, route, group) {
			continue
		}
		inject, k := r.state.counter.Next()
		if !inject {
			continue
		}
		d.Injected = append(d.Injected, r)
		s := r.Spec
		if s.Delay != nil {
			d.Delay += s.Delay.Quantile(unit(s.Seed, k))
		}
		if s.Replace != nil || s.Patch != nil {
			d.Modifiers = append(d.Modifiers, r)
		}
		if s.Terminal() {
			d.Terminal = r
			break
		}
	}
	return d
}
