package fault

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
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
	// Lapsed, when set, is told once of every rule whose lease lapsed or
	// whose stop time passed, and of a grouping whose lease lapsed, by
	// Sweep (for the audit log), outside the registry's lock.
	Lapsed func(Lapse)
}

// Lapse is a rule or the grouping that stopped applying by itself.
type Lapse struct {
	At       time.Time       // when Sweep saw it
	State    string          // StateExpired or StateFinished
	Rule     *Status         // the rule, or nil for the grouping
	Grouping *GroupingStatus // the grouping, or nil for a rule
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

	mu        sync.Mutex // serialises writers
	rules     map[string]*entry
	groupings map[string]*groupingEntry // by run ("" for a grouping of no run)
}

type entry struct {
	rule     *Rule
	created  time.Time
	renewed  time.Time
	reported bool // the lapse was logged
}

type groupingEntry struct {
	spec     *spec.Grouping
	grouper  *match.Grouper
	cujs     []bool // by CUJ index: the CUJs it holds
	expires  time.Time
	reported bool // the lapse was logged
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
	r := &Registry{cfg: cfg, rules: map[string]*entry{}, groupings: map[string]*groupingEntry{}}
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
	groupers := make([]leasedGrouper, len(r.cfg.Routes.CUJs()))
	for _, g := range r.groupings {
		if !now.Before(g.expires) {
			continue
		}
		for i, held := range g.cujs {
			if held {
				groupers[i] = leasedGrouper{g: g.grouper, to: g.expires.UnixNano()}
			}
		}
	}
	r.current.Store(newTable(r.cfg.Routes.Routes(), rules, groupers))
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
		old.renewed = now
		if expires.After(now) {
			old.reported = false // a lease that holds again lapses anew
		}
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
	clear(r.groupings)
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

// SetGrouping installs (or replaces) a run's grouping with its lease. Runs
// may hold groupings at once on different CUJs; a grouping that would share
// a CUJ with another run's live grouping is a conflict: that run is still
// measuring the CUJ.
func (r *Registry) SetGrouping(g *spec.Grouping) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkGroupingTTL(g.TTL); err != nil {
		return GroupingStatus{}, err
	}
	now := r.cfg.Now()
	e, err := r.setGrouping(g, now.Add(g.TTL), now)
	if err != nil {
		return GroupingStatus{}, err
	}
	return r.groupingStatus(e, now), nil
}

// ApplyGrouping sets a run's grouping to the state another member of a
// fleet holds: the cluster package replicates groupings this way, while the
// admin API uses SetGrouping and RenewGrouping. expires is the lease's
// absolute end, the same on every member; the run's same grouping keeps
// its assignment and only takes the new end. A live grouping that would
// share a CUJ with another run's live grouping is refused, as SetGrouping
// refuses it: the caller decides which run keeps the CUJ. A grouping whose
// lease already ended conflicts with nothing: it lapses here at the same
// instant as everywhere.
func (r *Registry) ApplyGrouping(g *spec.Grouping, expires time.Time) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkGroupingTTL(g.TTL); err != nil {
		return GroupingStatus{}, err
	}
	now := r.cfg.Now()
	e, err := r.setGrouping(g, expires, now)
	if err != nil {
		return GroupingStatus{}, err
	}
	return r.groupingStatus(e, now), nil
}

func (r *Registry) checkGroupingTTL(ttl time.Duration) error {
	if ttl > r.cfg.MaxTTL {
		return slolab.Errorf(slolab.Invalid, "ttl: %s exceeds the proxy's maximum lease of %s", spec.FormatDuration(ttl), spec.FormatDuration(r.cfg.MaxTTL))
	}
	return nil
}

