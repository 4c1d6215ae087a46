package argo_test

import (
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"slolab.dev/slolab/gen/argo"
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
	out, err := argo.Generate(chat(t), argo.Options{})
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
			t.Errorf("%s: %v", f.Name, err)
		}
	}
	if n != 12 {
		t.Errorf("validated %d templates, want 12", n)
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
