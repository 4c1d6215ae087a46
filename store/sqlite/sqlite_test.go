package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"slolab.dev/slolab/match"
	"slolab.dev/slolab/sli"
	"slolab.dev/slolab/slo"
	"slolab.dev/slolab/spec"
	"slolab.dev/slolab/store/sqlite"
)

const small = `apiVersion: slolab.dev/v1
kind: Service
metadata: {name: s}
spec:
  cujs:
    - {name: update, owner: o, routes: ["POST /update"], availability: {objective: 99.9%}, latency: {threshold: 800ms, objective: 99%}}
    - {name: read, owner: o, routes: ["GET /messages"], availability: {objective: 99%}}
`

func open(t *testing.T, path string, now func() time.Time) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type proxy struct {
	svc    *spec.Service
	rec    *sli.Recorder
	routes *match.Table
}

func newProxy(t *testing.T) proxy {
	t.Helper()
	f, err := spec.Parse("s.yaml", []byte(small))
	if err != nil {
		t.Fatal(err)
	}
	routes, err := match.Compile(f.Services[0])
	if err != nil {
		t.Fatal(err)
	}
	return proxy{f.Services[0], sli.New(sli.Config{Service: f.Services[0], Routes: routes}), routes}
}

// serve records one request: update when i is even, read when odd; every
// 7th fails, every 5th update is slow.
func (p proxy) serve(i int) {
	method, path := "POST", "/update"
	if i%2 == 1 {
		method, path = "GET", "/messages"
	}
	code, lat := 200, 100*time.Millisecond
	if i%7 == 0 {
		code = 502
	}
	if i%10 == 0 {
		lat = time.Second
	}
	p.rec.Observe(sli.Observation{Route: p.routes.Match(httptest.NewRequest(method, path, nil)), Method: method, Code: code, Latency: lat})
}

// expected counts what serve(1..n) recorded.
func expected(from, to int) map[slo.Key]slo.Events {
	out := map[slo.Key]slo.Events{}
	for i := from; i <= to; i++ {
		cuj := "update"
		if i%2 == 1 {
			cuj = "read"
		}
		a, l := out[slo.Key{CUJ: cuj, Kind: slo.Availability}], out[slo.Key{CUJ: cuj, Kind: slo.Latency}]
		a.Total++
		l.Total++
		if i%7 == 0 {
			a.Bad++
		}
		if i%10 == 0 && cuj == "update" {
			l.Bad++
		}
		out[slo.Key{CUJ: cuj, Kind: slo.Availability}], out[slo.Key{CUJ: cuj, Kind: slo.Latency}] = a, l
	}
	return out
}

func events(t *testing.T, s *sqlite.Store, r slo.Range) map[slo.Key]slo.Events {
	t.Helper()
	got, err := s.Events(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var everything = slo.Range{From: time.Unix(0, 0), To: time.Unix(1<<40, 0)}

// TestRestartContinuesWhereItStopped: a proxy serves, shuts down (its last
// open interval flushed by Final), and a new proxy with a new recorder
// continues in the same store: every request is counted exactly once.
func TestRestartContinuesWhereItStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "slolab.db")
		n := 0
		for run := range 2 {
			p := newProxy(t)
			s := open(t, path, time.Now)
			fl := sqlite.NewFlusher(s, p.rec, sqlite.FlusherConfig{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, 2)
			go func() { p.rec.Run(ctx); done <- struct{}{} }()
			go func() { fl.Run(ctx); done <- struct{}{} }()
			for range 95 + run*30 { // a request every 700 ms, across several flushes
				n++
				p.serve(n)
				time.Sleep(700 * time.Millisecond)
			}
			cancel()
			<-done
			<-done
			if err := fl.Final(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := events(t, s, everything), expected(1, n); !reflect.DeepEqual(got, want) {
				t.Errorf("after run %d: stored %v, want %v", run+1, got, want)
			}
			s.Close()
			time.Sleep(3 * time.Second) // the restart
		}
	})
}

// TestACrashLosesOnlyTheOpenInterval: without Final, what is stored is
// exactly the intervals closed before the crash, each written as it
// closed; only the open interval is lost, whatever the phase of the
// process's start against the recorder's intervals. (A flush timer counted
// from the start lost up to two intervals when the crash came just before
// it fired: 16 and 17.4 s were measured after kill -9.)
func TestACrashLosesOnlyTheOpenInterval(t *testing.T) {
	for _, phase := range []time.Duration{0, 300 * time.Millisecond, 5 * time.Second, 9900 * time.Millisecond} {
		t.Run(fmt.Sprintf("started %v into an interval", phase), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const interval = 10 * time.Second
				time.Sleep(time.Until(time.Now().Truncate(interval).Add(interval + phase)))
				p := newProxy(t)
				s := open(t, filepath.Join(t.TempDir(), "slolab.db"), time.Now)
				defer s.Close()
				start := time.Now()
				fl := sqlite.NewFlusher(s, p.rec, sqlite.FlusherConfig{})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{}, 2)
				go func() { p.rec.Run(ctx); done <- struct{}{} }()
				go func() { fl.Run(ctx); done <- struct{}{} }()
				var served []time.Time
				time.Sleep(time.Millisecond) // no request on a boundary, where which interval holds it is a race
				for i := 1; time.Since(start) < time.Minute; i++ {
					p.serve(i)
					served = append(served, time.Now())
					time.Sleep(300 * time.Millisecond)
				}
				// The crash, just before a flush timer counted from the start
				// would have fired.
				time.Sleep(time.Until(time.Now().Truncate(interval).Add(interval + phase - time.Millisecond)))
				crash := time.Now()
				cancel() // the process dies: no Final
				<-done
				<-done
				ext, err := s.Extent(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if want := crash.Truncate(interval); !ext.FlushedUntil.Equal(want) {
					t.Errorf("flushed until %v before the crash, want the last boundary, %v before", crash.Sub(ext.FlushedUntil), crash.Sub(want))
				}
				kept := 0
				for _, at := range served {
					if at.Before(ext.FlushedUntil) {
						kept++
					}
				}
				if got, want := events(t, s, everything), expected(1, kept); !reflect.DeepEqual(got, want) {
					t.Errorf("stored %v, want the %d requests before %v: %v", got, kept, ext.FlushedUntil.Sub(start), want)
				}
			})
		})
	}
}

