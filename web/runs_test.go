package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"slolab.dev/slolab/experiment"
	"slolab.dev/slolab/proxy/admin"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// runsDashboard serves a dashboard whose only live part is the record of
// runs: its admin client points nowhere and is never polled.
func runsDashboard(t *testing.T, rec *Records) *httptest.Server {
	t.Helper()
	client, err := admin.NewClient("http://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Service: chat(t), Admin: client, Records: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func getRuns(t *testing.T, srv *httptest.Server) RunsView {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/api/experiments")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/experiments: %s", resp.Status)
	}
	var v RunsView
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustRatio(t *testing.T, s string) spec.Ratio {
	t.Helper()
	r, err := spec.ParseRatio(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ptr[T any](v T) *T { return &v }

// TestTheDashboardListsExperimentsAndGameDaysFromTheStore: a real store
// holding an experiment's report, a GameDay's, a skipped due time and a
// report that cannot be read; GET /api/experiments lists them newest first
// with the detail the page shows, compared whole.
func TestTheDashboardListsExperimentsAndGameDaysFromTheStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "slolab.db")
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 11, 17, 11, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	errs := experiment.Fisher(100, 200, 0, 800)
	expHist, ctlHist := []uint64{10, 90, 100}, []uint64{700, 100, 0}
	lat := experiment.MannWhitneyU(expHist, ctlHist)
	availMeasure := []experiment.Measure{{Call: `availability("update", "1m", "control")`, Value: "100", Detail: "0 of 800 requests failed over 1m, control group"}}
	rep := &experiment.Report{
		Experiment: "update-errors", Service: "chat", Description: "Half the experiment group's edits fail.",
		Verdict: experiment.Held, Reason: "the steady state held throughout and after the method",
		Started: at(0), Ended: at(6 * time.Minute), MethodStarted: at(time.Minute), MethodEnded: at(5 * time.Minute),
		SteadyBefore: []experiment.Outcome{{Expr: `availability("update", "1m", "control") >= 99.9`, Description: "the control group keeps its SLO",
			Section: experiment.SteadyState, Holds: true, Measures: availMeasure, At: at(time.Minute)}},
		Guardrails: []experiment.Outcome{{Expr: `burn_rate("login", "5m") > 14.4`, Section: experiment.AbortIf, Holds: false,
			Measures: []experiment.Measure{{Call: `burn_rate("login", "5m")`, Value: "0"}}, At: at(4 * time.Minute)}},
		Expect: []experiment.Outcome{{Expr: `recovers_within("update", 30s)`, Section: experiment.Expect, Holds: true, At: at(6 * time.Minute)}},
		SteadyAfter: []experiment.Outcome{{Expr: `availability("update", "1m", "control") >= 99.9`, Section: experiment.SteadyState,
			Holds: true, Measures: availMeasure, At: at(6 * time.Minute)}},
		Faults: []*experiment.FaultStage{{Step: "errors", Fault: "x-update", Match: "cuj=update group=experiment", Actions: "status 503",
			Intended: mustRatio(t, "50%"), Matched: 200, Injected: 100, From: at(time.Minute), To: at(5 * time.Minute)}},
		Comparison: []experiment.Comparison{{CUJ: "update", Targeted: true, Span: spec.Duration(4 * time.Minute),
			Experiment: experiment.GroupSLI{Total: 200, Bad: 100, Availability: 50, P99: spec.Duration(120 * time.Millisecond)},
			Control:    experiment.GroupSLI{Total: 800, Availability: 100, P99: spec.Duration(20 * time.Millisecond), WithinSLO: true},
			Errors:     errs, Latency: lat, Degraded: true, Summary: "the experiment group failed more often"}},
		Timeline: []experiment.Event{
			{At: at(time.Minute), Kind: experiment.EventFaultStart, Text: "x-update at 50%", Fault: "x-update"},
			{At: at(5 * time.Minute), Kind: experiment.EventMethodEnd, Text: "the method ended"},
		},
	}
	gd := &experiment.GameDayReport{
		GameDay: "drill", Description: "The upload path loses its blob store.", Announced: false, Facilitator: "ana",
		Responders: []string{"bo"}, Started: at(time.Hour), Ended: at(time.Hour + 20*time.Minute),
		Figures: experiment.Figures{FaultStart: at(time.Hour + time.Minute), Detected: at(time.Hour + 3*time.Minute), DetectedBy: "alert",
			Acked: at(time.Hour + 4*time.Minute), Recovered: at(time.Hour + 12*time.Minute),
			TimeToDetect: spec.Duration(2 * time.Minute), TimeToAcknowledge: spec.Duration(3 * time.Minute), TimeToRecover: spec.Duration(11 * time.Minute)},
		Alerts: []*experiment.Alert{{CUJ: "upload", SLO: "availability", Severity: "page", Long: spec.Duration(time.Hour), Short: spec.Duration(5 * time.Minute),
			Factor: mustRatio(t, "14.4"), Fired: at(time.Hour + 3*time.Minute), Resolved: at(time.Hour + 12*time.Minute)}},
		Experiments: []*experiment.Report{{Experiment: "blobs-down", Verdict: experiment.Failed, Reason: "upload missed its SLO"}},
		Timeline: []experiment.TimelineEntry{
			{At: at(time.Hour + time.Minute), Kind: "fault-start", Text: "blobs-reset at 100%", Experiment: "blobs-down"},
			{At: at(time.Hour + 3*time.Minute), Kind: "alert", Text: "upload availability page fired"},
			{At: at(time.Hour + 4*time.Minute), Kind: "ack", Text: "looking at uploads", Who: "bo"},
		},
	}
	var expJSON, gdJSON bytes.Buffer
	if err := rep.WriteJSON(&expJSON); err != nil {
		t.Fatal(err)
	}
	if err := gd.WriteJSON(&gdJSON); err != nil {
		t.Fatal(err)
	}
	runs := []sqlite.ExperimentRun{
		{Kind: "experiment", Name: "update-errors", Service: "chat", Verdict: "held", Reason: rep.Reason, Started: rep.Started, Ended: rep.Ended, Report: expJSON.Bytes()},
		{Kind: "gameday", Name: "drill", Service: "chat", Verdict: "failed", Reason: "detected after 2m0s, recovered after 11m0s", Started: gd.Started, Ended: gd.Ended, Report: gdJSON.Bytes()},
		{Kind: "experiment", Name: "update-errors", Service: "chat", Verdict: "skipped", Reason: "outside the allowed windows", Due: at(2 * time.Hour), Started: at(2 * time.Hour), Ended: at(2 * time.Hour)},
		{Kind: "experiment", Name: "broken", Service: "chat", Verdict: "held", Started: at(3 * time.Hour), Ended: at(3*time.Hour + time.Second), Report: []byte(`{"experiment": `)},
	}
	ids := make([]int64, len(runs))
	for i, r := range runs {
		if ids[i], err = st.AddExperimentRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	got := getRuns(t, runsDashboard(t, &Records{Store: st, Path: path}))
	want := RunsView{Store: path, Runs: []RunView{
		{ID: ids[3], Kind: "experiment", Name: "broken", Verdict: "held", Started: at(3 * time.Hour), Duration: spec.Duration(time.Second),
			ReportError: "the stored report cannot be read: unexpected end of JSON input"},
		{ID: ids[2], Kind: "experiment", Name: "update-errors", Verdict: "skipped", Reason: "outside the allowed windows", Due: at(2 * time.Hour), Started: at(2 * time.Hour)},
		{ID: ids[1], Kind: "gameday", Name: "drill", Verdict: "failed", Reason: "detected after 2m0s, recovered after 11m0s",
			Started: at(time.Hour), Duration: spec.Duration(20 * time.Minute), GameDay: &GameDayDetail{
				Description: "The upload path loses its blob store.", Facilitator: "ana", Responders: []string{"bo"}, Figures: gd.Figures,
				Alerts: []GameDayAlert{{Alert: "upload availability page: burn rate ≥ 14.4 over 1h and 5m",
					Fired: at(time.Hour + 3*time.Minute), Resolved: at(time.Hour + 12*time.Minute)}},
				Experiments: []GameDayExperiment{{Name: "blobs-down", Verdict: "failed", Reason: "upload missed its SLO"}},
				Timeline: []EventView{
					{At: at(time.Hour + time.Minute), Kind: "fault-start", Text: "blobs-reset at 100%", Experiment: "blobs-down"},
					{At: at(time.Hour + 3*time.Minute), Kind: "alert", Text: "upload availability page fired"},
					{At: at(time.Hour + 4*time.Minute), Kind: "ack", Text: "looking at uploads", Who: "bo"},
				},
			}},
		{ID: ids[0], Kind: "experiment", Name: "update-errors", Verdict: "held", Reason: "the steady state held throughout and after the method",
			Started: at(0), Duration: spec.Duration(6 * time.Minute), Experiment: &ExperimentDetail{
				Description: "Half the experiment group's edits fail.",
				Hypotheses: []HypothesisView{
					{Phase: PhaseBefore, Expr: `availability("update", "1m", "control") >= 99.9`, Description: "the control group keeps its SLO",
						Holds: true, Measures: availMeasure, At: at(time.Minute)},
					{Phase: PhaseGuardrail, Expr: `burn_rate("login", "5m") > 14.4`, Measures: []experiment.Measure{{Call: `burn_rate("login", "5m")`, Value: "0"}}, At: at(4 * time.Minute)},
					{Phase: PhaseExpect, Expr: `recovers_within("update", 30s)`, Holds: true, Measures: []experiment.Measure{}, At: at(6 * time.Minute)},
					{Phase: PhaseAfter, Expr: `availability("update", "1m", "control") >= 99.9`, Holds: true, Measures: availMeasure, At: at(6 * time.Minute)},
				},
				Faults: []FaultStageView{{Fault: "x-update", Match: "cuj=update group=experiment", Actions: "status 503",
					Intended: mustRatio(t, "50%"), Realised: "50%", Matched: 200, Injected: 100}},
				Comparisons: []ComparisonView{{CUJ: "update", Targeted: true,
					Experiment: GroupView{Total: 200, Bad: 100, Availability: 50, P99: spec.Duration(120 * time.Millisecond)},
					Control:    GroupView{Total: 800, Availability: 100, P99: spec.Duration(20 * time.Millisecond), WithinSLO: true},
					// No failure in the control group: the odds ratio is infinite, shown as none.
					ErrorsP: errs.P, OddsRatio: nil, LatencyP: lat.P, Superiority: ptr(float64(lat.Superiority)),
					Degraded: true, Summary: "the experiment group failed more often"}},
				Timeline: []EventView{
					{At: at(time.Minute), Kind: experiment.EventFaultStart, Text: "x-update at 50%"},
					{At: at(5 * time.Minute), Kind: experiment.EventMethodEnd, Text: "the method ended"},
				},
			}},
	}}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("GET /api/experiments:\n%s\nwant:\n%s", g, w)
	}
	if errs.P >= 1e-10 || lat.Superiority <= 0.5 {
		t.Errorf("the fixture should be clearly degraded: Fisher p %v, P(slower) %v", errs.P, lat.Superiority)
	}
}

func TestTheExperimentsSectionSaysWhyItIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		rec  *Records
		want RunsView
	}{
		{"without a store", nil, RunsView{Runs: []RunView{},
			Empty: "No store: experiments and GameDays are recorded in the embedded store ('slolab experiment run', 'slolab gameday run' with --store PATH); serve the dashboard with --store PATH to list them."}},
		{"with a store that holds no run", &Records{Store: st, Path: path}, RunsView{Store: path, Runs: []RunView{},
			Empty: "None recorded yet: 'slolab experiment run --store " + path + "' and 'slolab gameday run --store " + path + "' keep their reports here."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := getRuns(t, runsDashboard(t, tc.rec)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
