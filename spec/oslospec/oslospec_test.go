package oslospec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/spec/oslospec"
)

// Every OpenSLO example imports into a spec that slolab reads, and what did
// not map is said in notes and comments.
func TestTheOpenSLOExamplesImport(t *testing.T) {
	for _, name := range []string{"oslo-v1.yaml", "occurences-slo.yaml", "ratio-timeslices.yaml", "timeslices-slo.yaml"} {
		t.Run(name, func(t *testing.T) {
			path := testtool.SharedTestdata(t, "openslo", name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := oslospec.Import(name, data, oslospec.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Services) == 0 {
				t.Fatalf("no service imported; notes:\n%s", strings.Join(res.Notes, "\n"))
			}
			var out []string
			for _, s := range res.Services {
				y := s.YAML()
				if _, err := spec.Parse("imported.yaml", y); err != nil {
					t.Fatalf("the imported spec is invalid: %v\n%s", err, y)
				}
				out = append(out, string(y))
			}
			golden := strings.Join(out, "---\n") + "# Notes:\n# " + strings.Join(res.Notes, "\n# ") + "\n"
			testtool.Golden(t, filepath.Join("testdata", strings.TrimSuffix(name, ".yaml")+".slolab.yaml"), []byte(golden))
		})
	}
}

func TestWhatCannotMapIsReported(t *testing.T) {
	data, err := os.ReadFile(testtool.SharedTestdata(t, "openslo", "timeslices-slo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := oslospec.Import("timeslices-slo.yaml", data, oslospec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`timeslices-slo.yaml:2:1: SLO "service-availability": OpenSLO has no routes; CUJ service-availability gets the placeholder route "GET /service-availability" and owner "unassigned"`,
		`timeslices-slo.yaml:27:7: calendar window 1m from 2022-01-01 12:00:00 America/New_York: slolab's calendar windows are months; it is read as a rolling window`,
		`timeslices-slo.yaml:27:17: time window 1m is outside slolab's 1h to 400d (OpenSLO's m is a minute; a month is M); the CUJ uses 30d`,
		`timeslices-slo.yaml:32:20: budgeting method Timeslices (slices of 1m good at 0.99) is not imported: slolab counts events (Occurrences)`,
		`timeslices-slo.yaml:39:7: objective "SLA" of SLO "service-availability" is not imported: slolab has one objective per SLI; the first, "Internal objective", is`,
		`timeslices-slo.yaml:17:11: metric source type "Any" is not Prometheus: its query is not imported, and slolab's own metrics measure the CUJ`,
	}
	if got := strings.Join(res.Notes, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestAnOpenSLODocumentOfAnotherVersionIsAnError(t *testing.T) {
	_, err := oslospec.Import("x.yaml", []byte("apiVersion: openslo/v1alpha\nkind: SLO\n"), oslospec.Options{})
	if err == nil || err.Error() != `x.yaml:1:1: apiVersion: want openslo/v1, got "openslo/v1alpha"` {
		t.Errorf("err = %v", err)
	}
}
