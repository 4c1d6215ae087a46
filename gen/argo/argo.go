// Package argo generates Argo Rollouts AnalysisTemplates that judge a canary
// per CUJ: one template per CUJ reading Prometheus, one per CUJ asking
// `slolab canary serve` for its verdict (the web provider), and a Rollout
// snippet that runs them all. Argo merges the metrics of every template into
// one AnalysisRun and fails it when any metric fails, so a release passes only
// when every CUJ passes: a low-traffic journey is judged on its own numbers,
// not drowned in the total. Metric names carry the CUJ so they stay unique
// across templates.
package argo

import (
	"bytes"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/spec"
)

// Options tune the templates.
type Options struct {
	// PrometheusAddress is where the Prometheus provider queries.
	PrometheusAddress string
	// CanaryMatchers select the canary's series in slolab's metrics; they
	// may use the template's args, e.g. {{args.canary-hash}}.
	CanaryMatchers string
	// Window is the range each measurement's error ratio covers.
	Window time.Duration
	// Interval and Count: how often and how many times a metric is measured.
	Interval time.Duration
	Count    int
	// MaxBurnRate is the burn rate a canary may reach: 1 means it must meet
	// the SLO exactly, not spend the budget faster than the objective allows.
	MaxBurnRate spec.Ratio
	// VerdictURL is the `slolab canary serve` endpoint the web templates call.
	VerdictURL string
	// NoData is how an analysis ends when no measurement had data to judge:
	// NoDataInconclusive (the default: the Rollout pauses for a human) or
	// NoDataFail (the Rollout aborts). It never ends Successful.
	NoData NoData
}

// NoData is what an analysis whose every measurement was inconclusive
// (no traffic, or too little for the verdict endpoint) ends as.
type NoData string

// The choices. Argo Rollouts ends a metric Successful when its count is
// reached with no more than inconclusiveLimit inconclusive measurements, so
// a limit equal to the count passes an idle CUJ; these never do.
const (
	// NoDataInconclusive: inconclusiveLimit is count−1, so an analysis whose
	// every measurement is inconclusive ends Inconclusive and the Rollout
	// pauses; one conclusive measurement among them decides as usual.
	NoDataInconclusive NoData = "inconclusive"
	// NoDataFail: each metric gets a companion NAME-data metric that fails
	// when none of its count measurements had data, so the analysis ends
	// Failed and the Rollout aborts.
	NoDataFail NoData = "fail"
)

// sentence says, for a template's header, what happens when every
// measurement saw what.
func (n NoData) sentence(what string) string {
	if n == NoDataFail {
		return fmt.Sprintf("When every measurement saw %s, the -data metric fails the analysis (the Rollout aborts).", what)
	}
	return fmt.Sprintf("When every measurement saw %s, the analysis ends Inconclusive (the Rollout pauses), never Successful.", what)
}

// ParseNoData reads inconclusive or fail.
func ParseNoData(s string) (NoData, error) {
	switch NoData(s) {
	case NoDataInconclusive, NoDataFail:
		return NoData(s), nil
	}
	return "", fmt.Errorf("want inconclusive (pause for a human) or fail (abort), got %q", s)
}

// Defaults.
const (
	DefaultPrometheusAddress = "http://prometheus.monitoring.svc:9090"
	DefaultCanaryMatchers    = `rollouts_pod_template_hash="{{args.canary-hash}}"`
	DefaultVerdictURL        = "{{args.verdict-url}}"
	apiVersion               = "argoproj.io/v1alpha1"
)

func (o *Options) defaults() {
	if o.PrometheusAddress == "" {
		o.PrometheusAddress = DefaultPrometheusAddress
	}
	if o.CanaryMatchers == "" {
		o.CanaryMatchers = DefaultCanaryMatchers
	}
	if o.Window == 0 {
		o.Window = 5 * time.Minute
	}
	if o.Interval == 0 {
		o.Interval = time.Minute
	}
	if o.Count == 0 {
		o.Count = 5
	}
	if o.MaxBurnRate.IsZero() {
		o.MaxBurnRate = spec.One
	}
	if o.VerdictURL == "" {
		o.VerdictURL = DefaultVerdictURL
	}
	if o.NoData == "" {
		o.NoData = NoDataInconclusive
	}
}

