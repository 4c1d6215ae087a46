// Package experiment runs chaos experiments and GameDays against a slolab
// proxy: it checks the steady state, injects the method's faults through the
// admin API with leases it renews, evaluates hypotheses and guardrails every
// interval, aborts at once when a guardrail trips, verifies recovery,
// compares the experiment group with the control group, and reports.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"slolab.dev/slolab"
	"slolab.dev/slolab/fault"
	"slolab.dev/slolab/spec"
)

// Config configures one run.
type Config struct {
	Compiled *Compiled
	Proxy    Injector
	View     View
	// Now is the clock for reports and allowed windows (default time.Now);
	// waits use package time, so tests run the runner in a synctest bubble.
	Now func() time.Time
	// OnEvent sees every event as it happens, evaluations included (progress
	// output, GameDay timelines).
	OnEvent func(Event)
	// EndMethod ends the method early when it receives (a GameDay
	// mitigation): faults are removed and recovery is measured as usual.
	EndMethod <-chan string
	Logger    *slog.Logger
}

// Verdict is how a run ended.
type Verdict string

// The verdicts. Only Held exits 0.
const (
	Held        Verdict = "held"        // the hypothesis and every expectation held
	Failed      Verdict = "failed"      // the steady state broke or an expectation failed
	Aborted     Verdict = "aborted"     // a guardrail stopped the run
	Refused     Verdict = "refused"     // the run did not start: outside its window, unsteady, or the proxy busy
	Interrupted Verdict = "interrupted" // stopped from outside (Ctrl-C)
)

// Event kinds of a run's timeline.
const (
	EventStart       = "start"
	EventRefused     = "refused"
	EventSteady      = "steady-state"
	EventGrouping    = "grouping"
	EventStep        = "step"
	EventFaultStart  = "fault-start"
	EventFaultRate   = "fault-rate"
	EventFaultStop   = "fault-stop"
	EventEvaluation  = "evaluation" // every round; not kept in the report's timeline
	EventHypothesis  = "hypothesis-failed"
	EventGuardrail   = "guardrail"
	EventRenewFailed = "renew-failed"
	EventMethodEnd   = "method-end"
	EventRecovered   = "recovered"
	EventVerdict     = "verdict"
)

// Event is one entry of a run's timeline.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	// Fault names the rule of fault events.
	Fault string `json:"fault,omitempty"`
}

type run struct {
	cfg     Config
	x       *spec.Experiment
	c       *Compiled
	ev      *evaluator
	rep     *Report
	active  map[string]*activeRule // rules on the proxy now, by name
	order   []string               // their names in the order put
	grouped bool                   // the run's grouping is on the proxy
	// runID names this run on the proxy: the requests of the CUJs it holds
	// are counted under it, apart from every other run's.
	runID string

	evalTick, renewTick *time.Ticker
	deadline            *time.Timer
}

type activeRule struct {
	rule  *spec.FaultRule
	stage *FaultStage
}

// stop says why a wait ended early.
type stop struct {
	verdict Verdict
	reason  string
	outcome *Outcome
}

// Run runs the experiment and returns its report. The error is for misuse
// (a nil field); everything that happens to the experiment, including an
// unreachable proxy, is in the report's verdict.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Compiled == nil || cfg.Proxy == nil || cfg.View == nil {
		return nil, errors.New("experiment.Run: the compiled experiment, the proxy and the view are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	x := cfg.Compiled.Experiment
	r := &run{cfg: cfg, x: x, c: cfg.Compiled, active: map[string]*activeRule{}, runID: RunID(x.Name, cfg.Now())}
	r.ev = &evaluator{view: cfg.View, svc: cfg.Compiled.Service, exp: x, frozen: map[[2]string]SLI{}, recovery: map[string]recoveryMark{}}
	cfg.Compiled.fns.ev = r.ev
	defer func() { cfg.Compiled.fns.ev = nil }()
	r.rep = newReport(cfg.Compiled, cfg.Now())
	r.event(EventStart, "", fmt.Sprintf("experiment %s on service %s", x.Name, cfg.Compiled.Service.Name))
	r.execute(ctx)
	r.rep.Ended = cfg.Now()
	r.event(EventVerdict, "", fmt.Sprintf("%s: %s", r.rep.Verdict, r.rep.Reason))
	return r.rep, nil
}

