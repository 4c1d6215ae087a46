package fault

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/match"
	"slolab.dev/slolab/spec"
)

// Rule states, as reported by the admin API.
const (
	StatePending  = "pending"  // before its start time
	StateActive   = "active"   // applying
	StateExpired  = "expired"  // its lease lapsed without a renewal
	StateFinished = "finished" // past its stop time
	// StateMissing is a fleet member that does not hold a rule the others do.
	StateMissing = "missing"
)

// Config configures a Registry.
type Config struct {
	Service *spec.Service
	Routes  *match.Table
	// MaxTTL caps every lease (default 24h).
	MaxTTL time.Duration
	// Retention is how long an expired or finished rule stays listed before it
	// is forgotten (default 1h).
	Retention time.Duration
	// TCP names the proxy's TCP listeners (`slolab proxy --tcp NAME=...`);
	// a TCP fault rule must select one of them.
	TCP []string
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.MaxTTL == 0 {
		c.MaxTTL = 24 * time.Hour
	}
	if c.Retention == 0 {
		c.Retention = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Registry is the mutable set of fault rules. Every change compiles a new
// Table and publishes it atomically; the proxy reads the current Table with
// one atomic load and no lock.
type Registry struct {
	cfg     Config
	current atomic.Pointer[Table]

	mu       sync.Mutex // serialises writers
	rules    map[string]*entry
	grouping *groupingEntry
}

type entry struct {
	rule     *Rule
	created  time.Time
	renewed  time.Time
	reported bool // the lapse was logged
}

type groupingEntry struct {
	spec    *spec.Grouping
	grouper *match.Grouper
	expires time.Time
}

// Status is a rule as the admin API reports it.
type Status struct {
	Rule      *spec.FaultRule `json:"rule"`
	State     string          `json:"state"`
	Created   time.Time       `json:"created"`
	Renewed   time.Time       `json:"renewed"`
	ExpiresAt time.Time       `json:"expiresAt"`
	Matched   uint64          `json:"matched"`
	Injected  uint64          `json:"injected"`
	// Members is what each member of a fleet counted, when the proxy is one
	// of a cluster; Matched and Injected are then the fleet's totals.
	Members []MemberCounts `json:"members,omitempty"`
}

// MemberCounts is one fleet member's view of a rule.
type MemberCounts struct {
	Member string `json:"member"`
	// State is the rule's state on the member, or StateMissing when the
	// member does not hold this rule (or holds another version of it).
	State    string `json:"state"`
	Matched  uint64 `json:"matched"`
	Injected uint64 `json:"injected"`
	// Version is the version of the rule the member holds.
	Version string `json:"version,omitempty"`
	// Reported is when the member last reported its counts (zero for the
	// member answering, whose counts are live).
	Reported time.Time `json:"reported,omitzero"`
	// Gone is a member that left or failed: its counts are its last report.
	Gone bool `json:"gone,omitempty"`
}

// GroupingStatus is the active grouping as the admin API reports it.
type GroupingStatus struct {
	Grouping  *spec.Grouping `json:"grouping"`
	ExpiresAt time.Time      `json:"expiresAt"`
	Active    bool           `json:"active"`
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg Config) (*Registry, error) {
	cfg.defaults()
	if cfg.Service == nil || cfg.Routes == nil {
		return nil, fmt.Errorf("fault.NewRegistry: a service and its route table are required")
	}
	r := &Registry{cfg: cfg, rules: map[string]*entry{}}
	r.publish()
	return r, nil
}

// Table returns the current compiled table.
func (r *Registry) Table() *Table { return r.current.Load() }

// publish compiles the current rules into a new Table. Callers hold r.mu
// (or own r exclusively).
func (r *Registry) publish() {
	now := r.cfg.Now()
	rules := make([]*Rule, 0, len(r.rules))
	for _, e := range r.rules {
		if stateAt(e.rule, now) == StateActive || stateAt(e.rule, now) == StatePending {
			rules = append(rules, e.rule)
		}
	}
	var grouper *match.Grouper
	var groupTo time.Time
	if g := r.grouping; g != nil && now.Before(g.expires) {
		grouper, groupTo = g.grouper, g.expires
	}
	r.current.Store(newTable(len(r.cfg.Routes.CUJs()), rules, grouper, groupTo))
}

func stateAt(rule *Rule, now time.Time) string {
	s := rule.Spec
	switch {
	case !s.Stop.IsZero() && !now.Before(s.Stop):
		return StateFinished
	case now.UnixNano() >= rule.state.expires.Load():
		return StateExpired
	case !s.Start.IsZero() && now.Before(s.Start):
		return StatePending
	}
	return StateActive
}

func (r *Registry) status(e *entry, now time.Time) Status {
	return Status{
		Rule: e.rule.Spec, State: stateAt(e.rule, now), Created: e.created, Renewed: e.renewed,
		ExpiresAt: e.rule.Expires(), Matched: e.rule.state.counter.Matched(), Injected: e.rule.state.counter.Injected(),
	}
}

// compile checks a rule against the service and builds its runtime form.
func (r *Registry) compile(s *spec.FaultRule, now time.Time) (*Rule, error) {
	rule := &Rule{Spec: s, cuj: -1, route: -1, state: &state{counter: NewCounter(s.Rate, s.Seed)}}
	var problems []string
	if s.Match.CUJ != "" {
		rule.cuj = r.cfg.Routes.CUJIndex(s.Match.CUJ)
		if rule.cuj < 0 {
			problems = append(problems, fmt.Sprintf("match.cuj: service %s has no CUJ %q (it has %s)",
				r.cfg.Service.Name, s.Match.CUJ, strings.Join(r.cfg.Service.CUJNames(), ", ")))
		}
	}
	if s.Match.Route != "" && rule.cuj >= 0 {
		rt := r.cfg.Routes.Route(s.Match.CUJ, s.Match.Route)
		if rt == nil {
			var have []string
			for _, c := range r.cfg.Service.CUJ(s.Match.CUJ).Routes {
				have = append(have, fmt.Sprintf("%q", c.Pattern))
			}
			problems = append(problems, fmt.Sprintf("match.route: CUJ %s has no route %q (it has %s)", s.Match.CUJ, s.Match.Route, strings.Join(have, ", ")))
		} else {
			rule.route = rt.ID
		}
	}
	if s.Match.Group != "" {
		rule.group, _ = match.ParseGroup(s.Match.Group)
	}
	if s.Match.TCP != "" && !slices.Contains(r.cfg.TCP, s.Match.TCP) {
		have := "none: start one with slolab proxy --tcp NAME=LISTEN,UPSTREAM"
		if len(r.cfg.TCP) > 0 {
			have = strings.Join(r.cfg.TCP, ", ")
		}
		problems = append(problems, fmt.Sprintf("match.tcp: the proxy has no TCP listener %q (it has %s)", s.Match.TCP, have))
	}
	if s.TTL > r.cfg.MaxTTL {
		problems = append(problems, fmt.Sprintf("ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(s.TTL), spec.FormatDuration(r.cfg.MaxTTL)))
	}
	if !s.Stop.IsZero() && !s.Stop.After(now) {
		problems = append(problems, fmt.Sprintf("stop: %s is already past", s.Stop.Format(time.RFC3339)))
	}
	if len(problems) > 0 {
		return nil, slolab.Errorf(slolab.Invalid, "fault %s: %s", s.Name, strings.Join(problems, "; "))
	}
	rule.state.expires.Store(now.Add(s.TTL).UnixNano())
	return rule, nil
}

// Put adds a rule or replaces the one with the same name. Replacing a rule
// with an identical one keeps its counters and renews its lease; a changed
// rule starts counting afresh.
func (r *Registry) Put(s *spec.FaultRule) (st Status, created bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	old, exists := r.rules[s.Name]
	if exists && stateAt(old.rule, now) == StateActive && sameRule(old.rule.Spec, s) {
		old.rule.state.expires.Store(now.Add(s.TTL).UnixNano())
		old.renewed = now
		return r.status(old, now), false, nil
	}
	rule, err := r.compile(s, now)
	if err != nil {
		return Status{}, false, err
	}
	e := &entry{rule: rule, created: now, renewed: now}
	if exists {
		old.rule.state.removed.Store(true)
	}
	r.rules[s.Name] = e
	r.publish()
	r.cfg.Logger.Info("fault rule set", "fault", s.Name, "match", s.Match.String(), "actions", s.Actions(), "rate", s.Rate.String(), "ttl", spec.FormatDuration(s.TTL))
	return r.status(e, now), !exists, nil
}

// Apply sets a rule to the state another member of a fleet holds: the
// cluster package replicates changes this way, while the admin API uses Put
// and Renew. created identifies the rule's incarnation: the same rule with
// the same creation time keeps its counters and takes the new lease end,
// whatever its state here; anything else replaces it and counts afresh.
// expires is the lease's absolute end, the same on every member.
func (r *Registry) Apply(s *spec.FaultRule, created, expires time.Time) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	old, exists := r.rules[s.Name]
	if exists && old.created.Equal(created) && sameRule(old.rule.Spec, s) {
		old.rule.state.expires.Store(expires.UnixNano())
		old.renewed, old.reported = now, false
		r.publish() // a rule that had lapsed here may hold a lease again
		return r.status(old, now), nil
	}
	rule, err := r.compile(s, now)
	if err != nil {
		return Status{}, err
	}
	rule.state.expires.Store(expires.UnixNano())
	e := &entry{rule: rule, created: created, renewed: now}
	if exists {
		old.rule.state.removed.Store(true)
	}
	r.rules[s.Name] = e
	r.publish()
	r.cfg.Logger.Info("fault rule applied", "fault", s.Name, "match", s.Match.String(), "actions", s.Actions(), "rate", s.Rate.String(), "expiresAt", expires.UTC().Format(time.RFC3339))
	return r.status(e, now), nil
}

func sameRule(a, b *spec.FaultRule) bool {
	x, y := *a, *b
	x.Pos, y.Pos = spec.Pos{}, spec.Pos{}
	return reflect.DeepEqual(x, y)
}

// Get returns a rule's status.
func (r *Registry) Get(name string) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.rules[name]
	if !ok {
		return Status{}, slolab.Errorf(slolab.NotFound, "no fault rule %q", name)
	}
	return r.status(e, r.cfg.Now()), nil
}

// List returns every rule, active ones first, then by name.
func (r *Registry) List() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	out := make([]Status, 0, len(r.rules))
	for _, e := range r.rules {
		out = append(out, r.status(e, now))
	}
	order := map[string]int{StateActive: 0, StatePending: 1, StateExpired: 2, StateFinished: 3}
	sort.Slice(out, func(i, j int) bool {
		if a, b := order[out[i].State], order[out[j].State]; a != b {
			return a < b
		}
		return out[i].Rule.Name < out[j].Rule.Name
	})
	return out
}

// Delete removes a rule and returns its final status.
func (r *Registry) Delete(name string) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.rules[name]
	if !ok {
		return Status{}, slolab.Errorf(slolab.NotFound, "no fault rule %q", name)
	}
	delete(r.rules, name)
	e.rule.state.removed.Store(true)
	r.publish()
	r.cfg.Logger.Info("fault rule removed", "fault", name, "matched", e.rule.state.counter.Matched(), "injected", e.rule.state.counter.Injected())
	return r.status(e, r.cfg.Now()), nil
}

