package main

import (
	"strings"
	"testing"
)

func TestASkippedRealClockTestIsASkipNotAPass(t *testing.T) {
	got := renderTestResults(parseGoTestV(`=== RUN   TestRealClockA
    realtime_test.go:62: sent 5000 late 0
--- PASS: TestRealClockA (10.12s)
=== RUN   TestRealClockB
    realtime_test.go:25: real-time check: set SLOLAB_REALTIME=1 on a quiet machine, without -race
--- SKIP: TestRealClockB (0.00s)
PASS
`), "0.50 0.40 0.30")
	for _, want := range []string{
		"| TestRealClockB | SKIP | 0.00s |",
		"1 passed, 0 failed, 1 skipped of 2.",
		"- **misses goal**: 1 of load's 2 real-clock tests did not pass on this run (load average 0.50 0.40 0.30 before it): TestRealClockB (SKIP)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "meets goal") {
		t.Errorf("a run with a skip meets the goal:\n%s", got)
	}
}

func TestTheSessionNamesTheSectionsKeptFromEarlierRuns(t *testing.T) {
	old := "<!-- bench:proxy:begin -->\nRun 2026-11-23 13:51 UTC, load average 0.74\n<!-- bench:proxy:end -->\n" +
		"<!-- bench:exact:begin -->\nsomething\n<!-- bench:exact:end -->\n" +
		"<!-- bench:delay:begin -->\n*Not run yet: `go run ./bench -only delay`.*\n<!-- bench:delay:end -->\n" +
		"<!-- bench:load:begin -->\nRun 2026-11-24 10:00 UTC\n<!-- bench:load:end -->\n"
	got := keptSections(old, map[string]string{"load": "new"})
	want := []string{"exact (date unknown)", "proxy (run 2026-11-23 13:51 UTC)"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("keptSections = %q, want %q", got, want)
	}
}