func (r *run) now() time.Time { return r.cfg.Now() }

// RunID names a run of an experiment on the proxy: the experiment's name
// and its start in base-36 nanoseconds, a valid slolab name.
func RunID(experiment string, start time.Time) string {
	suffix := "-" + strconv.FormatInt(start.UnixNano(), 36)
	if len(experiment)+len(suffix) > 63 {
		experiment = strings.TrimRight(experiment[:63-len(suffix)], "-_")
	}
	return experiment + suffix
}

// heldCUJs are the CUJs the run holds on the proxy, counting their
// requests under it so that no other run counts them: those its faults
// touch, those its expectations wait to recover, and those its expressions
// read by group.
func (c *Compiled) heldCUJs() []string {
	set := c.touchedCUJs()
	for cuj := range c.Recovery {
		set[cuj] = true
	}
	for cuj := range c.grouped {
		set[cuj] = true
	}
	var out []string
	for _, name := range c.Service.CUJNames() {
		if set[name] {
			out = append(out, name)
		}
	}
	return out
}

func (r *run) event(kind, faultName, text string) {
	e := Event{At: r.now(), Kind: kind, Text: text, Fault: faultName}
	if kind != EventEvaluation {
		r.rep.Timeline = append(r.rep.Timeline, e)
	}
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(e)
	}
}

func (r *run) finish(s *stop) {
	r.rep.Verdict, r.rep.Reason = s.verdict, s.reason
	if s.outcome != nil {
		o := *s.outcome
		r.rep.Failed = &o
	}
}

func (r *run) execute(ctx context.Context) {
	if s := r.preflight(ctx); s != nil {
		r.event(EventRefused, "", s.reason)
		r.finish(s)
		return
	}
	defer r.cleanup(ctx)
	s := r.method(ctx)
	if s != nil && s.verdict == Refused { // another run holds a CUJ: nothing was injected
		r.event(EventRefused, "", s.reason)
		r.finish(s)
		return
	}
	r.endMethod(ctx)
	switch {
	case s == nil || s.verdict == "": // done, or ended early on request (a GameDay mitigation)
	case s.verdict == Failed:
		r.finish(s) // a finding: still measure recovery and compare the groups
	default: // aborted or interrupted: report what was measured until then
		r.compare()
		r.finish(s)
		return
	}
	if s := r.recover(ctx); s != nil && r.rep.Verdict == "" {
		r.finish(s)
	}
	r.compare()
	if ctx.Err() != nil {
		return
	}
	r.expect(ctx)
	if r.rep.Verdict == "" {
		r.finish(&stop{verdict: Held, reason: "the steady state held throughout and after the method, and every expectation held"})
	}
}

// preflight refuses to start outside the allowed windows, when the method
// would outlast them, when another experiment holds the proxy, or when the
// system is not steady.
func (r *run) preflight(ctx context.Context) *stop {
	now := r.now()
	g := &r.x.Guardrails
	if ok, why := g.Allowed(now); !ok {
		return &stop{verdict: Refused, reason: "not allowed now: " + why}
	}
	if at, closes := g.ClosesWithin(now, r.x.MethodDuration()); closes {
		_, why := g.Allowed(at)
		return &stop{verdict: Refused, reason: fmt.Sprintf("the method takes %s and would still run at %s: %s", spec.FormatDuration(r.x.MethodDuration()), at.In(g.Location).Format("15:04"), why)}
	}
	faults, err := r.cfg.Proxy.ListFaults(ctx)
	if err != nil {
		return &stop{verdict: Refused, reason: "cannot reach the proxy: " + err.Error()}
	}
	for _, f := range faults {
		if f.State != fault.StateActive && f.State != fault.StatePending {
			continue
		}
		for _, mine := range r.x.Faults() {
			if mine.Name == f.Rule.Name {
				return &stop{verdict: Refused, reason: fmt.Sprintf("fault %s is already active on the proxy (another experiment, or a manual rule?); remove it or rename the experiment's fault", f.Rule.Name)}
			}
		}
	}
	r.ev.round(ctx, now)
	for _, h := range r.c.SteadyState {
		r.rep.SteadyBefore = append(r.rep.SteadyBefore, r.ev.eval(h))
	}
	if failed := firstFailure(r.rep.SteadyBefore); failed != nil {
		return &stop{verdict: Refused, reason: "the system is not steady: " + describeFailure(*failed), outcome: failed}
	}
	r.event(EventSteady, "", fmt.Sprintf("steady: %d %s held", len(r.c.SteadyState), plural(len(r.c.SteadyState), "expression", "expressions")))
	return nil
}