// DeleteAll removes every rule and the grouping, for a clean exit.
func (r *Registry) DeleteAll() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var out []Status
	for name, e := range r.rules {
		out = append(out, r.status(e, now))
		delete(r.rules, name)
		e.rule.state.removed.Store(true)
	}
	r.grouping = nil
	r.publish()
	return out
}

// Renew extends a rule's lease by ttl from now (its own TTL when ttl is 0).
// A lease that has already lapsed cannot be renewed: the rule stopped
// applying, and whoever wants it back must put it again.
func (r *Registry) Renew(name string, ttl time.Duration) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	e, ok := r.rules[name]
	if !ok {
		return Status{}, slolab.Errorf(slolab.NotFound, "no fault rule %q", name)
	}
	switch st := stateAt(e.rule, now); st {
	case StateExpired, StateFinished:
		return r.status(e, now), slolab.Errorf(slolab.Conflict, "fault %s is %s (its lease ended at %s); put it again to restart it",
			name, st, e.rule.Expires().UTC().Format(time.RFC3339))
	}
	if ttl == 0 {
		ttl = e.rule.Spec.TTL
	}
	if ttl > r.cfg.MaxTTL {
		return Status{}, slolab.Errorf(slolab.Invalid, "ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(ttl), spec.FormatDuration(r.cfg.MaxTTL))
	}
	e.rule.state.expires.Store(now.Add(ttl).UnixNano())
	e.renewed = now
	return r.status(e, now), nil
}