type object struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   metadata       `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
}

type metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

type arg struct {
	Name      string         `yaml:"name"`
	Value     string         `yaml:"value,omitempty"`
	ValueFrom map[string]any `yaml:"valueFrom,omitempty"`
}

type metric struct {
	Name              string         `yaml:"name"`
	Interval          string         `yaml:"interval"`
	Count             int            `yaml:"count"`
	FailureLimit      int            `yaml:"failureLimit"`
	InconclusiveLimit int            `yaml:"inconclusiveLimit"`
	SuccessCondition  string         `yaml:"successCondition"`
	FailureCondition  string         `yaml:"failureCondition,omitempty"`
	Provider          map[string]any `yaml:"provider"`
}

// judged sets a metric's limits for the no-data policy, from its two
// conditions and the condition that says the measurement had data, and
// adds the companion metric NoDataFail asks for.
func judged(m metric, hasData string, opt Options) []metric {
	m.FailureLimit = 0
	if opt.NoData == NoDataFail {
		// Inconclusive measurements never end the judging metric; the
		// companion fails when every one of its count measurements lacked
		// data (a success condition alone: false is a failure).
		m.InconclusiveLimit = opt.Count
		data := m
		data.Name = m.Name + "-data"
		data.SuccessCondition = hasData
		data.FailureCondition = ""
		data.FailureLimit = opt.Count - 1
		data.InconclusiveLimit = 0
		return []metric{m, data}
	}
	// One more inconclusive measurement than the limit ends the metric
	// Inconclusive: only when all count of them were.
	m.InconclusiveLimit = opt.Count - 1
	return []metric{m}
}

// TemplateName is the Prometheus template of a CUJ; VerdictTemplateName its web variant.
func TemplateName(svc *spec.Service, c *spec.CUJ) string { return "slolab-" + svc.Name + "-" + c.Name }

// VerdictTemplateName is the web-provider template of a CUJ.
func VerdictTemplateName(svc *spec.Service, c *spec.CUJ) string {
	return TemplateName(svc, c) + "-verdict"
}

// Generate writes, per CUJ, analysistemplate-CUJ.yaml (Prometheus) and
// analysistemplate-CUJ-verdict.yaml (web), and rollout-snippet.yaml.
func Generate(svc *spec.Service, opt Options) (*gen.Output, error) {
	opt.defaults()
	out := &gen.Output{}
	labels := map[string]string{"app.kubernetes.io/managed-by": "slolab", "slolab.dev/service": svc.Name}
	slos := gen.SLOs(svc)
	for _, c := range svc.CUJs {
		var metrics []metric
		for _, s := range slos {
			if s.CUJ != c {
				continue
			}
			m, err := prometheusMetrics(s, opt)
			if err != nil {
				return nil, err
			}
			if s.Query != nil {
				out.Notef("%s: the spec's own %s queries cannot be narrowed to the canary; the template judges whatever they select (use {{args.canary-hash}} in them to narrow)", s.Name(), s.Kind)
			}
			metrics = append(metrics, m...)
		}
		tmpl := object{
			APIVersion: apiVersion, Kind: "AnalysisTemplate",
			Metadata: metadata{Name: TemplateName(svc, c), Labels: labels},
			Spec: map[string]any{
				"args":    []arg{{Name: "canary-hash"}},
				"metrics": metrics,
			},
		}
		data, err := document(fmt.Sprintf("CUJ %s judged from Prometheus: each SLO's error ratio over %s on the canary must stay within %s× its budget. %s", c.Name, gen.PromDuration(opt.Window), opt.MaxBurnRate.Decimal(), opt.NoData.sentence("no canary request in the window")), tmpl)
		if err != nil {
			return nil, err
		}
		out.Files = append(out.Files, gen.File{Name: "analysistemplate-" + c.Name + ".yaml", Data: data})

		web := object{
			APIVersion: apiVersion, Kind: "AnalysisTemplate",
			Metadata: metadata{Name: VerdictTemplateName(svc, c), Labels: labels},
			Spec: map[string]any{
				"args":    []arg{{Name: "verdict-url"}},
				"metrics": verdictMetrics(c, opt),
			},
		}
		data, err = document(fmt.Sprintf("CUJ %s judged by `slolab canary serve`: its verdict for this CUJ, from the JSON {\"verdict\": ..., \"cujs\": [{\"cuj\": ..., \"verdict\": \"pass|fail|inconclusive\"}]}. %s", c.Name, opt.NoData.sentence("an inconclusive verdict")), web)
		if err != nil {
			return nil, err
		}
		out.Files = append(out.Files, gen.File{Name: "analysistemplate-" + c.Name + "-verdict.yaml", Data: data})
	}
	data, err := rolloutSnippet(svc)
	if err != nil {
		return nil, err
	}
	out.Files = append(out.Files, gen.File{Name: "rollout-snippet.yaml", Data: data})
	return out, nil
}

func prometheusMetrics(s gen.SLO, opt Options) ([]metric, error) {
	ev, err := gen.EventsOver(s, opt.Window, opt.CanaryMatchers)
	if err != nil {
		return nil, err
	}
	limit, ok := opt.MaxBurnRate.Mul(s.Budget())
	if !ok {
		return nil, fmt.Errorf("%s: burn rate %s × budget %s does not fit an exact ratio", s.Name(), opt.MaxBurnRate.Decimal(), s.Budget())
	}
	th := gen.Threshold(limit)
	// No traffic in the window gives no sample or NaN: neither success nor
	// failure, so the measurement is inconclusive rather than a pass.
	measured := "len(result) > 0 && !isNaN(result[0])"
	return judged(metric{
		Name:             s.Name(),
		Interval:         gen.PromDuration(opt.Interval),
		Count:            opt.Count,
		SuccessCondition: fmt.Sprintf("%s && result[0] <= %s", measured, th),
		FailureCondition: fmt.Sprintf("%s && result[0] > %s", measured, th),
		Provider: map[string]any{"prometheus": map[string]any{
			"address": opt.PrometheusAddress,
			"query":   fmt.Sprintf("%s\n/\n%s\n", ev.Bad, ev.Total),
		}},
	}, measured, opt), nil
}

// verdictMetrics ask the verdict endpoint; its inconclusive (too little
// traffic for the exact tests) is the no-data case.
func verdictMetrics(c *spec.CUJ, opt Options) []metric {
	return judged(metric{
		Name:             c.Name + "-verdict",
		Interval:         gen.PromDuration(opt.Interval),
		Count:            opt.Count,
		SuccessCondition: `result == "pass"`,
		FailureCondition: `result == "fail"`,
		Provider: map[string]any{"web": map[string]any{
			"url":            opt.VerdictURL,
			"jsonPath":       fmt.Sprintf(`{$.cujs[?(@.cuj=="%s")].verdict}`, c.Name),
			"timeoutSeconds": 10,
		}},
	}, `result != "inconclusive"`, opt)
}

func rolloutSnippet(svc *spec.Service) ([]byte, error) {
	var prom, web []map[string]string
	for _, c := range svc.CUJs {
		prom = append(prom, map[string]string{"templateName": TemplateName(svc, c)})
		web = append(web, map[string]string{"templateName": VerdictTemplateName(svc, c)})
	}
	rollout := object{
		APIVersion: apiVersion, Kind: "Rollout",
		Metadata: metadata{Name: svc.Name},
		Spec: map[string]any{"strategy": map[string]any{"canary": map[string]any{
			"analysis": map[string]any{
				"templates": prom,
				"args":      []arg{{Name: "canary-hash", ValueFrom: map[string]any{"podTemplateHashValue": "Latest"}}},
			},
			"steps": []map[string]any{
				{"setWeight": 10},
				{"pause": map[string]string{"duration": "10m"}},
				{"setWeight": 50},
				{"pause": map[string]string{"duration": "10m"}},
			},
		}}},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Merge into your Rollout: a background analysis that runs every CUJ's template.\n")
	fmt.Fprintf(&b, "# Argo merges their metrics into one AnalysisRun and fails it when any fails (AND).\n")
	fmt.Fprintf(&b, "# To ask `slolab canary serve` instead of Prometheus, list the -verdict templates:\n")
	for _, w := range web {
		fmt.Fprintf(&b, "#   - templateName: %s\n", w["templateName"])
	}
	fmt.Fprintf(&b, "# with the argument verdict-url set to the server's verdict endpoint.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(rollout); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func document(comment string, v any) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by `slolab gen argo-rollouts`. %s\n", comment)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