// setGrouping installs a run's grouping with its lease end, unless a CUJ it
// would hold is held by another run's live grouping. Callers hold r.mu.
func (r *Registry) setGrouping(g *spec.Grouping, expires, now time.Time) (*groupingEntry, error) {
	cujs, err := r.groupingCUJs(g)
	if err != nil {
		return nil, err
	}
	if now.Before(expires) {
		for run, o := range r.groupings {
			if run == g.Run || !now.Before(o.expires) {
				continue
			}
			for i := range cujs {
				if cujs[i] && o.cujs[i] {
					return nil, slolab.Errorf(slolab.Conflict, "CUJ %s is held by %s until %s; another experiment is running on it", r.cfg.Routes.CUJs()[i], runName(run), o.expires.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	e := r.groupings[g.Run]
	if e == nil || !e.spec.Equal(g) {
		e = &groupingEntry{spec: g, grouper: match.NewGrouper(g), cujs: cujs}
		r.groupings[g.Run] = e
	}
	e.expires = expires
	if now.Before(expires) {
		e.reported = false // a lease that holds again lapses anew
	}
	r.publish()
	return e, nil
}

// groupingCUJs marks the CUJs a grouping holds, by index.
func (r *Registry) groupingCUJs(g *spec.Grouping) ([]bool, error) {
	cujs := make([]bool, len(r.cfg.Routes.CUJs()))
	if len(g.CUJs) == 0 {
		for i := range cujs {
			cujs[i] = true
		}
	}
	for _, name := range g.CUJs {
		i := r.cfg.Routes.CUJIndex(name)
		if i < 0 {
			return nil, slolab.Errorf(slolab.Invalid, "cujs: service %s has no CUJ %q (it has %s)", r.cfg.Service.Name, name, strings.Join(r.cfg.Service.CUJNames(), ", "))
		}
		cujs[i] = true
	}
	return cujs, nil
}

func runName(run string) string {
	if run == "" {
		return "a grouping of no run"
	}
	return "run " + run
}

// grouping finds a run's grouping; "" finds the only one there is.
func (r *Registry) grouping(run string) (*groupingEntry, error) {
	if g, ok := r.groupings[run]; ok {
		return g, nil
	}
	if run == "" && len(r.groupings) == 1 {
		for _, g := range r.groupings {
			return g, nil
		}
	}
	if run == "" && len(r.groupings) > 1 {
		runs := slices.Sorted(maps.Keys(r.groupings))
		return nil, slolab.Errorf(slolab.Invalid, "%d runs hold groupings (%s): name one with ?run=", len(runs), strings.Join(runs, ", "))
	}
	if run == "" {
		return nil, slolab.Errorf(slolab.NotFound, "no grouping: every client is in group none")
	}
	return nil, slolab.Errorf(slolab.NotFound, "run %s holds no grouping", run)
}

// RenewGrouping extends a run's grouping's lease ("" for the only one).
func (r *Registry) RenewGrouping(run string, ttl time.Duration) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	g, err := r.grouping(run)
	if err != nil || !now.Before(g.expires) {
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
	return r.groupingStatus(g, now), nil
}

// Grouping returns a run's grouping ("" for the only one).
func (r *Registry) Grouping(run string) (GroupingStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.grouping(run)
	if err != nil {
		return GroupingStatus{}, err
	}
	return r.groupingStatus(g, r.cfg.Now()), nil
}

// Groupings returns every run's grouping, by run name.
func (r *Registry) Groupings() []GroupingStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var out []GroupingStatus
	for _, run := range slices.Sorted(maps.Keys(r.groupings)) {
		out = append(out, r.groupingStatus(r.groupings[run], now))
	}
	return out
}

func (r *Registry) groupingStatus(g *groupingEntry, now time.Time) GroupingStatus {
	return GroupingStatus{Grouping: g.spec, ExpiresAt: g.expires, Active: now.Before(g.expires)}
}

// ClearGrouping removes a run's grouping ("" for the only one); its
// clients are in group none again.
func (r *Registry) ClearGrouping(run string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := r.grouping(run)
	if err != nil {
		return false
	}
	delete(r.groupings, g.spec.Run)
	r.publish()
	return true
}

// Sweep drops lapsed rules from the compiled table (they already stopped
// applying on their own), logs each lapse once, and forgets rules that ended
// longer than the retention ago.
func (r *Registry) Sweep() {
	for _, l := range r.sweep() {
		if r.cfg.Lapsed != nil {
			r.cfg.Lapsed(l)
		}
	}
}

func (r *Registry) sweep() []Lapse {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	changed := false
	var lapses []Lapse
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
			status := r.status(e, now)
			lapses = append(lapses, Lapse{At: now, State: st, Rule: &status})
		}
		end := e.rule.Expires()
		if st == StateFinished && e.rule.Spec.Stop.Before(end) {
			end = e.rule.Spec.Stop
		}
		if now.Sub(end) > r.cfg.Retention {
			delete(r.rules, name)
		}
	}
	for run, g := range r.groupings {
		if now.Before(g.expires) {
			continue
		}
		if !g.reported {
			g.reported, changed = true, true
			r.cfg.Logger.Warn("grouping lease expired", "run", run, "by", g.spec.By)
			gs := r.groupingStatus(g, now)
			lapses = append(lapses, Lapse{At: now, State: StateExpired, Grouping: &gs})
		}
		if now.Sub(g.expires) > r.cfg.Retention {
			delete(r.groupings, run)
		}
	}
	if changed || slices.ContainsFunc(r.current.Load().rules, func(x *Rule) bool { s := stateAt(x, now); return s == StateExpired || s == StateFinished }) {
		r.publish()
	}
	sort.Slice(lapses, func(i, j int) bool { return lapseName(lapses[i]) < lapseName(lapses[j]) })
	return lapses
}

func lapseName(l Lapse) string {
	if l.Rule != nil {
		return l.Rule.Rule.Name
	}
	return l.Grouping.Grouping.Run
}

// Snapshot is the registry's rules, their leases and the grouping at one
// moment, for Restore.
type Snapshot struct {
	rules     map[string]entry
	expires   map[string]int64
	groupings map[string]groupingEntry
}

// Snapshot records the rules and the groupings, so that a change can be
// undone exactly (counters included) when it cannot be recorded.
func (r *Registry) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Snapshot{rules: make(map[string]entry, len(r.rules)), expires: make(map[string]int64, len(r.rules))}
	for name, e := range r.rules {
		s.rules[name] = *e
		s.expires[name] = e.rule.state.expires.Load()
	}
	s.groupings = make(map[string]groupingEntry, len(r.groupings))
	for run, g := range r.groupings {
		s.groupings[run] = *g
	}
	return s
}

// Restore puts back the rules, leases and groupings of a snapshot: rules
// added since are removed, rules removed or replaced since come back with
// their counters.
func (r *Registry) Restore(s Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.rules {
		if old, ok := s.rules[name]; !ok || old.rule != e.rule {
			e.rule.state.removed.Store(true)
		}
	}
	r.rules = make(map[string]*entry, len(s.rules))
	for name, e := range s.rules {
		e.rule.state.expires.Store(s.expires[name])
		e.rule.state.removed.Store(false)
		r.rules[name] = &e
	}
	r.groupings = make(map[string]*groupingEntry, len(s.groupings))
	for run, g := range s.groupings {
		r.groupings[run] = &g
	}
	r.publish()
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
