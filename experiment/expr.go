package experiment

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/robfig/cron/v3"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
)

// Section says where an expression is written, which decides what it may use.
type Section string

// The sections of an experiment holding expressions.
const (
	SteadyState Section = "steadyState"
	AbortIf     Section = "guardrails.abortIf"
	Expect      Section = "expect"
)

// RunWindow is the window argument that means "since the method began" (until it ended).
const RunWindow = "run"

// MaxWindow is the longest window an expression may read: the proxy keeps six hours.
const MaxWindow = 6 * time.Hour

// Hypothesis is a compiled expression.
type Hypothesis struct {
	Expr    spec.Expr
	Section Section
	prg     cel.Program
}

// Compiled is an experiment with its expressions compiled against its service.
type Compiled struct {
	Experiment  *spec.Experiment
	Service     *spec.Service
	SteadyState []*Hypothesis
	AbortIf     []*Hypothesis
	Expect      []*Hypothesis
	// Recovery lists the CUJs that recovers_within names, with the longest
	// time any expectation allows each.
	Recovery map[string]time.Duration
	// Schedule is the parsed spec.schedule, or nil.
	Schedule cron.Schedule
	// grouped are the CUJs the expressions read by group (experiment or
	// control): the run holds them on the proxy.
	grouped map[string]bool

	fns *functions
}

// functions holds the evaluator that function bindings read; the runner sets
// it before evaluating.
type functions struct {
	ev *evaluator
}

// Compile checks and compiles every expression of x against the CUJs of svc.
// Mistakes come back as spec.Errors at file:line:col of the offending
// character, all at once.
func Compile(x *spec.Experiment, svc *spec.Service) (*Compiled, error) {
	c := &Compiled{Experiment: x, Service: svc, Recovery: map[string]time.Duration{}, grouped: map[string]bool{}, fns: &functions{}}
	env, err := newEnv(c.fns)
	if err != nil {
		return nil, fmt.Errorf("building the expression environment: %w", err)
	}
	var errs spec.Errors
	add := func(section Section, exprs []spec.Expr) []*Hypothesis {
		var out []*Hypothesis
		for _, e := range exprs {
			h, es := c.compile(env, section, e)
			errs = append(errs, es...)
			if h != nil {
				out = append(out, h)
			}
		}
		return out
	}
	c.SteadyState = add(SteadyState, x.SteadyState)
	c.AbortIf = add(AbortIf, x.Guardrails.AbortIf)
	c.Expect = add(Expect, x.Expect)
	if x.Schedule != "" {
		sched, err := cron.ParseStandard(x.Schedule)
		if err != nil {
			errs = append(errs, &spec.Error{Pos: x.SchedulePos, Path: "spec.schedule", Msg: fmt.Sprintf("want a cron schedule such as \"0 11 * * 2\" (minute hour day month weekday) or @daily: %v", err)})
		}
		c.Schedule = sched
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *spec.Error) int {
			if a.Pos.Line != b.Pos.Line {
				return a.Pos.Line - b.Pos.Line
			}
			return a.Pos.Col - b.Pos.Col
		})
		return nil, errs
	}
	return c, nil
}

