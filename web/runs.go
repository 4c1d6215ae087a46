package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// Records is where the dashboard reads the record of experiments and
// GameDays: the store's experiment_run table, which 'slolab experiment run',
// 'experiment schedule' and 'gameday run' write.
type Records struct {
	// Store is the embedded store (*sqlite.Store is one).
	Store interface {
		ExperimentRuns(ctx context.Context, name string, limit int, withReports bool) ([]sqlite.ExperimentRun, error)
		ErrorClasses(ctx context.Context, from, to time.Time) ([]errclass.Class, error)
	}
	// Path is the store's file, for the page's notes.
	Path string
}

// MaxRuns is how many runs, newest first, GET /api/experiments lists.
const MaxRuns = 20

// RunsView is GET /api/experiments: the latest runs of experiments and
// GameDays, newest first, each with the detail of its report.
type RunsView struct {
	// Store is the store's file; empty without one.
	Store string `json:"store,omitempty"`
	// Empty says why there is nothing to list, when there is nothing.
	Empty string    `json:"empty,omitempty"`
	Runs  []RunView `json:"runs"`
}

// RunView is one recorded run (or a due time a schedule skipped).
type RunView struct {
	ID       int64         `json:"id"`
	Kind     string        `json:"kind"` // "experiment" or "gameday"
	Name     string        `json:"name"`
	Verdict  string        `json:"verdict"`
	Reason   string        `json:"reason"`
	Due      time.Time     `json:"due,omitzero"`
	Started  time.Time     `json:"started"`
	Duration spec.Duration `json:"duration"`
	// Experiment or GameDay is the report's detail, by Kind; neither for a
	// skipped due time, which has no report.
	Experiment *ExperimentDetail `json:"experiment,omitempty"`
	GameDay    *GameDayDetail    `json:"gameday,omitempty"`
	// ReportError says why a stored report could not be read.
	ReportError string `json:"reportError,omitempty"`
}

// ExperimentDetail is what an experiment's report found: its hypotheses
// with the values measured, the faults intended and realised, the
// experiment group against the control group, and the timeline.
type ExperimentDetail struct {
	Description string           `json:"description,omitempty"`
	Hypotheses  []HypothesisView `json:"hypotheses"`
	Faults      []FaultStageView `json:"faults"`
	Comparisons []ComparisonView `json:"comparisons"`
	Timeline    []EventView      `json:"timeline"`
}

// The phases of an experiment in which a hypothesis is evaluated.
const (
	PhaseBefore    = "steady state before"
	PhaseGuardrail = "guardrail"
	PhaseExpect    = "expectation"
	PhaseAfter     = "steady state after"
)

// HypothesisView is one expression's last evaluation in one phase.
type HypothesisView struct {
	Phase       string `json:"phase"`
	Expr        string `json:"expr"`
	Description string `json:"description,omitempty"`
	// Holds: the expression was true. For a guardrail (abortIf), true means
	// it tripped.
	Holds    bool                 `json:"holds"`
	Error    string               `json:"error,omitempty"`
	Measures []experiment.Measure `json:"measures"`
	At       time.Time            `json:"at"`
}

// FaultStageView is one rule at one rate: intended against realised.
type FaultStageView struct {
	Fault    string     `json:"fault"`
	Match    string     `json:"match"`
	Actions  string     `json:"actions"`
	Intended spec.Ratio `json:"intended"`
	Realised string     `json:"realised"` // injected of matched; "-" without any
	Matched  uint64     `json:"matched"`
	Injected uint64     `json:"injected"`
}

// GroupView is what one group saw of a CUJ during the method.
type GroupView struct {
	Total        uint64        `json:"total"`
	Bad          uint64        `json:"bad"`
	Availability float64       `json:"availability"`
	P99          spec.Duration `json:"p99"`
	WithinSLO    bool          `json:"withinSLO"`
}

// ComparisonView is the experiment group against the control group for one
// CUJ, with the statistics that decided whether it was degraded.
type ComparisonView struct {
	CUJ        string    `json:"cuj"`
	Targeted   bool      `json:"targeted"`
	Experiment GroupView `json:"experiment"`
	Control    GroupView `json:"control"`
	// ErrorsP is Fisher's exact test (one-sided) on the failures; OddsRatio
	// its odds ratio (null when infinite or undefined).
	ErrorsP   float64  `json:"errorsP"`
	OddsRatio *float64 `json:"oddsRatio"`
	// LatencyP is the Mann-Whitney U test on the latency histograms;
	// Superiority the probability that an experiment request is slower.
	LatencyP    float64  `json:"latencyP"`
	Superiority *float64 `json:"superiority"`
	Degraded    bool     `json:"degraded"`
	Summary     string   `json:"summary"`
}

// EventView is one entry of a timeline.
type EventView struct {
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	Text       string    `json:"text"`
	Who        string    `json:"who,omitempty"`
	Experiment string    `json:"experiment,omitempty"`
}

// GameDayDetail is a GameDay's retrospective material: the headline times,
// the alerts, the experiments' verdicts and the timeline.
type GameDayDetail struct {
	Description string              `json:"description,omitempty"`
	Facilitator string              `json:"facilitator,omitempty"`
	Responders  []string            `json:"responders"`
	Figures     experiment.Figures  `json:"figures"`
	Alerts      []GameDayAlert      `json:"alerts"`
	Experiments []GameDayExperiment `json:"experiments"`
	Timeline    []EventView         `json:"timeline"`
}

