// Package argoanalysis is a port, for tests, of how Argo Rollouts v1.8.3
// decides an AnalysisRun: how a measurement's result becomes Successful,
// Failed, Inconclusive or Error, and how the controller turns the
// measurements of every metric into the run's phase. Importing Argo's own
// controller is out of proportion (its package analysis pulls every metric
// provider, the AWS SDK and k8s.io/kubernetes v1.29, whose k8s.io/kubectl
// scheme needs k8s.io/api/scheduling/v1alpha1, gone from the k8s.io/api
// v0.37.2 this module uses), so each function below follows the named lines
// of github.com/argoproj/argo-rollouts@v1.8.3, read in the module cache with
// `go mod download -json github.com/argoproj/argo-rollouts@v1.8.3`.
// Conditions are evaluated with expr-lang/expr, the renamed module of the
// antonmedv/expr Argo uses.
package argoanalysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"
	"k8s.io/client-go/util/jsonpath"
)

// Phase is an AnalysisPhase (pkg/apis/rollouts/v1alpha1/analysis_types.go).
type Phase string

// The phases.
const (
	Pending      Phase = "Pending"
	Running      Phase = "Running"
	Successful   Phase = "Successful"
	Failed       Phase = "Failed"
	Error        Phase = "Error"
	Inconclusive Phase = "Inconclusive"
)

// Completed follows AnalysisPhase.Completed (analysis_types.go:217).
func (p Phase) Completed() bool {
	switch p {
	case Successful, Failed, Error, Inconclusive:
		return true
	}
	return false
}

// order is analysisStatusOrder (utils/analysis/helpers.go:49), best to worst.
var order = []Phase{Successful, Running, Pending, Inconclusive, Error, Failed}

// isWorse follows IsWorse (utils/analysis/helpers.go:59).
func isWorse(current, next Phase) bool {
	ci, ni := 0, 0
	for i, p := range order {
		if current == p {
			ci = i
		}
		if next == p {
			ni = i
		}
	}
	return ni > ci
}

// Metric is the part of an AnalysisTemplate's metric that decides phases.
// A nil limit is an absent field.
type Metric struct {
	Name                    string
	Interval                string
	Count                   *int
	FailureLimit            *int   `yaml:"failureLimit"`
	InconclusiveLimit       *int   `yaml:"inconclusiveLimit"`
	ConsecutiveErrorLimit   *int   `yaml:"consecutiveErrorLimit"`
	ConsecutiveSuccessLimit *int   `yaml:"consecutiveSuccessLimit"`
	SuccessCondition        string `yaml:"successCondition"`
	FailureCondition        string `yaml:"failureCondition"`
	Provider                struct {
		Web        *WebProvider
		Prometheus *PrometheusProvider
	}
}

// WebProvider is the part of a web metric the measurement reads.
type WebProvider struct {
	JSONPath string `yaml:"jsonPath"`
}

// PrometheusProvider is a Prometheus metric's query.
type PrometheusProvider struct {
	Query string
}

// Metrics reads the metrics of an AnalysisTemplate.
func Metrics(template []byte) ([]Metric, error) {
	var t struct {
		Kind string
		Spec struct {
			Metrics []Metric
		}
	}
	if err := yaml.Unmarshal(template, &t); err != nil {
		return nil, err
	}
	if t.Kind != "AnalysisTemplate" {
		return nil, fmt.Errorf("kind %q, want AnalysisTemplate", t.Kind)
	}
	return t.Spec.Metrics, nil
}

// effectiveCount follows Metric.EffectiveCount (analysis_types.go:159): no
// count and no interval measure once; no count with an interval, forever
// (-1 here).
func (m Metric) effectiveCount() int {
	if m.Count == nil || *m.Count == 0 {
		if m.Interval == "" {
			return 1
		}
		return -1
	}
	return *m.Count
}