func (c *Compiled) compile(env *cel.Env, section Section, e spec.Expr) (*Hypothesis, spec.Errors) {
	rw := rewriteDurations(e.Text)
	at := func(line, col int) spec.Pos {
		l, cc := lineCol(e.Text, rw.original(runeOffset(rw.text, line, col)))
		return e.At(l, cc)
	}
	var errs spec.Errors
	checked, iss := env.Compile(rw.text)
	if iss.Err() != nil {
		for _, ce := range iss.Errors() {
			errs = append(errs, &spec.Error{Pos: at(ce.Location.Line(), ce.Location.Column()), Path: e.Path, Msg: celMessage(ce.Message)})
		}
		return nil, errs
	}
	if !checked.OutputType().IsExactType(cel.BoolType) {
		return nil, spec.Errors{{Pos: e.At(1, 0), Path: e.Path, Msg: fmt.Sprintf("must be true or false, but gives a %s; compare it, as in availability(\"login\", \"5m\") >= 99.9", checked.OutputType())}}
	}
	native := checked.NativeRep()
	info := native.SourceInfo()
	ast.PreOrderVisit(native.Expr(), ast.NewExprVisitor(func(x ast.Expr) {
		if x.Kind() != ast.CallKind {
			return
		}
		call := x.AsCall()
		sig, ok := signatures[call.FunctionName()]
		if !ok {
			return
		}
		for _, msg := range c.check(section, call.FunctionName(), sig, call.Args()) {
			var p spec.Pos
			if msg.arg >= 0 {
				loc := info.GetStartLocation(call.Args()[msg.arg].ID())
				p = at(loc.Line(), loc.Column())
			} else {
				// CEL places a call at its parenthesis; point at the name before it.
				loc := info.GetStartLocation(x.ID())
				name := []rune(call.FunctionName())
				orig := []rune(e.Text)
				off := rw.original(runeOffset(rw.text, loc.Line(), loc.Column()))
				if off >= len(name) && off <= len(orig) && string(orig[off-len(name):off]) == string(name) {
					off -= len(name)
				}
				l, cc := lineCol(e.Text, off)
				p = e.At(l, cc)
			}
			errs = append(errs, &spec.Error{Pos: p, Path: e.Path, Msg: msg.text})
		}
	}))
	if len(errs) > 0 {
		return nil, errs
	}
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, spec.Errors{{Pos: e.At(1, 0), Path: e.Path, Msg: err.Error()}}
	}
	return &Hypothesis{Expr: e, Section: section, prg: prg}, nil
}

// celMessage adds a hint to CEL's messages where slolab's syntax differs.
func celMessage(msg string) string {
	if strings.Contains(msg, "(duration, string)") || strings.Contains(msg, "(string, duration)") {
		return msg + `; compare a duration with a duration: 800ms or duration("800ms")`
	}
	if strings.Contains(msg, "(duration, int)") || strings.Contains(msg, "(duration, double)") {
		return msg + "; give the unit: 800ms, 1s"
	}
	return msg
}

// signature says what a function's arguments are, for load-time checks.
type signature struct {
	window    bool // the second argument is a window
	group     bool // a third argument may name a group
	needsSLO  string
	sections  []Section // where it may be used; nil: anywhere
	recovery  bool
	runWindow bool // the only window is the run
}

var signatures = map[string]signature{
	"availability":    {window: true, group: true},
	"latency_ratio":   {window: true, group: true, needsSLO: "latency"},
	"burn_rate":       {window: true, group: true, needsSLO: "any"},
	"p50":             {window: true, group: true},
	"p90":             {window: true, group: true},
	"p99":             {window: true, group: true},
	"requests":        {window: true, group: true},
	"budget_consumed": {needsSLO: "any", sections: []Section{AbortIf, Expect}, runWindow: true},
	"recovers_within": {sections: []Section{Expect}, recovery: true},
}

type checkMsg struct {
	arg  int // -1 for the call itself
	text string
}