// SetGrouping installs (or replaces) the experiment/control grouping with its lease.
func (r *Registry) SetGrouping(g *spec.Grouping) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.TTL > r.cfg.MaxTTL {
		return GroupingStatus{}, slolab.Errorf(slolab.Invalid, "ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(g.TTL), spec.FormatDuration(r.cfg.MaxTTL))
	}
	now := r.cfg.Now()
	r.grouping = &groupingEntry{spec: g, grouper: match.NewGrouper(g), expires: now.Add(g.TTL)}
	r.publish()
	return r.groupingStatus(now), nil
}

// ApplyGrouping sets the grouping another member of a fleet holds, with the
// absolute end of its lease; the same grouping only takes the new lease end.
func (r *Registry) ApplyGrouping(g *spec.Grouping, expires time.Time) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g.TTL > r.cfg.MaxTTL {
		return GroupingStatus{}, slolab.Errorf(slolab.Invalid, "ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(g.TTL), spec.FormatDuration(r.cfg.MaxTTL))
	}
	if cur := r.grouping; cur != nil && sameGrouping(cur.spec, g) {
		cur.expires = expires
	} else {
		r.grouping = &groupingEntry{spec: g, grouper: match.NewGrouper(g), expires: expires}
	}
	r.publish()
	return r.groupingStatus(r.cfg.Now()), nil
}

