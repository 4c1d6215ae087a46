package promrules_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/promrules"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

// scenarioSpec has three CUJs at 99.9% (a budget of 0.1%), so the Workbook's
// thresholds are 14.4×0.1% = 1.44% (1h/5m page), 6×0.1% = 0.6% (6h/30m page),
// 3×0.1% = 0.3% (1d/2h ticket) and 1×0.1% = 0.1% (3d/6h ticket).
const scenarioSpec = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: shop}
spec:
  cujs:
    - {name: spike, owner: t, routes: ["GET /spike"], availability: {objective: 99.9%}}
    - {name: below, owner: t, routes: ["GET /below"], availability: {objective: 99.9%}}
    - {name: above, owner: t, routes: ["GET /above"], availability: {objective: 99.9%}}
    - {name: slow, owner: t, routes: ["GET /slow"], latency: {threshold: 1s, objective: 99%}}
`

type promtoolTest struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval string     `yaml:"evaluation_interval"`
	Tests              []testCase `yaml:"tests"`
}

type testCase struct {
	Name           string       `yaml:"name"`
	Interval       string       `yaml:"interval"`
	InputSeries    []series     `yaml:"input_series"`
	AlertRuleTests []alertTest  `yaml:"alert_rule_test,omitempty"`
	PromQLTests    []promqlTest `yaml:"promql_expr_test,omitempty"`
}

type series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	AlertName string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	Labels      map[string]string `yaml:"exp_labels"`
	Annotations map[string]string `yaml:"exp_annotations"`
}

type promqlTest struct {
	Expr       string      `yaml:"expr"`
	EvalTime   string      `yaml:"eval_time"`
	ExpSamples []expSample `yaml:"exp_samples"`
}

type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

// alertKey names one alert of the generated rules: CUJ and window pair.
type alertKey struct{ cuj, long, short string }

// TestPromtoolShowsAlertsFiringWhenTheMathsSaysSo runs the generated rules in
// promtool's rule tests, with counters whose every value the comments derive.
// Traffic is 1000 requests a minute per CUJ, split over two groups (the sum
// across groups is what counts), scraped and evaluated every minute.
func TestPromtoolShowsAlertsFiringWhenTheMathsSaysSo(t *testing.T) {
	promtool := testtool.Path(t, "promtool")
	svc, err := spec.Parse("shop.yaml", []byte(scenarioSpec))
	if err != nil {
		t.Fatal(err)
	}
	svcOne, _ := svc.Service()
	rules := generate(t, svcOne, promrules.Options{})
	labelsOf, annotationsOf := alertsOf(t, rules)
	alerts := func(keys ...alertKey) []expAlert {
		out := []expAlert{}
		for _, k := range keys {
			out = append(out, expAlert{Labels: labelsOf[k], Annotations: annotationsOf[k]})
		}
		return out
	}
	requests := func(cuj, code, group, values string) series {
		return series{
			Series: fmt.Sprintf(`slolab_requests_total{cuj=%q,route="GET /%s",method="GET",code=%q,group=%q}`, cuj, cuj, code, group),
			Values: values,
		}
	}
	var (
		spike3d = alertKey{"spike", "3d", "6h"}
		spike1d = alertKey{"spike", "1d", "2h"}
		spike6h = alertKey{"spike", "6h", "30m"}
		spike1h = alertKey{"spike", "1h", "5m"}
	)
	file := promtoolTest{
		RuleFiles:          []string{"shop.rules.yaml"},
		EvaluationInterval: "1m",
		Tests: []testCase{{
			// spike: two healthy hours, then 10% errors from minute 120.
			// At minute 120+k the bad count is 100k.
			//  - 3d/6h ticket (0.1%): the 3d ratio is the ratio of summed 5m
			//    increases since minute 1: 100·S(k) / (10000 + 5000·(116+k)),
			//    S(k) = Σ_{j≤k} min(j,5). k=3: 600/605000 = 0.099% (no);
			//    k=4: 1000/610000 = 0.164% (fires at 124m; 6h: 400/124000).
			//  - 1d/2h ticket (0.3%): the same ratio; k=5: 1500/615000 =
			//    0.244% (no); k=6: 2000/620000 = 0.323% (fires at 126m).
			//  - 6h/30m page (0.6%): 100k / 1000·(120+k); k=7: 0.551% (no);
			//    k=8: 800/128000 = 0.625% (fires at 128m).
			//  - 1h/5m page (1.44%): 100k / 60000; k=8: 1.33% (no); k=9: 1.5%
			//    (fires at 129m).
			Name:     "a step to 10% errors fires each alert at its predicted minute",
			Interval: "1m",
			InputSeries: []series{
				requests("spike", "200", "control", "0+500x120 60450+450x60"),
				requests("spike", "200", "experiment", "0+500x120 60450+450x60"),
				requests("spike", "500", "control", "0x120 50+50x60"),
				requests("spike", "0", "experiment", "0x120 50+50x60"),
			},
			AlertRuleTests: []alertTest{
				{EvalTime: "123m", AlertName: promrules.AlertName, ExpAlerts: alerts()},
				{EvalTime: "124m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d)},
				{EvalTime: "125m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d)},
				{EvalTime: "126m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d, spike1d)},
				{EvalTime: "127m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d, spike1d)},
				{EvalTime: "128m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d, spike1d, spike6h)},
				{EvalTime: "129m", AlertName: promrules.AlertName, ExpAlerts: alerts(spike3d, spike1d, spike6h, spike1h)},
			},
		}, {
			// below burns at 14 (1.4% errors), just under the 1h/5m page's
			// 14.4: three hours of it never page on the 1h window, while
			// every slower alert fires. above burns at 15 and pages.
			Name:     "a burn rate just below 14.4 never pages on the 1h window",
			Interval: "1m",
			InputSeries: []series{
				requests("below", "200", "control", "0+986x180"),
				requests("below", "503", "control", "0+14x180"),
				requests("above", "200", "control", "0+985x180"),
				requests("above", "500", "control", "0+15x180"),
			},
			AlertRuleTests: []alertTest{
				{EvalTime: "60m", AlertName: promrules.AlertName, ExpAlerts: alerts(
					alertKey{"below", "3d", "6h"}, alertKey{"below", "1d", "2h"}, alertKey{"below", "6h", "30m"},
					alertKey{"above", "3d", "6h"}, alertKey{"above", "1d", "2h"}, alertKey{"above", "6h", "30m"}, alertKey{"above", "1h", "5m"},
				)},
				{EvalTime: "180m", AlertName: promrules.AlertName, ExpAlerts: alerts(
					alertKey{"below", "3d", "6h"}, alertKey{"below", "1d", "2h"}, alertKey{"below", "6h", "30m"},
					alertKey{"above", "3d", "6h"}, alertKey{"above", "1d", "2h"}, alertKey{"above", "6h", "30m"}, alertKey{"above", "1h", "5m"},
				)},
			},
			PromQLTests: []promqlTest{{
				Expr:       `slolab:slo_error_ratio:ratio1h{cuj="below"}`,
				EvalTime:   "180m",
				ExpSamples: []expSample{{Labels: `slolab:slo_error_ratio:ratio1h{cuj="below",service="shop",slo="availability"}`, Value: 0.014}},
			}, {
				// The 1d ratio of summed increases equals the true ratio.
				Expr:       `slolab:slo_error_ratio:ratio1d{cuj="below"}`,
				EvalTime:   "180m",
				ExpSamples: []expSample{{Labels: `slolab:slo_error_ratio:ratio1d{cuj="below",service="shop",slo="availability"}`, Value: 0.014}},
			}, {
				// Budget left after 3h at 14× of a 30d budget: the 30d ratio is
				// 1.4%, 14 budgets' worth, so 1 − 14 = −13.
				Expr:       `slolab:slo_error_budget_remaining{cuj="below"}`,
				EvalTime:   "180m",
				ExpSamples: []expSample{{Labels: `slolab:slo_error_budget_remaining{cuj="below",service="shop",slo="availability"}`, Value: -13}},
			}},
		}, {
			// slow: 1000 requests a minute, 990 within the 1s bucket, so 1%
			// are slow: exactly the 99% objective, a burn rate of 1.
			Name:     "the latency SLI reads the bucket at the threshold",
			Interval: "1m",
			InputSeries: []series{
				{Series: `slolab_request_duration_seconds_bucket{cuj="slow",group="none",le="0.5"}`, Values: "0+900x30"},
				{Series: `slolab_request_duration_seconds_bucket{cuj="slow",group="none",le="1"}`, Values: "0+990x30"},
				{Series: `slolab_request_duration_seconds_bucket{cuj="slow",group="none",le="+Inf"}`, Values: "0+1000x30"},
				{Series: `slolab_request_duration_seconds_count{cuj="slow",group="none"}`, Values: "0+1000x30"},
			},
			PromQLTests: []promqlTest{{
				Expr:       `slolab:slo_error_ratio:ratio30m{cuj="slow"}`,
				EvalTime:   "30m",
				ExpSamples: []expSample{{Labels: `slolab:slo_error_ratio:ratio30m{cuj="slow",service="shop",slo="latency"}`, Value: 0.01}},
			}},
			AlertRuleTests: []alertTest{{EvalTime: "30m", AlertName: promrules.AlertName, ExpAlerts: alerts()}},
		}},
	}
	runPromtool(t, promtool, rules, file)
}

// runPromtool runs `promtool test rules` on the test file, with the rules
// written where its rule_files say.
func runPromtool(t *testing.T, promtool string, rules []byte, file promtoolTest) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file.RuleFiles[0]), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	testPath := filepath.Join(dir, "rules_test.yaml")
	if err := os.WriteFile(testPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", testPath)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules said:\n%s", out)
	}
}

// alertsOf reads every alert's labels and annotations from generated rules,
// keyed by CUJ and window pair.
func alertsOf(t *testing.T, rules []byte) (map[alertKey]map[string]string, map[alertKey]map[string]string) {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(rules, &file); err != nil {
		t.Fatal(err)
	}
	labels, annotations := map[alertKey]map[string]string{}, map[alertKey]map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			k := alertKey{r.Labels["cuj"], r.Labels["long_window"], r.Labels["short_window"]}
			labels[k], annotations[k] = r.Labels, r.Annotations
		}
	}
	return labels, annotations
}