// describeFailure says why an outcome failed: the expression and the values it read.
func describeFailure(o Outcome) string {
	s := o.Expr
	if o.Error != "" {
		return s + " could not be evaluated: " + o.Error
	}
	if v := o.Values(); v != "" {
		s += " is false (" + v + ")"
	} else {
		s += " is false"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// method installs the grouping and runs every step; it returns why it
// stopped early, or nil.
func (r *run) method(ctx context.Context) *stop {
	start := r.now()
	r.evalTick = time.NewTicker(r.x.Interval)
	r.renewTick = time.NewTicker(max(r.x.Lease/3, 100*time.Millisecond))
	r.deadline = time.NewTimer(r.x.Guardrails.MaxDuration - r.now().Sub(r.rep.Started))
	if held := r.c.heldCUJs(); len(held) > 0 {
		gg := spec.Grouping{Run: r.runID, CUJs: held, TTL: r.x.Lease}
		if g := r.x.BlastRadius; g != nil {
			gg.By, gg.Experiment, gg.Salt = g.By, g.Experiment, g.Salt
		}
		if _, err := r.cfg.Proxy.SetGrouping(ctx, &gg); err != nil {
			if slolab.KindOf(err) == slolab.Conflict {
				return &stop{verdict: Refused, reason: "the proxy refused the run: " + err.Error()}
			}
			return &stop{verdict: Aborted, reason: "installing the grouping failed: " + err.Error()}
		}
		r.grouped = true
		r.ev.run, r.ev.held = r.runID, map[string]bool{}
		for _, cuj := range held {
			r.ev.held[cuj] = true
		}
		if g := r.x.BlastRadius; g != nil {
			r.ev.groups = true
			r.event(EventGrouping, "", fmt.Sprintf("grouping by %s: %s of clients in the experiment group (lease %s); run %s counts %s apart from other runs", g.By, g.Experiment, spec.FormatDuration(r.x.Lease), r.runID, strings.Join(held, ", ")))
		} else {
			r.event(EventGrouping, "", fmt.Sprintf("run %s counts %s apart from other runs (lease %s)", r.runID, strings.Join(held, ", "), spec.FormatDuration(r.x.Lease)))
		}
	}
	r.rep.MethodStarted = start
	r.ev.runStart = start
	for _, step := range r.x.Method {
		r.event(EventStep, "", fmt.Sprintf("step %s: %s", step.Name, describeStep(step)))
		stages := 1
		if step.Ramp != nil {
			stages = step.Ramp.Stages
		}
		rates := make([][]spec.Ratio, len(step.Faults))
		for i, f := range step.Faults {
			rates[i] = []spec.Ratio{f.Rate}
			if step.Ramp != nil {
				rates[i] = step.Ramp.Rates(f.Rate)
			}
		}
		for stage := range stages {
			for i, f := range step.Faults {
				if s := r.put(ctx, step, stage, f, rates[i][stage]); s != nil {
					return s
				}
			}
			if s := r.hold(ctx, step.StageDuration()); s != nil {
				return s
			}
		}
		for _, f := range step.Faults {
			r.remove(ctx, f.Name)
		}
	}
	return nil
}

func describeStep(s *spec.Step) string {
	if len(s.Faults) == 0 {
		return "observe for " + spec.FormatDuration(s.Duration)
	}
	names := make([]string, len(s.Faults))
	for i, f := range s.Faults {
		names[i] = f.Name
	}
	text := fmt.Sprintf("%s for %s", strings.Join(names, ", "), spec.FormatDuration(s.Duration))
	if s.Ramp != nil {
		text += fmt.Sprintf(", ramping from %s in %d stages of %s", s.Ramp.From, s.Ramp.Stages, spec.FormatDuration(s.StageDuration()))
	}
	return text
}

// put installs a rule at a rate, closing the previous stage's counts first.
func (r *run) put(ctx context.Context, step *spec.Step, stage int, f *spec.FaultRule, rate spec.Ratio) *stop {
	rule := *f
	rule.Rate, rule.TTL = rate, r.x.Lease
	if r.ev.groups && !rule.IsTCP() && rule.Match.Group == "" {
		rule.Match.Group = spec.GroupExperiment
	}
	prev, had := r.active[f.Name]
	if had {
		r.closeStage(ctx, prev, false)
	}
	if _, err := r.cfg.Proxy.PutFault(ctx, &rule); err != nil {
		return &stop{verdict: Aborted, reason: fmt.Sprintf("putting fault %s failed: %v", f.Name, err)}
	}
	fs := &FaultStage{Step: step.Name, Stage: stage + 1, Fault: f.Name, Match: rule.Match.String(), Actions: rule.Actions(), Intended: rate, From: r.now()}
	r.rep.Faults = append(r.rep.Faults, fs)
	r.active[f.Name] = &activeRule{rule: &rule, stage: fs}
	if !slices.Contains(r.order, f.Name) {
		r.order = append(r.order, f.Name)
	}
	if had {
		r.event(EventFaultRate, f.Name, fmt.Sprintf("fault %s: rate %s (stage %d)", f.Name, rate, stage+1))
	} else {
		r.event(EventFaultStart, f.Name, fmt.Sprintf("fault %s: %s on %s at %s", f.Name, rule.Actions(), rule.Match, rate))
	}
	return nil
}

// closeStage reads a rule's counts for the stage it ends: from the final
// status when deleting, else from a read just before it changes.
func (r *run) closeStage(ctx context.Context, a *activeRule, deleting bool) {
	var st fault.Status
	var err error
	if deleting {
		st, err = r.cfg.Proxy.DeleteFault(ctx, a.rule.Name)
	} else {
		st, err = r.cfg.Proxy.GetFault(ctx, a.rule.Name)
	}
	a.stage.To = r.now()
	if err == nil {
		a.stage.Matched, a.stage.Injected = st.Matched, st.Injected
		a.stage.State = st.State
	} else {
		a.stage.State = "unknown: " + err.Error()
	}
}

// remove deletes a rule and records its final counts.
func (r *run) remove(ctx context.Context, name string) {
	a, ok := r.active[name]
	if !ok {
		return
	}
	r.closeStage(ctx, a, true)
	delete(r.active, name)
	r.event(EventFaultStop, name, fmt.Sprintf("fault %s removed: %d of %d matched requests injected", name, a.stage.Injected, a.stage.Matched))
}

// hold waits d, evaluating and renewing; it returns why it stopped early.
func (r *run) hold(ctx context.Context, d time.Duration) *stop {
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return &stop{verdict: Interrupted, reason: "interrupted during the method; every fault and the grouping were removed"}
		case <-end.C:
			return nil
		case <-r.deadline.C:
			return &stop{verdict: Aborted, reason: fmt.Sprintf("guardrail: the maximum duration (%s) was reached", spec.FormatDuration(r.x.Guardrails.MaxDuration))}
		case why := <-r.cfg.EndMethod:
			r.event(EventMethodEnd, "", "the method was ended early: "+why)
			return &stop{reason: why}
		case <-r.renewTick.C:
			if s := r.renew(ctx); s != nil {
				return s
			}
		case <-r.evalTick.C:
			if s := r.evaluate(ctx); s != nil {
				return s
			}
		}
	}
}

