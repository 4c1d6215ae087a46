package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"slolab.dev/slolab/spec"
)

func TestTheFleetsMetricsAreCumulativeAndAgreeWithEachOther(t *testing.T) {
	var b bytes.Buffer
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	if err := writePromSLOMetrics(&b, promSLOConfig{CUJs: 2, Members: 1, Days: 1}, start); err != nil {
		t.Fatal(err)
	}
	// The last sample of each series: the counts over the whole day.
	last := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("line %q: want series, value and timestamp", line)
		}
		last[f[0]] = f[1]
	}
	minutes := 24 * 60
	var ok200, bad, fast, all uint64
	for k := range minutes {
		tot, b, f := minuteCounts(1, 0, k, minutes)
		ok200, bad, fast, all = ok200+tot-b, bad+b, fast+f, all+tot
	}
	want := map[string]uint64{
		`slolab_requests_total{cuj="cuj-001",code="200",instance="m1"}`:                 ok200,
		`slolab_requests_total{cuj="cuj-001",code="503",instance="m1"}`:                 bad,
		`slolab_request_duration_seconds_bucket{cuj="cuj-001",instance="m1",le="0.5"}`:  fast,
		`slolab_request_duration_seconds_bucket{cuj="cuj-001",instance="m1",le="+Inf"}`: all,
	}
	for series, n := range want {
		if got := last[series]; got != itoa(int64(n)) {
			t.Errorf("%s ends at %s, want %d", series, got, n)
		}
	}
	if !strings.HasSuffix(b.String(), "# EOF\n") {
		t.Error("no # EOF at the end")
	}
	f, err := spec.Parse("fleet.yaml", []byte(promSLOSpec(3)))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := f.Service()
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.CUJs) != 3 || svc.CUJs[1].Latency.Threshold != 500*time.Millisecond {
		t.Errorf("spec: %d CUJs, the second's threshold %v; want 3 and 500ms, as the metrics' buckets say", len(svc.CUJs), svc.CUJs[1].Latency.Threshold)
	}
}