// check looks at the literal arguments of a call: the CUJ exists and has the
// SLO the function needs, windows parse and fit, groups exist.
func (c *Compiled) check(section Section, name string, sig signature, args []ast.Expr) []checkMsg {
	var out []checkMsg
	if sig.sections != nil && !slices.Contains(sig.sections, section) {
		var where []string
		for _, s := range sig.sections {
			where = append(where, string(s))
		}
		what := "the whole run"
		if sig.recovery {
			what = "what happens after the method"
		}
		out = append(out, checkMsg{-1, fmt.Sprintf("%s measures %s; use it in %s", name, what, strings.Join(where, " or "))})
	}
	if cuj, ok := stringLiteral(args[0]); ok {
		cd := c.Service.CUJ(cuj)
		switch {
		case cd == nil && cuj != spec.OtherCUJ:
			out = append(out, checkMsg{0, fmt.Sprintf("service %s has no CUJ %q (it has %s)", c.Service.Name, cuj, strings.Join(c.Service.CUJNames(), ", "))})
		case cd == nil && sig.needsSLO != "":
			out = append(out, checkMsg{0, fmt.Sprintf("%s counts requests that match no route and has no SLO for %s", spec.OtherCUJ, name)})
		case sig.needsSLO == "latency" && cd.Latency == nil:
			out = append(out, checkMsg{0, fmt.Sprintf("CUJ %s has no latency SLO, so %s has no threshold to measure against", cuj, name)})
		}
		if sig.recovery && cd != nil {
			if d, ok := durationLiteral(args[1]); ok && d > c.Recovery[cuj] {
				c.Recovery[cuj] = d
			} else if !ok {
				c.Recovery[cuj] = max(c.Recovery[cuj], c.Experiment.Recovery)
			}
		}
	}
	if sig.recovery {
		if d, ok := durationLiteral(args[1]); ok && d > c.Experiment.Recovery {
			out = append(out, checkMsg{1, fmt.Sprintf("%s is longer than the experiment's recovery wait (%s); raise spec.recovery", spec.FormatDuration(d), spec.FormatDuration(c.Experiment.Recovery))})
		}
		if s, ok := stringLiteral(args[1]); ok {
			if _, err := spec.ParseDuration(s); err != nil {
				out = append(out, checkMsg{1, err.Error()})
			}
		}
	}
	if sig.window && len(args) > 1 {
		if s, ok := stringLiteral(args[1]); ok {
			if s == RunWindow {
				if section == SteadyState {
					out = append(out, checkMsg{1, `the "run" window does not exist before the method starts; give the steady state a window such as "1m"`})
				}
			} else if d, err := spec.ParseDuration(s); err != nil {
				out = append(out, checkMsg{1, fmt.Sprintf("want a window such as \"5m\" or \"run\": %v", err)})
			} else {
				out = append(out, checkWindow(d)...)
			}
		} else if d, ok := durationLiteral(args[1]); ok {
			out = append(out, checkWindow(d)...)
		}
	}
	if sig.group && len(args) > 2 {
		if g, ok := stringLiteral(args[2]); ok {
			switch {
			case g != GroupAll && g != GroupExperiment && g != GroupControl:
				out = append(out, checkMsg{2, fmt.Sprintf("want a group: %q, %q or %q, got %q", GroupExperiment, GroupControl, GroupAll, g)})
			case g != GroupAll && c.Experiment.BlastRadius == nil:
				out = append(out, checkMsg{2, fmt.Sprintf("the experiment has no blastRadius, so there is no %s group", g)})
			case g != GroupAll:
				if cuj, ok := stringLiteral(args[0]); ok && c.Service.CUJ(cuj) != nil {
					c.grouped[cuj] = true
				}
			}
		}
	}
	return out
}

func checkWindow(d time.Duration) []checkMsg {
	if d < time.Second || d > MaxWindow {
		return []checkMsg{{1, fmt.Sprintf("a window must be between 1s and %s (the proxy's live history), got %s", spec.FormatDuration(MaxWindow), spec.FormatDuration(d))}}
	}
	return nil
}

func stringLiteral(x ast.Expr) (string, bool) {
	if x.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := x.AsLiteral().(types.String)
	return string(s), ok
}