// GameDayAlert is an alert that fired during a GameDay.
type GameDayAlert struct {
	Alert    string    `json:"alert"` // "update availability page: burn rate ≥ 14.4 over 1h and 5m"
	Fired    time.Time `json:"fired"`
	Resolved time.Time `json:"resolved,omitzero"`
}

// GameDayExperiment is one experiment of a GameDay and how it ended.
type GameDayExperiment struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// runs reads the latest runs from the store.
func (d *Dashboard) runs(ctx context.Context) (*RunsView, error) {
	rec := d.cfg.Records
	if rec == nil || rec.Store == nil {
		return &RunsView{Runs: []RunView{},
			Empty: "No store: experiments and GameDays are recorded in the embedded store ('slolab experiment run', 'slolab gameday run' with --store PATH); serve the dashboard with --store PATH to list them."}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	runs, err := rec.Store.ExperimentRuns(ctx, "", MaxRuns, true)
	if err != nil {
		return nil, err
	}
	v := &RunsView{Store: rec.Path, Runs: make([]RunView, 0, len(runs))}
	if len(runs) == 0 {
		v.Empty = fmt.Sprintf("None recorded yet: 'slolab experiment run --store %s' and 'slolab gameday run --store %s' keep their reports here.", rec.Path, rec.Path)
	}
	for _, r := range runs {
		v.Runs = append(v.Runs, runView(r))
	}
	return v, nil
}

func runView(r sqlite.ExperimentRun) RunView {
	v := RunView{ID: r.ID, Kind: r.Kind, Name: r.Name, Verdict: r.Verdict, Reason: r.Reason,
		Due: r.Due, Started: r.Started, Duration: spec.Duration(r.Ended.Sub(r.Started))}
	if len(r.Report) == 0 {
		return v
	}
	var err error
	switch r.Kind {
	case "experiment":
		var rep experiment.Report
		if err = json.Unmarshal(r.Report, &rep); err == nil {
			v.Experiment = experimentDetail(&rep)
		}
	case "gameday":
		var rep experiment.GameDayReport
		if err = json.Unmarshal(r.Report, &rep); err == nil {
			v.GameDay = gameDayDetail(&rep)
		}
	default:
		err = fmt.Errorf("unknown kind %q", r.Kind)
	}
	if err != nil {
		v.ReportError = fmt.Sprintf("the stored report cannot be read: %v", err)
	}
	return v
}

func experimentDetail(r *experiment.Report) *ExperimentDetail {
	x := &ExperimentDetail{Description: r.Description, Hypotheses: []HypothesisView{}, Faults: []FaultStageView{},
		Comparisons: []ComparisonView{}, Timeline: []EventView{}}
	for _, part := range []struct {
		phase    string
		outcomes []experiment.Outcome
	}{{PhaseBefore, r.SteadyBefore}, {PhaseGuardrail, r.Guardrails}, {PhaseExpect, r.Expect}, {PhaseAfter, r.SteadyAfter}} {
		for _, o := range part.outcomes {
			m := o.Measures
			if m == nil {
				m = []experiment.Measure{}
			}
			x.Hypotheses = append(x.Hypotheses, HypothesisView{Phase: part.phase, Expr: o.Expr, Description: o.Description,
				Holds: o.Holds, Error: o.Error, Measures: m, At: o.At})
		}
	}
	for _, f := range r.Faults {
		x.Faults = append(x.Faults, FaultStageView{Fault: f.Fault, Match: f.Match, Actions: f.Actions, Intended: f.Intended,
			Realised: f.Realised(), Matched: f.Matched, Injected: f.Injected})
	}
	for _, c := range r.Comparison {
		x.Comparisons = append(x.Comparisons, comparisonView(c))
	}
	for _, e := range r.Timeline {
		x.Timeline = append(x.Timeline, EventView{At: e.At, Kind: e.Kind, Text: e.Text})
	}
	return x
}

// comparisonView is a comparison as the dashboard shows it; a statistic with
// no finite value (an odds ratio with no bad control request) is left out.
func comparisonView(c experiment.Comparison) ComparisonView {
	group := func(g experiment.GroupSLI) GroupView {
		return GroupView{Total: g.Total, Bad: g.Bad, Availability: g.Availability, P99: g.P99, WithinSLO: g.WithinSLO}
	}
	return ComparisonView{CUJ: c.CUJ, Targeted: c.Targeted, Experiment: group(c.Experiment), Control: group(c.Control),
		ErrorsP: c.Errors.P, OddsRatio: finite(float64(c.Errors.OddsRatio)), LatencyP: c.Latency.P,
		Superiority: finite(float64(c.Latency.Superiority)), Degraded: c.Degraded, Summary: c.Summary}
}

func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func gameDayDetail(r *experiment.GameDayReport) *GameDayDetail {
	g := &GameDayDetail{Description: r.Description, Facilitator: r.Facilitator, Responders: r.Responders, Figures: r.Figures,
		Alerts: []GameDayAlert{}, Experiments: []GameDayExperiment{}, Timeline: []EventView{}}
	if g.Responders == nil {
		g.Responders = []string{}
	}
	for _, a := range r.Alerts {
		g.Alerts = append(g.Alerts, GameDayAlert{Alert: a.String(), Fired: a.Fired, Resolved: a.Resolved})
	}
	for _, x := range r.Experiments {
		g.Experiments = append(g.Experiments, GameDayExperiment{Name: x.Experiment, Verdict: string(x.Verdict), Reason: x.Reason})
	}
	for _, e := range r.Timeline {
		g.Timeline = append(g.Timeline, EventView{At: e.At, Kind: e.Kind, Text: e.Text, Who: e.Who, Experiment: e.Experiment})
	}
	return g
}