func limit(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// defaultConsecutiveErrorLimit is DefaultConsecutiveErrorLimit (utils/defaults/defaults.go:37).
const defaultConsecutiveErrorLimit = 4

// Evaluate follows EvaluateResult (utils/evaluate/evaluate.go:18): a failure
// condition that holds fails the measurement; neither holding is
// inconclusive; a missing condition is the negation of the other.
func Evaluate(result any, m Metric) (Phase, error) {
	var ok, bad bool
	var err error
	if m.SuccessCondition != "" {
		if ok, err = evalCondition(result, m.SuccessCondition); err != nil {
			return Error, err
		}
	}
	if m.FailureCondition != "" {
		if bad, err = evalCondition(result, m.FailureCondition); err != nil {
			return Error, err
		}
	}
	switch {
	case m.SuccessCondition == "" && m.FailureCondition == "":
		return Successful, nil
	case m.SuccessCondition != "" && m.FailureCondition == "":
		bad = !ok
	case m.SuccessCondition == "" && m.FailureCondition != "":
		ok = !bad
	}
	if bad {
		return Failed, nil
	}
	if !ok {
		return Inconclusive, nil
	}
	return Successful, nil
}

// evalCondition follows EvalCondition (utils/evaluate/evaluate.go:98) with
// the functions of its environment that the generated conditions may use.
func evalCondition(result any, condition string) (bool, error) {
	env := map[string]any{
		"result":  result,
		"asFloat": asFloat,
		"isNaN":   math.IsNaN,
		"isInf":   func(f float64) bool { return math.IsInf(f, 0) },
		"isNil":   func() bool { return result == nil },
	}
	program, err := expr.Compile(condition, expr.Env(env))
	if err != nil {
		return false, err
	}
	out, err := expr.Run(program, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("expected bool, but got %T", out)
	}
	return b, nil
}

func asFloat(in any) float64 {
	switch v := in.(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(err)
		}
		return f
	}
	panic(fmt.Sprintf("asFloat() not supported on %T %v", in, in))
}

// Prometheus measures an instant vector's sample values as the Prometheus
// provider does (metricproviders/prometheus/prometheus.go:174): result is
// the list of values, empty when the query selected nothing.
func Prometheus(values []float64, m Metric) (Phase, error) {
	return Evaluate(values, m)
}

// Web measures an answer as the web provider does
// (metricproviders/webmetric/webmetric.go:106-156): a non-2xx status is an
// Error; a body that is not JSON is Successful; otherwise the first match of
// the JSONPath (k8s jsonpath) is result, and no match is an Error.
func Web(status int, body []byte, m Metric) (Phase, error) {
	if status < 200 || status >= 300 {
		return Error, fmt.Errorf("received non 2xx response code: %d", status)
	}
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		return Successful, nil
	}
	if m.Provider.Web == nil {
		return Error, errors.New("not a web metric")
	}
	jp := jsonpath.New("metric")
	if err := jp.Parse(m.Provider.Web.JSONPath); err != nil {
		return Error, err
	}
	found, err := jp.FindResults(data)
	if err != nil {
		return Error, fmt.Errorf("could not find JSONPath in body: %w", err)
	}
	for _, rs := range found {
		for _, r := range rs {
			return Evaluate(r.Interface(), m)
		}
	}
	return Error, errors.New("result of web metric produced no value")
}

// Result is a metric's MetricResult: its counters and phase.
type Result struct {
	Name                                            string
	Phase                                           Phase
	Measurements                                    []Phase
	Count, Successful, Failed, Inconclusive, Errors int
	ConsecutiveError, ConsecutiveSuccess            int
}

// Run is an AnalysisRun's outcome.
type Run struct {
	Phase   Phase
	Message string
	Metrics []Result
	// Rounds is how many reconciliations took measurements.
	Rounds int
}

// Analyze runs an AnalysisRun of metrics that share one interval, as the
// controller's reconcileAnalysisRun (analysis/analysis.go:43) does on every
// interval: take a measurement of each metric that is neither completed nor
// at its count, unless the run is terminating (generateMetricTasks, :176),
// count it (runMeasurements, :312), then assess every metric and the run
// (assessRunStatus, :436). measure gives the phase of metric m's i-th
// measurement (from 0). It stops when the run completes, or after
// maxRounds reconciliations (a metric without a count runs forever).
func Analyze(metrics []Metric, maxRounds int, measure func(m Metric, i int) Phase) Run {
	results := make([]*Result, len(metrics))
	var run Run
	for run.Rounds = 0; run.Rounds < maxRounds; {
		terminating := isTerminating(results)
		took := false
		for i, m := range metrics {
			res := results[i]
			if res != nil && res.Phase.Completed() {
				continue
			}
			if terminating {
				continue
			}
			if n := m.effectiveCount(); res != nil && n >= 0 && res.Count >= n {
				continue
			}
			if res == nil {
				res = &Result{Name: m.Name, Phase: Running}
				results[i] = res
			}
			p := measure(m, len(res.Measurements))
			res.Measurements = append(res.Measurements, p)
			took = true
			switch p { // runMeasurements, analysis.go:378-400
			case Successful:
				res.Successful++
				res.Count++
				res.ConsecutiveError = 0
				res.ConsecutiveSuccess++
			case Failed:
				res.Failed++
				res.Count++
				res.ConsecutiveError = 0
				res.ConsecutiveSuccess = 0
			case Inconclusive:
				res.Inconclusive++
				res.Count++
				res.ConsecutiveError = 0
				res.ConsecutiveSuccess = 0
			case Error:
				res.Errors++
				res.ConsecutiveError++
				res.ConsecutiveSuccess = 0
			}
		}
		if took {
			run.Rounds++
		}
		run.Phase, run.Message = assessRun(metrics, results)
		if run.Phase.Completed() || !took {
			break
		}
	}
	for _, r := range results {
		if r != nil {
			run.Metrics = append(run.Metrics, *r)
		}
	}
	return run
}