// durationLiteral reads duration("5m") (what 5m is rewritten to) or "5m".
func durationLiteral(x ast.Expr) (time.Duration, bool) {
	if s, ok := stringLiteral(x); ok {
		d, err := spec.ParseDuration(s)
		return d, err == nil
	}
	if x.Kind() != ast.CallKind || x.AsCall().FunctionName() != "duration" || len(x.AsCall().Args()) != 1 {
		return 0, false
	}
	s, ok := stringLiteral(x.AsCall().Args()[0])
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// newEnv declares slolab's functions; their bindings read f.ev.
func newEnv(f *functions) (*cel.Env, error) {
	windowed := func(name, doc string, result *cel.Type, fn func(ev *evaluator, call string, cuj string, w window, group string) ref.Val) cel.EnvOption {
		bind := func(args ...ref.Val) ref.Val {
			if f.ev == nil {
				return types.NewErr("%s: nothing to read: the expression was only checked", name)
			}
			cuj, w, group, err := windowArgs(args)
			if err != nil {
				return types.NewErr("%s: %v", name, err)
			}
			return fn(f.ev, callText(name, args), cuj, w, group)
		}
		s, d := cel.StringType, cel.DurationType
		return cel.Function(name, cel.FunctionDocs(doc),
			cel.Overload(name+"_string_string", []*cel.Type{s, s}, result, cel.FunctionBinding(bind)),
			cel.Overload(name+"_string_duration", []*cel.Type{s, d}, result, cel.FunctionBinding(bind)),
			cel.Overload(name+"_string_string_string", []*cel.Type{s, s, s}, result, cel.FunctionBinding(bind)),
			cel.Overload(name+"_string_duration_string", []*cel.Type{s, d, s}, result, cel.FunctionBinding(bind)),
		)
	}
	evalOnly := func(name string, fn func(ev *evaluator, args ...ref.Val) ref.Val) func(args ...ref.Val) ref.Val {
		return func(args ...ref.Val) ref.Val {
			if f.ev == nil {
				return types.NewErr("%s: nothing to read: the expression was only checked", name)
			}
			return fn(f.ev, args...)
		}
	}
	return cel.NewEnv(
		// availability("update", "5m") >= 99 compares a double with an int, as people write it.
		cel.CrossTypeNumericComparisons(true),
		windowed("availability", "percentage of requests that did not fail (5xx or no response)", cel.DoubleType, (*evaluator).availability),
		windowed("latency_ratio", "percentage of requests faster than the CUJ's latency threshold", cel.DoubleType, (*evaluator).latencyRatio),
		windowed("burn_rate", "the error-budget burn rate of the CUJ's worse SLO", cel.DoubleType, (*evaluator).burnRate),
		windowed("p50", "median latency", cel.DurationType, quantile(0.5)),
		windowed("p90", "90th percentile latency", cel.DurationType, quantile(0.9)),
		windowed("p99", "99th percentile latency", cel.DurationType, quantile(0.99)),
		windowed("requests", "number of requests", cel.IntType, (*evaluator).requests),
		cel.Function("budget_consumed", cel.FunctionDocs("percentage of the CUJ's error budget consumed since the method began"),
			cel.Overload("budget_consumed_string", []*cel.Type{cel.StringType}, cel.DoubleType,
				cel.FunctionBinding(evalOnly("budget_consumed", func(ev *evaluator, args ...ref.Val) ref.Val {
					return ev.budgetConsumed(callText("budget_consumed", args), string(args[0].(types.String)))
				})))),
		cel.Function("recovers_within", cel.FunctionDocs("whether the CUJ met its SLOs again within the time after the method"),
			cel.Overload("recovers_within_string_duration", []*cel.Type{cel.StringType, cel.DurationType}, cel.BoolType,
				cel.FunctionBinding(evalOnly("recovers_within", func(ev *evaluator, args ...ref.Val) ref.Val {
					return ev.recoversWithin(callText("recovers_within", args), string(args[0].(types.String)), args[1].(types.Duration).Duration)
				}))),
			cel.Overload("recovers_within_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(evalOnly("recovers_within", func(ev *evaluator, args ...ref.Val) ref.Val {
					d, err := spec.ParseDuration(string(args[1].(types.String)))
					if err != nil {
						return types.NewErr("recovers_within: %v", err)
					}
					return ev.recoversWithin(callText("recovers_within", args), string(args[0].(types.String)), d)
				})))),
	)
}

// window is a window argument: a duration, or the run.
type window struct {
	d   time.Duration
	run bool
}

func (w window) String() string {
	if w.run {
		return "the run"
	}
	return spec.FormatDuration(w.d)
}

func windowArgs(args []ref.Val) (cuj string, w window, group string, err error) {
	cuj = string(args[0].(types.String))
	switch v := args[1].(type) {
	case types.String:
		if string(v) == RunWindow {
			w.run = true
		} else if w.d, err = spec.ParseDuration(string(v)); err != nil {
			return "", w, "", err
		}
	case types.Duration:
		w.d = v.Duration
	}
	if !w.run && (w.d < time.Second || w.d > MaxWindow) {
		return "", w, "", fmt.Errorf("a window must be between 1s and %s, got %s", spec.FormatDuration(MaxWindow), spec.FormatDuration(w.d))
	}
	group = GroupAll
	if len(args) > 2 {
		group = string(args[2].(types.String))
	}
	return cuj, w, group, nil
}

// callText writes a call the way a user would: availability("update", "1m").
func callText(name string, args []ref.Val) string {
	parts := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case types.String:
			parts[i] = strconv.Quote(string(v))
		case types.Duration:
			parts[i] = spec.FormatDuration(v.Duration)
		default:
			parts[i] = fmt.Sprint(a.Value())
		}
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

