package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

// Buckets of the same CUJ, group and minute but different revisions stay
// apart for the canary judge, and add up for the SLO engine — also after
// compaction rolls them into hours.
func TestRevisionsAreStoredApartAndSumForSLOs(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)
	s := open(t, filepath.Join(t.TempDir(), "slolab.db"), func() time.Time { return now })
	defer s.Close()
	ctx := context.Background()
	bounds := []time.Duration{time.Second}
	b := func(at time.Time, rev string, total, bad, slow uint64) sli.Bucket {
		return sli.Bucket{Start: at, CUJ: "update", Revision: rev, Group: "none", Counts: sli.Counts{Total: total, Bad: bad, Slow: slow, Hist: []uint64{total - slow, slow}}}
	}
	minute := now.Add(-5 * time.Minute).Truncate(time.Minute)
	old := now.Add(-36 * spec.Day).Truncate(time.Hour)
	if err := s.Add(ctx, bounds, []sli.Bucket{
		b(minute, "stable", 90, 1, 2), b(minute, "canary", 10, 3, 1), b(minute.Add(10*time.Second), "canary", 10, 0, 0),
		b(minute.Add(-time.Hour), "", 50, 0, 0),
		b(old, "stable", 30, 0, 0), b(old, "canary", 10, 10, 0),
	}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	lastHour := slo.Range{From: now.Add(-time.Hour), To: now}
	revs, err := s.Revisions(ctx, lastHour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]slo.Counts{"update": {"stable": {Total: 90, Bad: 1, Slow: 2}, "canary": {Total: 20, Bad: 3, Slow: 1}}}
	if !reflect.DeepEqual(revs, want) {
		t.Errorf("last hour per revision: %v, want %v", revs, want)
	}
	if got := events(t, s, lastHour)[slo.Key{CUJ: "update", Kind: slo.Availability}]; got != (slo.Events{Total: 110, Bad: 4}) {
		t.Errorf("the SLO engine's last hour: %+v, want every revision: 110 requests, 4 bad", got)
	}
	revs, _ = s.Revisions(ctx, slo.Range{From: now.Add(-40 * spec.Day), To: now.Add(-30 * spec.Day)})
	if want := (map[string]map[string]slo.Counts{"update": {"stable": {Total: 30}, "canary": {Total: 10, Bad: 10}}}); !reflect.DeepEqual(revs, want) {
		t.Errorf("compacted hour per revision: %v, want %v", revs, want)
	}
}

// A store written before revisions existed (schema 1) is upgraded in place:
// its series keep their ids and data, as revision "".
func TestASchema1StoreUpgradesInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE series (id INTEGER PRIMARY KEY, cuj TEXT NOT NULL, grp TEXT NOT NULL, UNIQUE (cuj, grp))`,
		`CREATE TABLE bounds (id INTEGER PRIMARY KEY, bounds TEXT NOT NULL UNIQUE)`,
		`CREATE TABLE minute (t INTEGER NOT NULL, series INTEGER NOT NULL REFERENCES series (id), total INTEGER NOT NULL, bad INTEGER NOT NULL, slow INTEGER NOT NULL, bounds INTEGER NOT NULL REFERENCES bounds (id), hist BLOB NOT NULL, PRIMARY KEY (t, series)) WITHOUT ROWID`,
		`CREATE TABLE hour (t INTEGER NOT NULL, series INTEGER NOT NULL REFERENCES series (id), total INTEGER NOT NULL, bad INTEGER NOT NULL, slow INTEGER NOT NULL, bounds INTEGER NOT NULL REFERENCES bounds (id), hist BLOB NOT NULL, PRIMARY KEY (t, series)) WITHOUT ROWID`,
		`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
		`INSERT INTO series (id, cuj, grp) VALUES (7, 'update', 'none')`,
		`INSERT INTO bounds (id, bounds) VALUES (1, '1000000000')`,
		fmt.Sprintf(`INSERT INTO minute VALUES (%d, 7, 100, 2, 1, 1, x'00630001')`, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).Unix()/60),
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := open(t, path, nil)
	defer s.Close()
	r := slo.Range{From: time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 1, 13, 0, 0, 0, time.UTC)}
	revs, err := s.Revisions(context.Background(), r)
	if err != nil || !reflect.DeepEqual(revs, map[string]map[string]slo.Counts{"update": {"": {Total: 100, Bad: 2, Slow: 1}}}) {
		t.Errorf("after the upgrade: %v %v", revs, err)
	}
	// New revisions are new series beside the old one, and foreign keys hold.
	if err := s.Add(context.Background(), []time.Duration{time.Second}, []sli.Bucket{{Start: r.From.Add(time.Hour), CUJ: "update", Revision: "canary", Group: "none", Counts: sli.Counts{Total: 5, Hist: []uint64{5, 0}}}}, r.To); err != nil {
		t.Fatal(err)
	}
	db, _ = sql.Open("sqlite", path)
	defer db.Close()
	var ids string
	var broken int
	if err := db.QueryRow(`SELECT group_concat(id || ':' || rev, ','), (SELECT count(*) FROM pragma_foreign_key_check) FROM series`).Scan(&ids, &broken); err != nil || ids != "7:,8:canary" || broken != 0 {
		t.Errorf("series %q, %d broken foreign keys (%v)", ids, broken, err)
	}
	var v int
	db.QueryRow("PRAGMA user_version").Scan(&v)
	if v != sqlite.SchemaVersion {
		t.Errorf("user_version %d, want %d", v, sqlite.SchemaVersion)
	}
}
