package experiment

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/internal/testtool"
	"slolab.dev/slolab/spec"
)

// An unannounced GameDay on a service with six hours of clean history: half
// of the edits fail until a responder mitigates. The page alert fires when
// 2% of the budget is gone, the responders' actions land on the timeline,
// and the retrospective gives detection, acknowledgement, mitigation and
// recovery times.
func TestAGameDayProducesATimelineWithDetectionAndRecoveryTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond) // requests never coincide with interval boundaries
		l.traffic(time.Second, 50, "POST /update", "POST /login")
		// Start 2.5s off the recorder's 10s boundaries, so no evaluation
		// coincides with an interval closing: the run is deterministic.
		time.Sleep(6*time.Hour + 2500*time.Millisecond - time.Millisecond)
		f, err := spec.Parse("g.yaml", []byte(`apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: edits-fail}
spec:
  steadyState: ['availability("login", "5m") >= 99']
  method:
    - duration: 30m
      faults: [{name: update-500, match: {cuj: update}, status: 500, rate: 50%}]
  expect: ['recovers_within("update", 1m)']
---
apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: edits-failing}
spec:
  facilitator: dana
  responders: [alex, sam]
  wrapUp: 40m
  scenario: [{experiment: edits-fail}]
`))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compile(f.Experiments[0], l.svc)
		if err != nil {
			t.Fatal(err)
		}
		responses := make(chan Response)
		go func() {
			time.Sleep(3 * time.Minute)
			responses <- Response{Kind: ResponseAck, Who: "alex", Text: "edits failing, looking", At: time.Now()}
			time.Sleep(2 * time.Minute)
			responses <- Response{Kind: ResponseMitigate, Who: "alex", Text: "rolled back release 42", At: time.Now()}
			time.Sleep(time.Minute)
			responses <- Response{Kind: ResponseNote, Who: "sam", Text: "the rollback runbook was out of date", At: time.Now()}
		}()
		rep, err := RunGameDay(context.Background(), GameDayConfig{
			GameDay: f.GameDays[0], Set: &Set{Experiments: []*Compiled{c}, GameDays: f.GameDays},
			Proxy: l.admin, View: AdminView{Client: l.admin}, Responses: responses,
		})
		if err != nil {
			t.Fatal(err)
		}
		got := rep.Figures
		if got.TimeToDetect != spec.Duration(105*time.Second) || !strings.HasPrefix(got.DetectedBy, "alert: update availability page: burn rate ≥ 14.4 over 1h and 5m") ||
			got.TimeToAcknowledge != spec.Duration(3*time.Minute) || got.TimeToMitigate != spec.Duration(5*time.Minute) || got.TimeToRecover != spec.Duration(5*time.Minute+10*time.Second) {
			t.Errorf("figures = %+v", got)
		}
		x := rep.Experiments[0]
		if x.Verdict != Held || x.MethodEnded.Sub(x.MethodStarted) != 5*time.Minute {
			t.Errorf("experiment %s after %v: %s", x.Verdict, x.MethodEnded.Sub(x.MethodStarted), x.Reason)
		}
		var alerts []string
		for _, a := range rep.Alerts {
			alerts = append(alerts, a.String()+" fired +"+a.Fired.Sub(got.FaultStart).String()+" resolved +"+a.Resolved.Sub(got.FaultStart).String())
		}
		want := "update availability page: burn rate ≥ 14.4 over 1h and 5m fired +1m45s resolved +9m50s\nupdate availability page: burn rate ≥ 6 over 6h and 30m fired +4m20s resolved +34m40s"
		if strings.Join(alerts, "\n") != want {
			t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(alerts, "\n"), want)
		}
		if left := l.leftovers(); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
		var md bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		testtool.Golden(t, filepath.Join("testdata", "gameday.md"), md.Bytes())
	})
}

