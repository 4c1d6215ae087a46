package gen_test

import (
	"testing"
	"time"

	"slolab.dev/slolab/gen"
	"slolab.dev/slolab/spec"
)

func TestTheBucketAtAThresholdIsMatchedInBothSpellings(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, `le="0.5"`},
		{time.Second, `le=~"1(\\.0)?"`},
		{2 * time.Second, `le=~"2(\\.0)?"`},
		{1500 * time.Millisecond, `le="1.5"`},
		{300 * time.Millisecond, `le="0.3"`},
		{250 * time.Microsecond, `le="0.00025"`},
	} {
		if got := gen.LeMatcher(tt.d); got != tt.want {
			t.Errorf("LeMatcher(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

func TestThresholdsAreExact(t *testing.T) {
	for _, tt := range []struct {
		r    spec.Ratio
		want string
	}{
		{spec.NewRatio(144, 10000), "0.0144"},
		{spec.NewRatio(1, 3), "(1 / 3)"},
		{spec.NewRatio(6, 1000), "0.006"},
	} {
		if got := gen.Threshold(tt.r); got != tt.want {
			t.Errorf("Threshold(%v) = %s, want %s", tt.r, got, tt.want)
		}
	}
}

func TestEventsOverReadsSlolabsMetricsOrTheSpecsQueries(t *testing.T) {
	svc, err := spec.LoadService("../examples/chat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slos := gen.SLOs(svc)
	if len(slos) != 12 || slos[0].Name() != "login-availability" || slos[1].Name() != "login-latency" {
		t.Fatalf("SLOs = %d, first %s", len(slos), slos[0].Name())
	}
	ev, err := gen.EventsOver(slos[1], time.Hour, `job="chat"`)
	if err != nil {
		t.Fatal(err)
	}
	want := gen.Events{
		Bad:     `(sum(increase(slolab_request_duration_seconds_count{cuj="login",job="chat"}[1h])) - sum(increase(slolab_request_duration_seconds_bucket{cuj="login",le="0.5",job="chat"}[1h])))`,
		BadOnly: `(sum(increase(slolab_request_duration_seconds_count{cuj="login",job="chat"}[1h])) - sum(increase(slolab_request_duration_seconds_bucket{cuj="login",le="0.5",job="chat"}[1h])))`,
		Total:   `sum(increase(slolab_request_duration_seconds_count{cuj="login",job="chat"}[1h]))`,
	}
	if ev != want {
		t.Errorf("latency events = %+v\nwant %+v", ev, want)
	}
	s := slos[0]
	s.Query = &spec.QueryPair{Good: "sum(increase(ok[{{.window}}]))", Total: "sum(increase(all[{{ .window }}]))"}
	ev, err = gen.EventsOver(s, 30*24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "(sum(sum(increase(all[30d]))) - sum(sum(increase(ok[30d]))))"; ev.Bad != want {
		t.Errorf("bad = %s, want %s", ev.Bad, want)
	}
	s.Query = &spec.QueryPair{Bad: "x[{{.windw}}]", Total: "y", Pos: spec.Pos{File: "s.yaml", Line: 3, Col: 5}}
	if _, err := gen.EventsOver(s, time.Hour, ""); err == nil || err.Error()[:9] != "s.yaml:3:" {
		t.Errorf("a misspelt template variable: err = %v", err)
	}
}