// TestEventsAndHistoryAgree: minute buckets read through Events and through
// History give the same counts over every window.
func TestEventsAndHistoryAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProxy(t)
		s := open(t, filepath.Join(t.TempDir(), "slolab.db"), time.Now)
		defer s.Close()
		start := slo.Align(time.Now(), time.Minute)
		fl := sqlite.NewFlusher(s, p.rec, sqlite.FlusherConfig{})
		for i := 1; i <= 1200; i++ { // 20 minutes, one request a second
			p.serve(i)
			time.Sleep(time.Second)
			p.rec.Close(time.Now())
			if i%10 == 0 {
				if err := fl.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		end := slo.Align(time.Now(), time.Minute)
		h, err := s.History(context.Background(), start, end)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []time.Duration{time.Minute, 5 * time.Minute, 13 * time.Minute, 20 * time.Minute} {
			r := slo.Last(w, end)
			fromStore := events(t, s, r)
			fromHistory, _ := h.Events(context.Background(), r)
			for k, want := range fromStore {
				if got := fromHistory[k]; got != want {
					t.Errorf("%s over the last %v: history %+v, store %+v", k, w, got, want)
				}
			}
		}
		if got, want := events(t, s, slo.Range{From: start, To: end}), expected(1, 1200); !reflect.DeepEqual(got, want) {
			t.Errorf("20 minutes: %v, want %v", got, want)
		}
	})
}

// TestCompactRollsUpOldMinutes: minutes older than 35 days become hours with
// the same counts and merged histograms; hours older than 400 days go.
func TestCompactRollsUpOldMinutes(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 30, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "slolab.db")
	s := open(t, path, func() time.Time { return now })
	defer s.Close()
	ctx := context.Background()
	bounds := []time.Duration{100 * time.Millisecond, time.Second}
	bucket := func(at time.Time, total, bad uint64, hist []uint64) sli.Bucket {
		return sli.Bucket{Start: at, CUJ: "update", Group: "none", Counts: sli.Counts{Total: total, Bad: bad, Slow: hist[2], Hist: hist}}
	}
	old := now.Add(-36 * spec.Day).Truncate(time.Hour)
	var bs []sli.Bucket
	for m := range 120 { // two old hours
		bs = append(bs, bucket(old.Add(time.Duration(m)*time.Minute), 10, 1, []uint64{7, 2, 1}))
	}
	bs = append(bs, bucket(now.Add(-401*spec.Day), 5, 5, []uint64{5, 0, 0}))
	bs = append(bs, bucket(now.Add(-time.Hour), 3, 0, []uint64{3, 0, 0}))
	if err := s.Add(ctx, bounds, bs, now); err != nil {
		t.Fatal(err)
	}
	before := events(t, s, slo.Range{From: now.Add(-40 * spec.Day), To: now})
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	after := events(t, s, slo.Range{From: now.Add(-40 * spec.Day), To: now})
	if !reflect.DeepEqual(before, after) {
		t.Errorf("compaction changed the last 40 days: %v, then %v", before, after)
	}
	if want := (slo.Events{Total: 1203, Bad: 120}); after[slo.Key{CUJ: "update", Kind: slo.Availability}] != want {
		t.Errorf("last 40 days: %+v, want %+v", after[slo.Key{CUJ: "update", Kind: slo.Availability}], want)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var minutes, hours int
	var hist []byte
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM minute), (SELECT count(*) FROM hour), (SELECT hist FROM hour ORDER BY t LIMIT 1)`).Scan(&minutes, &hours, &hist); err != nil {
		t.Fatal(err)
	}
	if minutes != 1 || hours != 2 {
		t.Errorf("%d minute and %d hour buckets, want 1 and 2 (the 401-day-old minute is gone)", minutes, hours)
	}
	// 60 minutes of {7, 2, 1}: gaps 0,0,0 with counts 420, 120, 60.
	if want := []byte{0, 0xa4, 0x03, 0, 0x78, 0, 0x3c}; !reflect.DeepEqual(hist, want) {
		t.Errorf("hourly histogram % x, want % x", hist, want)
	}
}

func TestSchemaVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slolab.db")
	s := open(t, path, nil)
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != sqlite.SchemaVersion {
		t.Fatalf("user_version %d (%v), want %d", v, err, sqlite.SchemaVersion)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("has schema version 99, newer than this slolab's %d: upgrade slolab", sqlite.SchemaVersion)) {
		t.Errorf("opening a newer store: %v", err)
	}
}