// An alert that begins firing during the GameDay, after the fault began,
// but on a CUJ no fault of the scenario touches detects nothing: login
// breaks 30s into the GameDay and its page alert fires before update's
// (10% of update's requests fail, so its alert takes minutes), yet
// detection is update's own alert, and login's is listed as detecting
// nothing.
func TestAnAlertOnACUJTheScenarioDoesNotTouchIsNotADetection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond)
		l.traffic(time.Second, 50, "POST /update", "POST /login")
		time.Sleep(6*time.Hour + 2500*time.Millisecond - time.Millisecond)
		cfg := editsFailing(t, l, "12m", "10%")
		var rep *GameDayReport
		var runErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			rep, runErr = RunGameDay(context.Background(), cfg)
		}()
		time.Sleep(30 * time.Second) // the fault began at the GameDay's first round
		l.failing.Store("/login", 500)
		<-done
		l.failing.Delete("/login")
		if runErr != nil {
			t.Fatal(runErr)
		}
		got := rep.Figures
		if got.FaultStart.IsZero() || !got.FaultStart.Before(rep.Started.Add(30*time.Second)) {
			t.Fatalf("the fault began at %s, the GameDay at %s: login must break after the fault", got.FaultStart, rep.Started)
		}
		var login, update *Alert
		for _, a := range rep.Alerts {
			switch {
			case a.CUJ == "login" && login == nil:
				login = a
			case a.CUJ == "update" && update == nil:
				update = a
			}
		}
		if login == nil || update == nil {
			t.Fatalf("alerts %v: want login's and update's", rep.Alerts)
		}
		// Without the CUJ check login's alert, the first to fire after the
		// fault began, would have been the detection.
		if !login.Fired.After(got.FaultStart) || !login.Fired.Before(update.Fired) {
			t.Errorf("login's alert fired at +%s, update's at +%s: want login's first, after the fault began", login.Fired.Sub(got.FaultStart), update.Fired.Sub(got.FaultStart))
		}
		if login.PreExisting || login.Detects != "" {
			t.Errorf("login's alert: pre-existing=%t detects=%q, want neither", login.PreExisting, login.Detects)
		}
		if update.Detects != "edits-fail" {
			t.Errorf("update's alert detects %q, want edits-fail", update.Detects)
		}
		if got.TimeToDetect != spec.Duration(update.Fired.Sub(got.FaultStart)) || !strings.HasPrefix(got.DetectedBy, "alert: update availability page: burn rate ≥ 14.4 over 1h and 5m") {
			t.Errorf("detected after %s by %q, want update's page alert, +%s", got.TimeToDetect, got.DetectedBy, update.Fired.Sub(got.FaultStart))
		}
		var md bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if want := "nothing: no fault of the scenario touched login before it fired"; !strings.Contains(md.String(), want) {
			t.Errorf("the retrospective does not say %q:\n%s", want, md.String())
		}
	})
}

// A GameDay begun while login's page alert fires from an earlier test:
// that alert is listed as pre-existing, and detection comes from the
// scenario's own alert on update, not from login's at the first round.
func TestAnAlertFiringBeforeTheGameDayIsPreExistingNotADetection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t, testService)
		time.Sleep(time.Millisecond)
		l.traffic(time.Second, 50, "POST /update", "POST /login")
		time.Sleep(6*time.Hour - 20*time.Minute)
		l.failing.Store("/login", 500) // an earlier test broke login, and it still fails
		time.Sleep(20*time.Minute + 2500*time.Millisecond - time.Millisecond)
		cfg := editsFailing(t, l, "5m", "50%")
		rep, err := RunGameDay(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if x := rep.Experiments[0]; x.MethodStarted.IsZero() {
			t.Fatalf("experiment %s: %s", x.Verdict, x.Reason)
		}
		got := rep.Figures
		if got.TimeToDetect != spec.Duration(105*time.Second) || !strings.HasPrefix(got.DetectedBy, "alert: update availability page: burn rate ≥ 14.4 over 1h and 5m") {
			t.Errorf("detected after %s by %q, want 1m45s by update's page alert", got.TimeToDetect, got.DetectedBy)
			for _, e := range rep.Timeline {
				t.Logf("%s %s %s", e.At.Sub(rep.Started), e.Kind, e.Text)
			}
		}
		var alerts []string
		for _, a := range rep.Alerts {
			alerts = append(alerts, fmt.Sprintf("%s pre-existing=%t detects=%q", a, a.PreExisting, a.Detects))
		}
		want := []string{
			`login availability page: burn rate ≥ 14.4 over 1h and 5m pre-existing=true detects=""`,
			`login availability page: burn rate ≥ 6 over 6h and 30m pre-existing=true detects=""`,
			`update availability page: burn rate ≥ 14.4 over 1h and 5m pre-existing=false detects="edits-fail"`,
			`update availability page: burn rate ≥ 6 over 6h and 30m pre-existing=false detects="edits-fail"`,
		}
		if strings.Join(alerts, "\n") != strings.Join(want, "\n") {
			t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(alerts, "\n"), strings.Join(want, "\n"))
		}
		var pre int
		for _, e := range rep.Timeline {
			if e.Kind == TimelineAlertPreExisting {
				pre++
				if !e.At.Equal(rep.Started) {
					t.Errorf("pre-existing alert recorded at %s, after the start %s", e.At, rep.Started)
				}
			}
		}
		if pre != 2 {
			t.Errorf("%d pre-existing entries on the timeline, want 2", pre)
		}
		l.failing.Delete("/login")
	})
}

// editsFailing is the GameDay edits-failing on l: one experiment failing
// update's requests at rate for duration.
func editsFailing(t *testing.T, l *lab, duration, rate string) GameDayConfig {
	t.Helper()
	f, err := spec.Parse("g.yaml", []byte(fmt.Sprintf(`apiVersion: slolab.dev/v1
kind: Experiment
metadata: {name: edits-fail}
spec:
  steadyState: ['availability("update", "5m") >= 40']
  method:
    - duration: %s
      faults: [{name: update-500, match: {cuj: update}, status: 500, rate: %s}]
---
apiVersion: slolab.dev/v1
kind: GameDay
metadata: {name: edits-failing}
spec:
  wrapUp: 1m
  scenario: [{experiment: edits-fail}]
`, duration, rate)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(f.Experiments[0], l.svc)
	if err != nil {
		t.Fatal(err)
	}
	return GameDayConfig{
		GameDay: f.GameDays[0], Set: &Set{Experiments: []*Compiled{c}, GameDays: f.GameDays},
		Proxy: l.admin, View: AdminView{Client: l.admin},
	}
}