// evaluate checks the allowed window, the guardrails, then the hypothesis.
func (r *run) evaluate(ctx context.Context) *stop {
	now := r.now()
	r.rep.Evaluations++
	if ok, why := r.x.Guardrails.Allowed(now); !ok {
		return r.trip(&stop{verdict: Aborted, reason: "guardrail: the allowed window closed: " + why})
	}
	r.ev.round(ctx, now)
	for _, h := range r.c.AbortIf {
		o := r.ev.eval(h)
		r.rep.noteGuardrail(o)
		switch {
		case o.Error != "":
			return r.trip(&stop{verdict: Aborted, reason: "guardrail could not be evaluated, aborting to be safe: " + describeFailure(o), outcome: &o})
		case o.Holds:
			return r.trip(&stop{verdict: Aborted, reason: "guardrail tripped: " + o.Expr + " (" + o.Values() + ")", outcome: &o})
		}
	}
	for _, h := range r.c.SteadyState {
		o := r.ev.eval(h)
		if o.failed() {
			r.event(EventHypothesis, "", "the steady state broke: "+describeFailure(o))
			return &stop{verdict: Failed, reason: "the steady state broke during the method: " + describeFailure(o), outcome: &o}
		}
	}
	r.event(EventEvaluation, "", fmt.Sprintf("evaluation %d: %d %s and %d %s hold", r.rep.Evaluations,
		len(r.c.SteadyState), plural(len(r.c.SteadyState), "hypothesis", "hypotheses"), len(r.c.AbortIf), plural(len(r.c.AbortIf), "guardrail stays quiet", "guardrails stay quiet")))
	return nil
}