// isTerminating follows IsTerminating (utils/analysis/helpers.go:84): a
// metric that completed Failed, Error or Inconclusive ends the run early.
func isTerminating(results []*Result) bool {
	for _, r := range results {
		if r == nil {
			continue
		}
		switch r.Phase {
		case Failed, Error, Inconclusive:
			return true
		}
	}
	return false
}

// assessRun follows assessRunStatus (analysis/analysis.go:436), without
// dry-run metrics: while any metric runs the run runs; once all completed,
// the worst phase is the run's.
func assessRun(metrics []Metric, results []*Result) (Phase, string) {
	terminating := isTerminating(results)
	var worst Phase
	var message string
	everything := true
	for i, m := range metrics {
		res := results[i]
		if res == nil {
			everything = false
			continue
		}
		p := assessMetric(m, *res, terminating)
		res.Phase = p
		if !p.Completed() {
			everything = false
			continue
		}
		if worst == "" || isWorse(worst, p) {
			worst = p
			if _, why := assessLimits(m, *res); why != "" {
				message = fmt.Sprintf("Metric %q assessed %s due to %s", m.Name, p, why)
			}
		}
	}
	if terminating {
		if worst == "" {
			return Successful, message
		}
		return worst, message
	}
	if !everything || worst == "" {
		return Running, ""
	}
	return worst, message
}

// assessMetric follows assessMetricStatus (analysis/analysis.go:579).
func assessMetric(m Metric, res Result, terminating bool) Phase {
	if res.Phase.Completed() {
		return res.Phase
	}
	if len(res.Measurements) == 0 {
		if terminating {
			return Successful
		}
		return Pending
	}
	if p, _ := assessLimits(m, res); p != "" {
		return p
	}
	successLimit := limit(m.ConsecutiveSuccessLimit, 0)
	if successLimit > 0 && res.ConsecutiveSuccess >= successLimit {
		return Successful
	}
	if n := m.effectiveCount(); n >= 0 && res.Count >= n {
		failureApplicable := m.FailureLimit == nil || *m.FailureLimit >= 0
		successApplicable := successLimit > 0
		switch {
		case failureApplicable && successApplicable:
			return Inconclusive
		case successApplicable:
			return Failed
		}
		return Successful
	}
	if terminating {
		return Successful
	}
	return Running
}

// assessLimits follows assessMetricFailureInconclusiveOrError
// (analysis/analysis.go:658): the last limit exceeded, in the order
// failure, inconclusive, consecutive errors, decides.
func assessLimits(m Metric, res Result) (Phase, string) {
	var p Phase
	var why string
	if fl := limit(m.FailureLimit, 0); fl >= 0 && res.Failed > fl {
		p, why = Failed, fmt.Sprintf("failed (%d) > failureLimit (%d)", res.Failed, fl)
	}
	if il := limit(m.InconclusiveLimit, 0); res.Inconclusive > il {
		p, why = Inconclusive, fmt.Sprintf("inconclusive (%d) > inconclusiveLimit (%d)", res.Inconclusive, il)
	}
	if el := limit(m.ConsecutiveErrorLimit, defaultConsecutiveErrorLimit); res.ConsecutiveError > el {
		p, why = Error, fmt.Sprintf("consecutiveErrors (%d) > consecutiveErrorLimit (%d)", res.ConsecutiveError, el)
	}
	return p, why
}