func sameGrouping(a, b *spec.Grouping) bool {
	x, y := *a, *b
	x.Pos, y.Pos = spec.Pos{}, spec.Pos{}
	return x == y
}

// RenewGrouping extends the grouping's lease.
func (r *Registry) RenewGrouping(ttl time.Duration) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	g := r.grouping
	if g == nil || !now.Before(g.expires) {
		return GroupingStatus{}, slolab.Errorf(slolab.Conflict, "no active grouping to renew; put it again")
	}
	if ttl == 0 {
		ttl = g.spec.TTL
	}
	if ttl > r.cfg.MaxTTL {
		return GroupingStatus{}, slolab.Errorf(slolab.Invalid, "ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(ttl), spec.FormatDuration(r.cfg.MaxTTL))
	}
	g.expires = now.Add(ttl)
	r.publish()
	return r.groupingStatus(now), nil
}

// Grouping returns the grouping, if any.
func (r *Registry) Grouping() (GroupingStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.grouping == nil {
		return GroupingStatus{}, false
	}
	return r.groupingStatus(r.cfg.Now()), true
}

func (r *Registry) groupingStatus(now time.Time) GroupingStatus {
	g := r.grouping
	return GroupingStatus{Grouping: g.spec, ExpiresAt: g.expires, Active: now.Before(g.expires)}
}

// ClearGrouping removes the grouping; every client is in group none again.
func (r *Registry) ClearGrouping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	had := r.grouping != nil
	r.grouping = nil
	r.publish()
	return had
}

// Sweep drops lapsed rules from the compiled table (they already stopped
// applying on their own), logs each lapse once, and forgets rules that ended
// longer than the retention ago.
func (r *Registry) Sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	changed := false
	for name, e := range r.rules {
		st := stateAt(e.rule, now)
		if st != StateExpired && st != StateFinished {
			continue
		}
		if !e.reported {
			e.reported = true
			changed = true
			r.cfg.Logger.Warn("fault rule "+st, "fault", name, "expiresAt", e.rule.Expires().UTC().Format(time.RFC3339),
				"matched", e.rule.state.counter.Matched(), "injected", e.rule.state.counter.Injected())
		}
		end := e.rule.Expires()
		if st == StateFinished && e.rule.Spec.Stop.Before(end) {
			end = e.rule.Spec.Stop
		}
		if now.Sub(end) > r.cfg.Retention {
			delete(r.rules, name)
		}
	}
	if g := r.grouping; g != nil && !now.Before(g.expires) && r.current.Load().grouper != nil {
		changed = true
		r.cfg.Logger.Warn("grouping lease expired", "by", g.spec.By)
	}
	if changed || slices.ContainsFunc(r.current.Load().rules, func(x *Rule) bool { s := stateAt(x, now); return s == StateExpired || s == StateFinished }) {
		r.publish()
	}
}

// Run sweeps every second until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Sweep()
		}
	}
}