func (r *run) trip(s *stop) *stop {
	r.event(EventGuardrail, "", s.reason)
	return s
}

// renew extends every active lease; a lease the proxy no longer holds ends the run.
func (r *run) renew(ctx context.Context) *stop {
	for _, name := range r.order {
		if _, ok := r.active[name]; !ok {
			continue
		}
		if _, err := r.cfg.Proxy.RenewFault(ctx, name, r.x.Lease); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if k := slolab.KindOf(err); k == slolab.Conflict || k == slolab.NotFound {
				return r.trip(&stop{verdict: Aborted, reason: fmt.Sprintf("lost the lease of fault %s: %v", name, err)})
			}
			r.event(EventRenewFailed, name, fmt.Sprintf("renewing fault %s failed (will retry): %v", name, err))
		}
	}
	if r.grouped {
		if _, err := r.cfg.Proxy.RenewGrouping(ctx, r.runID, r.x.Lease); err != nil && ctx.Err() == nil {
			if k := slolab.KindOf(err); k == slolab.Conflict || k == slolab.NotFound {
				return r.trip(&stop{verdict: Aborted, reason: "lost the lease of the grouping: " + err.Error()})
			}
			r.event(EventRenewFailed, "", "renewing the grouping failed (will retry): "+err.Error())
		}
	}
	return nil
}

// endMethod removes every fault still active and freezes the run's windows.
func (r *run) endMethod(ctx context.Context) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	for _, name := range slices.Clone(r.order) {
		r.remove(cctx, name)
	}
	end := r.now()
	r.rep.MethodEnded = end
	r.ev.runEnd = end
	r.event(EventMethodEnd, "", fmt.Sprintf("method ended after %s; every fault removed", spec.FormatDuration(end.Sub(r.rep.MethodStarted).Round(time.Second))))
	for _, cuj := range r.c.Service.CUJNames() {
		// The run's groups exist on the CUJs it holds; elsewhere the
		// experiment and control labels are another run's.
		groups := []string{GroupAll}
		if r.ev.groups && r.ev.held[cuj] {
			groups = append(groups, GroupExperiment, GroupControl)
		}
		for _, g := range groups {
			s, err := r.cfg.View.SLI(cctx, r.ev.query(Query{CUJ: cuj, Group: g, Since: r.rep.MethodStarted}))
			if err == nil {
				r.ev.frozen[[2]string{cuj, g}] = s
			}
		}
	}
}

