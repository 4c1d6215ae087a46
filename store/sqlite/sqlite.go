// Package sqlite is slolab's embedded store: per-minute buckets of every
// CUJ × client group (requests, availability-bad, latency-bad and a compact
// latency histogram) in a pure-Go SQLite database in WAL mode. Minute buckets
// are kept for 35 days, then rolled up into hours kept for 400 days. The
// store is a source for the SLO engine, and a Flusher writes a recorder's
// closed intervals into it; the Flusher is also a source, reading the store
// and the recorder's newest intervals together, for judging a running
// proxy's SLOs within seconds.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"slolab.dev/slolab"
	"slolab.dev/slolab/spec"
)

// Config configures a Store.
type Config struct {
	// Path is the database file; it is created if missing.
	Path string
	// MinuteRetention is how long minute buckets are kept before they are
	// rolled up into hours (default 35 days).
	MinuteRetention time.Duration
	// HourRetention is how long hourly rollups are kept (default 400 days).
	HourRetention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.MinuteRetention == 0 {
		c.MinuteRetention = 35 * spec.Day
	}
	if c.HourRetention == 0 {
		c.HourRetention = 400 * spec.Day
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

func (c *Config) validate() error {
	switch {
	case c.Path == "":
		return slolab.Errorf(slolab.Invalid, "store: a database path is required")
	case strings.ContainsRune(c.Path, '?'):
		return slolab.Errorf(slolab.Invalid, "store: the database path %q contains '?', which SQLite reads as options", c.Path)
	case c.MinuteRetention < time.Hour:
		return slolab.Errorf(slolab.Invalid, "store: minute retention %s is under an hour", spec.FormatDuration(c.MinuteRetention))
	case c.HourRetention < c.MinuteRetention:
		return slolab.Errorf(slolab.Invalid, "store: hour retention %s is shorter than minute retention %s",
			spec.FormatDuration(c.HourRetention), spec.FormatDuration(c.MinuteRetention))
	}
	return nil
}

// Store is the embedded SQLite store. It is safe for concurrent use.
type Store struct {
	cfg Config
	db  *sql.DB
}

// migrations are the schema's versions, applied in order; the database's
// user_version says how many have been applied. Append, never edit: a
// database written by an older slolab is upgraded in place.
var migrations = []string{
	// 1: minute buckets and hourly rollups per CUJ × group.
	`CREATE TABLE series (
		id    INTEGER PRIMARY KEY,
		cuj   TEXT NOT NULL,
		grp   TEXT NOT NULL,
		UNIQUE (cuj, grp)
	);
	-- bounds lists histogram upper bounds (nanoseconds, comma-separated; +Inf implied).
	CREATE TABLE bounds (
		id     INTEGER PRIMARY KEY,
		bounds TEXT NOT NULL UNIQUE
	);
	-- minute: t is Unix minutes; hist is the compact histogram (see hist.go).
	CREATE TABLE minute (
		t      INTEGER NOT NULL,
		series INTEGER NOT NULL REFERENCES series (id),
		total  INTEGER NOT NULL,
		bad    INTEGER NOT NULL,
		slow   INTEGER NOT NULL,
		bounds INTEGER NOT NULL REFERENCES bounds (id),
		hist   BLOB NOT NULL,
		PRIMARY KEY (t, series)
	) WITHOUT ROWID;
	-- hour: t is Unix hours.
	CREATE TABLE hour (
		t      INTEGER NOT NULL,
		series INTEGER NOT NULL REFERENCES series (id),
		total  INTEGER NOT NULL,
		bad    INTEGER NOT NULL,
		slow   INTEGER NOT NULL,
		bounds INTEGER NOT NULL REFERENCES bounds (id),
		hist   BLOB NOT NULL,
		PRIMARY KEY (t, series)
	) WITHOUT ROWID;
	CREATE TABLE meta (
		key   TEXT PRIMARY KEY,
		value INTEGER NOT NULL
	);`,
	// 2: a revision per series, for canaries: "" (no split), stable or
	// canary. SQLite cannot change a UNIQUE constraint in place, so the
	// table is rebuilt with the same ids (migrate runs with foreign keys
	// off and checks them before committing).
	`CREATE TABLE series_v2 (
		id    INTEGER PRIMARY KEY,
		cuj   TEXT NOT NULL,
		grp   TEXT NOT NULL,
		rev   TEXT NOT NULL DEFAULT '',
		UNIQUE (cuj, grp, rev)
	);
	INSERT INTO series_v2 (id, cuj, grp) SELECT id, cuj, grp FROM series;
	DROP TABLE series;
	ALTER TABLE series_v2 RENAME TO series;`,
	// 3: the record of experiments and GameDays, scheduled runs' skips included.
	`CREATE TABLE experiment_run (
		id      INTEGER PRIMARY KEY,
		kind    TEXT NOT NULL,    -- experiment or gameday
		name    TEXT NOT NULL,
		service TEXT NOT NULL,
		verdict TEXT NOT NULL,    -- held, failed, aborted, refused, interrupted, skipped
		reason  TEXT NOT NULL,
		due     INTEGER,          -- Unix nanoseconds; scheduled runs only
		started INTEGER NOT NULL, -- Unix nanoseconds (the due time for a skip)
		ended   INTEGER NOT NULL,
		report  BLOB              -- the JSON report; NULL for a skip
	);
	CREATE INDEX experiment_run_by_name ON experiment_run (name, started);`,
	// 4: what a store knows about itself. spec_revision keeps the spec each
	// proxy or lab wrote under (spec.FormatYAML, a new row only when it
	// changed), so 'slolab slo' needs --store alone; synthetic marks the
	// minutes the lab generated rather than measured.
	`CREATE TABLE spec_revision (
		id       INTEGER PRIMARY KEY,
		written  INTEGER NOT NULL, -- Unix nanoseconds
		service  TEXT NOT NULL,
		document BLOB NOT NULL     -- the spec as YAML
	);
	CREATE TABLE synthetic (
		id          INTEGER PRIMARY KEY,
		from_t      INTEGER NOT NULL, -- Unix nanoseconds
		until_t     INTEGER NOT NULL,
		description TEXT NOT NULL
	);
	-- minute_hour: the minute buckets' counts summed per hour (t in Unix
	-- hours), kept with every write, so that the events of a long window are
	-- its whole hours from here and the minutes at its two ends: a status of
	-- a month reads about 840 rows per series instead of 43,200.
	CREATE TABLE minute_hour (
		t      INTEGER NOT NULL,
		series INTEGER NOT NULL REFERENCES series (id),
		total  INTEGER NOT NULL,
		bad    INTEGER NOT NULL,
		slow   INTEGER NOT NULL,
		PRIMARY KEY (t, series)
	) WITHOUT ROWID;
	INSERT INTO minute_hour (t, series, total, bad, slow)
		SELECT t / 60, series, SUM(total), SUM(bad), SUM(slow) FROM minute GROUP BY t / 60, series;`,
	// 5: error classes (package errclass): what each looked like, first and
	// last seen, and how many per hour, so 'slolab errors' finds the ones
	// new in a window and absent from the baseline before it.
	`CREATE TABLE error_class (
		id         TEXT PRIMARY KEY, -- errclass.ID
		cuj        TEXT NOT NULL,
		route      TEXT NOT NULL,
		status     INTEGER NOT NULL, -- 0: no response
		kind       TEXT NOT NULL,
		signature  TEXT NOT NULL,
		injected   INTEGER NOT NULL,
		first_seen INTEGER NOT NULL, -- Unix nanoseconds
		last_seen  INTEGER NOT NULL,
		count      INTEGER NOT NULL,
		example    TEXT NOT NULL     -- errclass.Example as JSON: no headers, no query
	);
	CREATE TABLE error_class_hour (
		class TEXT NOT NULL REFERENCES error_class (id),
		t     INTEGER NOT NULL, -- Unix hours
		count INTEGER NOT NULL,
		PRIMARY KEY (class, t)
	) WITHOUT ROWID;
	CREATE INDEX error_class_hour_by_t ON error_class_hour (t);`,
}

// SchemaVersion is the schema version this slolab writes.
var SchemaVersion = len(migrations)

// Open opens (creating if needed) the store at cfg.Path and brings its
// schema up to date.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // writers queue at BEGIN instead of failing at their first write
	db, err := sql.Open("sqlite", cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Path, err)
	}
	s := &Store{cfg: cfg, db: db}
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) (err error) {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	if v > len(migrations) {
		return slolab.Errorf(slolab.Conflict, "store %s has schema version %d, newer than this slolab's %d: upgrade slolab", s.cfg.Path, v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	// SQLite's procedure for schema changes: foreign keys off (outside any
	// transaction, on the one connection that migrates), change, check the
	// foreign keys still hold, commit, foreign keys back on.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: %w", s.cfg.Path, err)
	}
	defer func() { err = errors.Join(err, conn.Close()) }()
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("store %s: %w", s.cfg.Path, err)
	}
	for ; v < len(migrations); v++ {
		err := func() error {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if err := migrateTx(ctx, tx, v); err != nil {
				return errors.Join(err, tx.Rollback())
			}
			return tx.Commit()
		}()
		if err != nil {
			return fmt.Errorf("store %s: migrating to schema version %d: %w", s.cfg.Path, v+1, err)
		}
	}
	// The connection goes back to the pool: it must enforce foreign keys
	// again. (When migrating fails, Open closes the whole pool.)
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = ON"); err != nil {
		return fmt.Errorf("store %s: %w", s.cfg.Path, err)
	}
	return nil
}

// migrateTx applies migration v and checks that every foreign key holds.
func migrateTx(ctx context.Context, tx *sql.Tx, v int) error {
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return err
	}
	var broken int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pragma_foreign_key_check").Scan(&broken); err != nil {
		return err
	}
	if broken > 0 {
		return fmt.Errorf("%d rows would break a foreign key", broken)
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1))
	return err
}

// tx runs f in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the database file.
func (s *Store) Path() string { return s.cfg.Path }
