package openslo_test

import (
	"reflect"
	"slices"
	"testing"

	"slolab.dev/slolab/gen/openslo"
	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/oslospec"
)

func TestOpenSLOForTheChatExampleMatchesTheGoldenFile(t *testing.T) {
	svc, err := spec.LoadService("../../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := openslo.Generate(svc, openslo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testtool.Golden(t, "testdata/chat.openslo.yaml", out.Files[0].Data)
}

// What slolab writes as OpenSLO, slolab imports back as the same CUJs,
// SLOs, alert table and error-budget policies (load profiles have no
// OpenSLO form).
func TestGeneratedOpenSLOImportsBackToTheSameSpec(t *testing.T) {
	for _, path := range []string{"../../examples/chat.yaml", "../promrules/testdata/istio.yaml"} {
		t.Run(path, func(t *testing.T) {
			want, err := spec.LoadService(path)
			if err != nil {
				t.Fatal(err)
			}
			out, err := openslo.Generate(want, openslo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := oslospec.Import("chat.openslo.yaml", out.Files[0].Data, oslospec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Services) != 1 {
				t.Fatalf("%d services imported", len(res.Services))
			}
			// Alert policies are shared by every SLO: each says its piece once.
			seen := map[string]int{}
			for _, n := range res.Notes {
				if seen[n]++; seen[n] == 2 {
					t.Errorf("note repeated: %s", n)
				}
			}
			f, err := spec.Parse("imported.yaml", res.Services[0].YAML())
			if err != nil {
				t.Fatalf("%v\n%s", err, res.Services[0].YAML())
			}
			got, _ := f.Service()
			for _, c := range want.CUJs {
				g := got.CUJ(c.Name)
				if g == nil {
					t.Fatalf("CUJ %s did not come back", c.Name)
				}
				ga, wa := slices.Clone(slo.AlertsFor(got, g)), slices.Clone(slo.AlertsFor(want, c))
				testtool.ZeroFields(&ga, "Pos")
				testtool.ZeroFields(&wa, "Pos")
				if !reflect.DeepEqual(ga, wa) {
					t.Errorf("%s: alert table %v, want %v", c.Name, ga, wa)
				}
				c.Load, c.Alerting, g.Alerting, c.Queries = nil, nil, nil, nil
			}
			want.Alerting, got.Alerting = nil, nil
			testtool.ZeroFields(want, "Pos")
			testtool.ZeroFields(got, "Pos")
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the spec:\n%s", res.Services[0].YAML())
			}
		})
	}
}
