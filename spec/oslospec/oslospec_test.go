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
	for _, name := range []string{"fleet-v1", "latency-occurrences", "ratio-timeslices", "timeslices-pitfalls"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".openslo.yaml")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := oslospec.Import(name+".yaml", data, oslospec.Options{})
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
			testtool.Golden(t, filepath.Join("testdata", name+".slolab.yaml"), []byte(golden))
		})
	}
}

func TestWhatCannotMapIsReported(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "timeslices-pitfalls.openslo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := oslospec.Import("timeslices-pitfalls.yaml", data, oslospec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`timeslices-pitfalls.yaml:4:1: SLO "uplink-uptime": OpenSLO has no routes; CUJ uplink-uptime gets the placeholder route "GET /uplink-uptime" and owner "unassigned"`,
		`timeslices-pitfalls.yaml:29:7: calendar window 1m from 2024-01-01 00:00:00 Asia/Tokyo: slolab's calendar windows are months; it is read as a rolling window`,
		`timeslices-pitfalls.yaml:29:17: time window 1m is outside slolab's 1h to 400d (OpenSLO's m is a minute; a month is M); the CUJ uses 30d`,
		`timeslices-pitfalls.yaml:34:20: budgeting method Timeslices (slices of 1m good at 0.95) is not imported: slolab counts events (Occurrences)`,
		`timeslices-pitfalls.yaml:41:7: objective "Contract" of SLO "uplink-uptime" is not imported: slolab has one objective per SLI; the first, "Internal", is`,
		`timeslices-pitfalls.yaml:19:11: metric source type "Any" is not Prometheus: its query is not imported, and slolab's own metrics measure the CUJ`,
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
