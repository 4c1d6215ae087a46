package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"slolab.dev/slolab/errclass"
	"slolab.dev/slolab/store/sqlite"
)

// Classes flushed twice add up: counts per hour, first and last sightings
// widened, the first example kept; a Flusher writes a classifier's changes.
func TestErrorClassesAddUp(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	now := t0.Add(3 * time.Hour)
	s := open(t, filepath.Join(t.TempDir(), "s.db"), func() time.Time { return now })
	ctx := context.Background()
	c := errclass.New(errclass.Config{})
	ev := func(body string, at time.Time) errclass.Event {
		return errclass.Event{CUJ: "update", Route: "POST /update", Method: "POST", Path: "/update", Status: 500, Kind: errclass.KindStatus, Body: []byte(body), Time: at}
	}
	c.Observe(ev(`{"error":"user 1 not found"}`, t0))
	if err := s.AddErrorClasses(ctx, c.Changes()); err != nil {
		t.Fatal(err)
	}
	c.Observe(ev(`{"error":"user 2 not found"}`, t0.Add(time.Hour)))
	c.Observe(ev(`{"error":"user 3 not found"}`, t0.Add(time.Hour)))
	f := sqlite.NewFlusher(s, newProxy(t).rec, sqlite.FlusherConfig{Classes: c})
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := s.ErrorClasses(ctx, t0.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Count != 3 || !all[0].FirstSeen.Equal(t0) || !all[0].LastSeen.Equal(t0.Add(time.Hour)) ||
		all[0].Example.Body != `{"error":"user 1 not found"}` || all[0].Signature != "error=user <n> not found" {
		t.Fatalf("classes = %+v", all)
	}
	// The hour after the first: two of the three.
	late, err := s.ErrorClasses(ctx, t0.Add(30*time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(late) != 1 || late[0].Count != 2 || !late[0].FirstSeen.Equal(t0) {
		t.Fatalf("classes from the second hour = %+v", late)
	}
	// Past the hour retention, compaction drops them.
	now = t0.Add(402 * 24 * time.Hour)
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if gone, _ := s.ErrorClasses(ctx, t0.Add(-time.Hour), now); len(gone) != 0 {
		t.Errorf("after compaction: %+v", gone)
	}
}
