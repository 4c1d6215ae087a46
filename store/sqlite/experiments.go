package sqlite

import (
	"context"
	"database/sql"
	"time"

	"slolab.dev/slolab"
)

// ExperimentRun is the record of one experiment or GameDay run, or of a
// scheduled run that was skipped. The store keeps the report as the JSON the
// experiment package writes, so it needs no knowledge of its shape.
type ExperimentRun struct {
	ID      int64     `json:"id"`
	Kind    string    `json:"kind"` // "experiment" or "gameday"
	Name    string    `json:"name"`
	Service string    `json:"service"`
	Verdict string    `json:"verdict"`
	Reason  string    `json:"reason"`
	Due     time.Time `json:"due,omitzero"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Report  []byte    `json:"-"`
}

// AddExperimentRun records a run and returns its id.
func (s *Store) AddExperimentRun(ctx context.Context, r ExperimentRun) (int64, error) {
	var due any
	if !r.Due.IsZero() {
		due = r.Due.UnixNano()
	}
	var report any
	if r.Report != nil {
		report = r.Report
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO experiment_run (kind, name, service, verdict, reason, due, started, ended, report)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.Kind, r.Name, r.Service, r.Verdict, r.Reason, due, r.Started.UnixNano(), r.Ended.UnixNano(), report)
	if err != nil {
		return 0, slolab.Errorf(slolab.Unavailable, "store %s: recording run of %s: %w", s.cfg.Path, r.Name, err)
	}
	return res.LastInsertId()
}

// ExperimentRuns returns the latest runs, newest first: of one name when
// name is set, at most limit (0: 100). Reports are included when withReports.
func (s *Store) ExperimentRuns(ctx context.Context, name string, limit int, withReports bool) ([]ExperimentRun, error) {
	if limit <= 0 {
		limit = 100
	}
	cols := "id, kind, name, service, verdict, reason, due, started, ended, NULL"
	if withReports {
		cols = "id, kind, name, service, verdict, reason, due, started, ended, report"
	}
	var out []ExperimentRun
	err := each(ctx, s.db, func(rows *sql.Rows) error {
		var r ExperimentRun
		var due sql.NullInt64
		var started, ended int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Name, &r.Service, &r.Verdict, &r.Reason, &due, &started, &ended, &r.Report); err != nil {
			return err
		}
		if due.Valid {
			r.Due = time.Unix(0, due.Int64).UTC()
		}
		r.Started, r.Ended = time.Unix(0, started).UTC(), time.Unix(0, ended).UTC()
		out = append(out, r)
		return nil
	}, `SELECT `+cols+` FROM experiment_run WHERE ?1 = '' OR name = ?1 ORDER BY started DESC, id DESC LIMIT ?2`, name, limit)
	if err != nil {
		return nil, slolab.Errorf(slolab.Unavailable, "store %s: reading runs: %w", s.cfg.Path, err)
	}
	return out, nil
}