// Measure is one value an expression read, for reports: what was asked,
// what came back, and the counts behind it.
type Measure struct {
	Call   string `json:"call"`
	Value  string `json:"value"`
	Detail string `json:"detail,omitempty"`
}

// Outcome is an expression's verdict at one evaluation.
type Outcome struct {
	Expr        string    `json:"expr"`
	Description string    `json:"description,omitempty"`
	Section     Section   `json:"section"`
	Holds       bool      `json:"holds"`
	Error       string    `json:"error,omitempty"`
	Measures    []Measure `json:"measures,omitempty"`
	At          time.Time `json:"at"`
}

// failed reports whether the expression was false or could not be evaluated.
func (o Outcome) failed() bool { return !o.Holds || o.Error != "" }

// Values returns the measures in one line: `availability("update", "1m") = 97.5`.
func (o Outcome) Values() string {
	parts := make([]string, len(o.Measures))
	for i, m := range o.Measures {
		parts[i] = m.Call + " = " + m.Value
	}
	return strings.Join(parts, ", ")
}

// evaluator evaluates expressions against a View at one instant.
type evaluator struct {
	ctx  context.Context
	view View
	svc  *spec.Service
	exp  *spec.Experiment
	now  time.Time

	groups   bool                    // a grouping splits clients; before it, every group reads all clients
	run      string                  // the run's name on the proxy, once its grouping is there
	held     map[string]bool         // the CUJs the run holds: their reads count its requests alone
	runStart time.Time               // when the method began; zero before
	runEnd   time.Time               // when it ended; zero while it runs
	frozen   map[[2]string]SLI       // run windows measured when the method ended
	recovery map[string]recoveryMark // per CUJ, after the method

	cache map[Query]SLI
	calls []Measure
}

type recoveryMark struct {
	recovered bool
	after     time.Duration // since the method ended
	waited    time.Duration // how long the runner watched
}

// round starts an evaluation round at now: values are read afresh once per round.
func (ev *evaluator) round(ctx context.Context, now time.Time) {
	ev.ctx, ev.now, ev.cache = ctx, now, map[Query]SLI{}
}

func (ev *evaluator) eval(h *Hypothesis) Outcome {
	ev.calls = nil
	o := Outcome{Expr: h.Expr.Text, Description: h.Expr.Description, Section: h.Section, At: ev.now}
	out, _, err := h.prg.ContextEval(ev.ctx, map[string]any{})
	o.Measures = ev.calls
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Holds, _ = out.Value().(bool)
	return o
}

func (ev *evaluator) record(call, value, detail string) {
	for _, m := range ev.calls {
		if m.Call == call {
			return
		}
	}
	ev.calls = append(ev.calls, Measure{Call: call, Value: value, Detail: detail})
}

func (ev *evaluator) fail(call string, err error) ref.Val {
	ev.record(call, "error", err.Error())
	return types.NewErr("%s: %v", call, err)
}

// sli reads a CUJ's group over a window, once per round.
func (ev *evaluator) sli(cuj string, w window, group string) (SLI, error) {
	if cuj != spec.OtherCUJ && ev.svc.CUJ(cuj) == nil {
		return SLI{}, fmt.Errorf("service %s has no CUJ %q", ev.svc.Name, cuj)
	}
	switch group {
	case GroupAll:
	case GroupExperiment, GroupControl:
		if ev.exp.BlastRadius == nil {
			return SLI{}, fmt.Errorf("the experiment has no blastRadius, so there is no %s group", group)
		}
	default:
		return SLI{}, fmt.Errorf("unknown group %q", group)
	}
	if !ev.groups {
		group = GroupAll // before the method there are no groups: both are every client
	} else if group != GroupAll && ev.run != "" && !ev.held[cuj] {
		return SLI{}, fmt.Errorf("the run splits clients on %s only; on %s the %s group is another run's", strings.Join(slices.Sorted(maps.Keys(ev.held)), ", "), cuj, group)
	}
	q := ev.query(Query{CUJ: cuj, Group: group, Window: w.d})
	if w.run {
		if s, ok := ev.frozen[[2]string{cuj, group}]; ok {
			return s, nil
		}
		if ev.runStart.IsZero() {
			return SLI{}, fmt.Errorf("the run has not started")
		}
		q.Since = ev.runStart
	}
	if s, ok := ev.cache[q]; ok {
		return s, nil
	}
	s, err := ev.view.SLI(ev.ctx, q)
	if err != nil {
		return SLI{}, err
	}
	ev.cache[q] = s
	return s, nil
}

