package argo_test

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/gen/argo"
	"slolab.dev/slolab/internal/argoanalysis"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

func chat(t *testing.T) *spec.Service {
	t.Helper()
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestTemplatesForTheChatExampleMatchTheGoldenFiles(t *testing.T) {
	out, err := argo.Generate(chat(t), argo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Files) != 13 {
		t.Errorf("%d files, want 2 per CUJ and the Rollout snippet (13)", len(out.Files))
	}
	for _, f := range out.Files {
		testtool.Golden(t, filepath.Join("testdata", "chat", f.Name), f.Data)
	}
}

func TestTemplatesValidateAgainstTheAnalysisTemplateCRD(t *testing.T) {
	schema := testtool.CRDSchema(t, testtool.ModuleFile(t, testtool.ArgoRollouts, "manifests", "crds", "analysis-template-crd.yaml"), "v1alpha1")
	var out *gen.Output
	for _, noData := range []argo.NoData{argo.NoDataInconclusive, argo.NoDataFail} {
		var err error
		out, err = argo.Generate(chat(t), argo.Options{NoData: noData})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range out.Files {
			if !strings.HasPrefix(f.Name, "analysistemplate-") {
				continue
			}
			n++
			if err := testtool.ValidateYAML(schema, f.Data); err != nil {
				t.Errorf("--no-data %s: %s: %v", noData, f.Name, err)
			}
		}
		if n != 12 {
			t.Errorf("validated %d templates, want 12", n)
		}
	}
	// The validator is strict: a misspelt field fails.
	bad := strings.Replace(string(out.Files[0].Data), "successCondition", "sucessCondition", 1)
	if err := testtool.ValidateYAML(schema, []byte(bad)); err == nil {
		t.Error("a misspelt field passed the CRD schema")
	}
}

func TestMetricNamesAreUniqueAcrossTemplatesAndConditionsUseNoWildcards(t *testing.T) {
	out, err := argo.Generate(chat(t), argo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, f := range out.Files {
		var doc struct {
			Kind string
			Spec struct {
				Metrics []struct {
					Name             string
					SuccessCondition string `yaml:"successCondition"`
					FailureCondition string `yaml:"failureCondition"`
					Provider         struct {
						Web struct {
							JSONPath string `yaml:"jsonPath"`
						}
					}
				}
			}
		}
		if err := yaml.Unmarshal(f.Data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range doc.Spec.Metrics {
			if prev, dup := seen[m.Name]; dup {
				t.Errorf("metric %q is in %s and %s", m.Name, prev, f.Name)
			}
			seen[m.Name] = f.Name
			for _, s := range []string{m.SuccessCondition, m.FailureCondition, m.Provider.Web.JSONPath} {
				if strings.Contains(s, "*") {
					t.Errorf("%s: %q uses a wildcard", m.Name, s)
				}
			}
		}
	}
	if len(seen) != 18 {
		t.Errorf("%d metrics, want 12 SLOs and 6 verdicts", len(seen))
	}
}

// analysisOf runs every metric of the templates of one CUJ through Argo
// Rollouts v1.8.3's rules (internal/argoanalysis), each measurement's
// result given by prom (a Prometheus query's sample values) or web (the
// verdict endpoint's CUJ verdict).
func analysisOf(t *testing.T, out *gen.Output, cuj string, prom func(i int) []float64, web func(i int) string) (argoanalysis.Run, argoanalysis.Run) {
	t.Helper()
	var runs [2]argoanalysis.Run
	for k, name := range []string{"analysistemplate-" + cuj + ".yaml", "analysistemplate-" + cuj + "-verdict.yaml"} {
		var data []byte
		for _, f := range out.Files {
			if f.Name == name {
				data = f.Data
			}
		}
		metrics, err := argoanalysis.Metrics(data)
		if err != nil || len(metrics) == 0 {
			t.Fatalf("%s: %v (%d metrics)", name, err, len(metrics))
		}
		runs[k] = argoanalysis.Analyze(metrics, 100, func(m argoanalysis.Metric, i int) argoanalysis.Phase {
			var p argoanalysis.Phase
			var err error
			if m.Provider.Prometheus != nil {
				p, err = argoanalysis.Prometheus(prom(i), m)
			} else {
				body := fmt.Sprintf(`{"verdict": %q, "cujs": [{"cuj": %q, "verdict": %q}]}`, web(i), cuj, web(i))
				p, err = argoanalysis.Web(200, []byte(body), m)
			}
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			return p
		})
	}
	return runs[0], runs[1]
}

func TestAnIdleCUJsAnalysisNeverEndsSuccessfulUnderArgosRules(t *testing.T) {
	noSample := func(int) []float64 { return nil }
	nan := func(int) []float64 { return []float64{math.NaN()} }
	clean := func(int) []float64 { return []float64{0} }
	broken := func(int) []float64 { return []float64{0.5} }
	lateData := func(i int) []float64 { // traffic only for the last measurement
		if i == 4 {
			return []float64{0}
		}
		return nil
	}
	verdict := func(v string) func(int) string { return func(int) string { return v } }
	for _, tc := range []struct {
		name                     string
		noData                   argo.NoData
		prom                     func(int) []float64
		web                      func(int) string
		prometheus, verdictPhase argoanalysis.Phase
	}{
		{"no sample in any window pauses the rollout", "", noSample, verdict("inconclusive"), argoanalysis.Inconclusive, argoanalysis.Inconclusive},
		{"NaN in every window pauses the rollout", argo.NoDataInconclusive, nan, verdict("inconclusive"), argoanalysis.Inconclusive, argoanalysis.Inconclusive},
		{"no data in any window aborts with --no-data fail", argo.NoDataFail, noSample, verdict("inconclusive"), argoanalysis.Failed, argoanalysis.Failed},
		{"a clean canary passes", "", clean, verdict("pass"), argoanalysis.Successful, argoanalysis.Successful},
		{"a clean canary passes with --no-data fail", argo.NoDataFail, clean, verdict("pass"), argoanalysis.Successful, argoanalysis.Successful},
		{"a broken canary fails", "", broken, verdict("fail"), argoanalysis.Failed, argoanalysis.Failed},
		{"a broken canary fails with --no-data fail", argo.NoDataFail, broken, verdict("fail"), argoanalysis.Failed, argoanalysis.Failed},
		{"one conclusive measurement decides", "", lateData, func(i int) string {
			if i == 4 {
				return "pass"
			}
			return "inconclusive"
		}, argoanalysis.Successful, argoanalysis.Successful},
		{"one conclusive measurement decides with --no-data fail", argo.NoDataFail, lateData, func(i int) string {
			if i == 4 {
				return "pass"
			}
			return "inconclusive"
		}, argoanalysis.Successful, argoanalysis.Successful},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := argo.Generate(chat(t), argo.Options{NoData: tc.noData})
			if err != nil {
				t.Fatal(err)
			}
			prom, web := analysisOf(t, out, "login", tc.prom, tc.web)
			if prom.Phase != tc.prometheus || web.Phase != tc.verdictPhase {
				t.Errorf("phases: prometheus %s (%s), verdict %s (%s); want %s, %s", prom.Phase, prom.Message, web.Phase, web.Message, tc.prometheus, tc.verdictPhase)
			}
		})
	}
}

// The limits slolab generated before: count 5 with inconclusiveLimit 5.
// Argo ends such a metric Successful on five inconclusive measurements.
func TestArgosRulesPassAnIdleCUJWhenTheInconclusiveLimitEqualsTheCount(t *testing.T) {
	five := 5
	m := argoanalysis.Metric{Name: "m", Interval: "1m", Count: &five, InconclusiveLimit: &five,
		SuccessCondition: "len(result) > 0 && result[0] <= 0.01", FailureCondition: "len(result) > 0 && result[0] > 0.01"}
	m.FailureLimit = new(int)
	run := argoanalysis.Analyze([]argoanalysis.Metric{m}, 100, func(m argoanalysis.Metric, _ int) argoanalysis.Phase {
		p, _ := argoanalysis.Prometheus(nil, m)
		return p
	})
	if run.Phase != argoanalysis.Successful || run.Metrics[0].Inconclusive != 5 || run.Rounds != 5 {
		t.Errorf("run %+v, want Successful after 5 inconclusive measurements", run)
	}
}

func TestTheNoDataPolicyIsChecked(t *testing.T) {
	for _, s := range []string{"inconclusive", "fail"} {
		if _, err := argo.ParseNoData(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := argo.ParseNoData("pass"); err == nil || !strings.Contains(err.Error(), "inconclusive (pause for a human) or fail (abort)") {
		t.Errorf("pass: %v", err)
	}
}
