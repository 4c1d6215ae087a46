package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"slolab.dev/slolab/store/sqlite"
)

func TestExperimentRunsAreRecordedAndListedNewestFirst(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "x.db"), nil)
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 11, 17, 11, 0, 0, 0, time.UTC)
	runs := []sqlite.ExperimentRun{
		{Kind: "experiment", Name: "update-errors", Service: "chat", Verdict: "held", Reason: "ok", Started: t0, Ended: t0.Add(6 * time.Minute), Report: []byte(`{"verdict":"held"}`)},
		{Kind: "experiment", Name: "update-errors", Service: "chat", Verdict: "skipped", Reason: "outside the allowed windows", Due: t0.Add(24 * time.Hour), Started: t0.Add(24 * time.Hour), Ended: t0.Add(24 * time.Hour)},
		{Kind: "gameday", Name: "drill", Service: "chat", Verdict: "held", Reason: "", Started: t0.Add(time.Hour), Ended: t0.Add(2 * time.Hour), Report: []byte(`{}`)},
	}
	for i := range runs {
		id, err := s.AddExperimentRun(ctx, runs[i])
		if err != nil {
			t.Fatal(err)
		}
		runs[i].ID = id
	}
	got, err := s.ExperimentRuns(ctx, "update-errors", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []sqlite.ExperimentRun{runs[1], runs[0]}; !reflect.DeepEqual(got, want) {
		t.Errorf("runs of update-errors:\n%+v\nwant\n%+v", got, want)
	}
	all, _ := s.ExperimentRuns(ctx, "", 2, false)
	if len(all) != 2 || all[0].Name != "update-errors" || all[1].Name != "drill" || all[0].Report != nil {
		t.Errorf("latest two: %+v", all)
	}
}

// A store written before experiments were recorded (schema 1) is upgraded in place.
func TestAVersionOneStoreGainsTheExperimentRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s := open(t, path, nil)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TABLE experiment_run; DROP TABLE spec_revision; DROP TABLE synthetic; DROP TABLE minute_hour; DROP TABLE error_class_hour; DROP TABLE error_class; PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, path, nil)
	defer s.Close()
	if _, err := s.AddExperimentRun(context.Background(), sqlite.ExperimentRun{Kind: "experiment", Name: "x", Service: "s", Verdict: "held", Started: time.Unix(1, 0), Ended: time.Unix(2, 0)}); err != nil {
		t.Errorf("after the upgrade: %v", err)
	}
}