// cleanupContext outlives the run's context: removing faults must happen
// even after Ctrl-C.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// cleanup removes whatever the run still holds on the proxy.
func (r *run) cleanup(ctx context.Context) {
	if r.evalTick != nil {
		r.evalTick.Stop()
		r.renewTick.Stop()
		r.deadline.Stop()
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	for _, name := range slices.Clone(r.order) {
		r.remove(cctx, name)
	}
	if r.grouped {
		if err := r.cfg.Proxy.DeleteGrouping(cctx, r.runID); err != nil && slolab.KindOf(err) != slolab.NotFound {
			r.event(EventGrouping, "", "removing the grouping failed; its lease ends it: "+err.Error())
		} else {
			r.event(EventGrouping, "", "grouping removed")
		}
		r.grouped = false
	}
}

// recoveryCUJs are the CUJs whose recovery is watched: those the expectations
// name and those the faults touched.
func (c *Compiled) recoveryCUJs() []string {
	set := c.touchedCUJs()
	for cuj := range c.Recovery {
		set[cuj] = true
	}
	var out []string
	for _, name := range c.Service.CUJNames() {
		if set[name] {
			out = append(out, name)
		}
	}
	return out
}

// recover watches, every interval, until each CUJ the faults touched meets
// its SLOs again over the last interval and the steady state holds, or the
// recovery wait ends.
func (r *run) recover(ctx context.Context) *stop {
	cujs := r.c.recoveryCUJs()
	wait := min(r.x.Recovery, r.rep.Started.Add(r.x.Guardrails.MaxDuration).Sub(r.now()))
	ticker := time.NewTicker(r.x.Interval)
	defer ticker.Stop()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	pending := slices.Clone(cujs)
	steady := false
	for {
		select {
		case <-ctx.Done():
			return &stop{verdict: Interrupted, reason: "interrupted while waiting for recovery; every fault and the grouping were removed"}
		case <-timeout.C:
			now := r.now()
			for _, cuj := range pending {
				r.ev.recovery[cuj] = recoveryMark{waited: now.Sub(r.rep.MethodEnded)}
				r.rep.Recovery = append(r.rep.Recovery, Recovery{CUJ: cuj, Waited: spec.Duration(now.Sub(r.rep.MethodEnded).Round(time.Second))})
			}
			if !steady {
				o := firstFailure(r.rep.SteadyAfter)
				reason := fmt.Sprintf("the steady state did not return within %s of the method's end", spec.FormatDuration(wait))
				if o != nil {
					reason += ": " + describeFailure(*o)
				}
				return &stop{verdict: Failed, reason: reason, outcome: o}
			}
			return nil
		case <-r.renewTick.C:
			if s := r.renew(ctx); s != nil && s.verdict == Aborted {
				r.grouped = false // the lease is gone; nothing to renew
			}
		case <-ticker.C:
			now := r.now()
			r.ev.round(ctx, now)
			var still []string
			for _, cuj := range pending {
				if r.recovered(cuj) {
					after := now.Sub(r.rep.MethodEnded)
					r.ev.recovery[cuj] = recoveryMark{recovered: true, after: after}
					r.rep.Recovery = append(r.rep.Recovery, Recovery{CUJ: cuj, Recovered: true, After: spec.Duration(after.Round(time.Second)), Waited: spec.Duration(after.Round(time.Second))})
					r.event(EventRecovered, "", fmt.Sprintf("%s met its SLOs again %s after the method ended", cuj, spec.FormatDuration(after.Round(time.Second))))
				} else {
					still = append(still, cuj)
				}
			}
			pending = still
			r.rep.SteadyAfter = nil
			for _, h := range r.c.SteadyState {
				r.rep.SteadyAfter = append(r.rep.SteadyAfter, r.ev.eval(h))
			}
			steady = firstFailure(r.rep.SteadyAfter) == nil
			if steady && len(pending) == 0 {
				return nil
			}
		}
	}
}

func firstFailure(os []Outcome) *Outcome {
	for i := range os {
		if os[i].failed() {
			return &os[i]
		}
	}
	return nil
}

// recovered reports whether a CUJ's requests over the last interval (the
// experiment group's, with a blast radius) met every SLO of the CUJ. A window
// without requests proves nothing and does not count.
func (r *run) recovered(cuj string) bool {
	group := GroupAll
	if r.ev.groups {
		group = GroupExperiment
	}
	s, err := r.ev.sli(cuj, window{d: r.x.Interval}, group)
	if err != nil || s.Total == 0 {
		return false
	}
	return meetsSLOs(r.c.Service.CUJ(cuj), s)
}

// expect evaluates the expectations once, over the frozen run and the recovery marks.
func (r *run) expect(ctx context.Context) {
	r.ev.round(ctx, r.now())
	for _, h := range r.c.Expect {
		o := r.ev.eval(h)
		r.rep.Expect = append(r.rep.Expect, o)
		if o.failed() && r.rep.Verdict == "" {
			r.finish(&stop{verdict: Failed, reason: "an expectation failed: " + describeFailure(o), outcome: &o})
		}
	}
}

// touchedCUJs are the CUJs the method's faults select; TCP faults select none.
func (c *Compiled) touchedCUJs() map[string]bool {
	set := map[string]bool{}
	for _, f := range c.Experiment.Faults() {
		switch {
		case f.IsTCP():
		case f.Match.CUJ != "":
			set[f.Match.CUJ] = true
		default:
			for _, name := range c.Service.CUJNames() {
				set[name] = true
			}
		}
	}
	return set
}