// query narrows a read of a CUJ the run holds to the run's own requests.
func (ev *evaluator) query(q Query) Query {
	if ev.run != "" && ev.held[q.CUJ] {
		q.Run = ev.run
	}
	return q
}

func (ev *evaluator) groupNote(group string) string {
	switch {
	case group == GroupAll:
		return ""
	case !ev.groups:
		return ", every client (no groups before the method)"
	}
	return ", " + group + " group"
}

// ratFloat is the exact rational rounded once to the nearest double, so that
// a value exactly at a threshold compares equal to the threshold's literal.
func ratFloat(r *big.Rat) float64 {
	f, _ := r.Float64()
	return f
}

// meetsSLOs reports whether s met every SLO of c.
func meetsSLOs(c *spec.CUJ, s SLI) bool {
	for _, p := range sloParts(c, s) {
		if !slo.Met(slo.Events{Total: s.Total, Bad: p.bad}, p.objective) {
			return false
		}
	}
	return true
}

func percentGood(total, bad uint64) *big.Rat {
	if total == 0 {
		return big.NewRat(100, 1)
	}
	r := new(big.Rat).SetFrac(new(big.Int).SetUint64(total-bad), new(big.Int).SetUint64(total))
	return r.Mul(r, big.NewRat(100, 1))
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func (ev *evaluator) availability(call, cuj string, w window, group string) ref.Val {
	s, err := ev.sli(cuj, w, group)
	if err != nil {
		return ev.fail(call, err)
	}
	v := ratFloat(percentGood(s.Total, s.Bad))
	ev.record(call, formatFloat(v), fmt.Sprintf("%d of %d requests failed over %s%s", s.Bad, s.Total, spec.FormatDuration(s.Span.Round(time.Second)), ev.groupNote(group)))
	return types.Double(v)
}

func (ev *evaluator) latencyRatio(call, cuj string, w window, group string) ref.Val {
	c := ev.svc.CUJ(cuj)
	if c == nil || c.Latency == nil {
		return ev.fail(call, fmt.Errorf("CUJ %s has no latency SLO", cuj))
	}
	s, err := ev.sli(cuj, w, group)
	if err != nil {
		return ev.fail(call, err)
	}
	v := ratFloat(percentGood(s.Total, s.Slow))
	ev.record(call, formatFloat(v), fmt.Sprintf("%d of %d requests slower than %s over %s%s", s.Slow, s.Total, spec.FormatDuration(c.Latency.Threshold), spec.FormatDuration(s.Span.Round(time.Second)), ev.groupNote(group)))
	return types.Double(v)
}

// burnOf is the burn rate of bad out of total against an objective, exactly.
func burnOf(bad, total uint64, objective spec.Ratio) *big.Rat {
	if total == 0 {
		return new(big.Rat)
	}
	allowed := objective.OneMinus()
	r := new(big.Rat).SetFrac(new(big.Int).SetUint64(bad), new(big.Int).SetUint64(total))
	return r.Quo(r, new(big.Rat).SetFrac(new(big.Int).SetUint64(allowed.Num()), new(big.Int).SetUint64(allowed.Den())))
}

// sloPart is one SLO of a CUJ with the events that count against it.
type sloPart struct {
	name      string
	bad       uint64
	objective spec.Ratio
	window    spec.Window
}

func sloParts(c *spec.CUJ, s SLI) []sloPart {
	var out []sloPart
	if a := c.Availability; a != nil {
		out = append(out, sloPart{"availability", s.Bad, a.Objective, a.Window})
	}
	if l := c.Latency; l != nil {
		out = append(out, sloPart{"latency", s.Slow, l.Objective, l.Window})
	}
	return out
}

// burn returns the worse burn rate of a CUJ's SLOs over s, exactly, and which SLO it is.
func burn(c *spec.CUJ, s SLI) (*big.Rat, string) {
	best, which := new(big.Rat), ""
	for _, p := range sloParts(c, s) {
		if r := burnOf(p.bad, s.Total, p.objective); which == "" || r.Cmp(best) > 0 {
			best, which = r, p.name
		}
	}
	return best, which
}

func (ev *evaluator) burnRate(call, cuj string, w window, group string) ref.Val {
	c := ev.svc.CUJ(cuj)
	if c == nil {
		return ev.fail(call, fmt.Errorf("%s has no SLO", cuj))
	}
	s, err := ev.sli(cuj, w, group)
	if err != nil {
		return ev.fail(call, err)
	}
	r, which := burn(c, s)
	v := ratFloat(r)
	ev.record(call, formatFloat(v), fmt.Sprintf("%s SLO; %d failed and %d slow of %d requests over %s%s", which, s.Bad, s.Slow, s.Total, spec.FormatDuration(s.Span.Round(time.Second)), ev.groupNote(group)))
	return types.Double(v)
}

func quantile(q float64) func(ev *evaluator, call, cuj string, w window, group string) ref.Val {
	return func(ev *evaluator, call, cuj string, w window, group string) ref.Val {
		s, err := ev.sli(cuj, w, group)
		if err != nil {
			return ev.fail(call, err)
		}
		if s.Total > 0 && len(s.Hist) == 0 {
			return ev.fail(call, fmt.Errorf("this source keeps no latency histogram; read the proxy's admin API for percentiles"))
		}
		d := sli.Quantile(s.Bounds, s.Hist, q)
		ev.record(call, spec.FormatDuration(d.Round(time.Millisecond)), fmt.Sprintf("over %d requests in %s%s", s.Total, spec.FormatDuration(s.Span.Round(time.Second)), ev.groupNote(group)))
		return types.Duration{Duration: d}
	}
}

func (ev *evaluator) requests(call, cuj string, w window, group string) ref.Val {
	s, err := ev.sli(cuj, w, group)
	if err != nil {
		return ev.fail(call, err)
	}
	ev.record(call, strconv.FormatUint(s.Total, 10), fmt.Sprintf("over %s%s", spec.FormatDuration(s.Span.Round(time.Second)), ev.groupNote(group)))
	return types.Int(int64(min(s.Total, 1<<62)))
}

// budgetConsumed is the share of the CUJ's error budget the run used: the
// burn rate over the run times the run's length over the SLO window.
func (ev *evaluator) budgetConsumed(call, cuj string) ref.Val {
	c := ev.svc.CUJ(cuj)
	if c == nil {
		return ev.fail(call, fmt.Errorf("%s has no SLO", cuj))
	}
	s, err := ev.sli(cuj, window{run: true}, GroupAll)
	if err != nil {
		return ev.fail(call, err)
	}
	worst, which := new(big.Rat), ""
	for _, p := range sloParts(c, s) {
		r := burnOf(p.bad, s.Total, p.objective)
		r.Mul(r, big.NewRat(int64(s.Span), int64(slo.PeriodLength(p.window, ev.now))))
		r.Mul(r, big.NewRat(100, 1))
		if which == "" || r.Cmp(worst) > 0 {
			worst, which = r, p.name
		}
	}
	v := ratFloat(worst)
	ev.record(call, formatFloat(v), fmt.Sprintf("%s SLO; %d failed and %d slow of %d requests over the %s run", which, s.Bad, s.Slow, s.Total, spec.FormatDuration(s.Span.Round(time.Second))))
	return types.Double(v)
}

func (ev *evaluator) recoversWithin(call, cuj string, d time.Duration) ref.Val {
	m, ok := ev.recovery[cuj]
	switch {
	case !ok:
		return ev.fail(call, fmt.Errorf("recovery of %s was not measured", cuj))
	case !m.recovered:
		ev.record(call, "false", fmt.Sprintf("not recovered within the %s the runner watched", spec.FormatDuration(m.waited)))
		return types.False
	}
	v := m.after <= d
	ev.record(call, strconv.FormatBool(v), fmt.Sprintf("met its SLOs again %s after the method ended", spec.FormatDuration(m.after)))
	return types.Bool(v)
}
