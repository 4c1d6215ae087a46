package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	slolab "slolab.dev/slolab"
	"slolab.dev/slolab/errclass"
)

// AddErrorClasses adds changes of error classes (errclass.Classifier.Changes:
// counts since the last call) to the store: a new class is written whole,
// a known one has its count added and its first and last sightings widened;
// the example stays the first one stored. The count goes to the hour of the
// class's last sighting.
func (s *Store) AddErrorClasses(ctx context.Context, changes []errclass.Class) error {
	if len(changes) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range changes {
			ex, err := json.Marshal(c.Example)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO error_class
				(id, cuj, route, status, kind, signature, injected, first_seen, last_seen, count, example)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET
					first_seen = min(first_seen, excluded.first_seen),
					last_seen = max(last_seen, excluded.last_seen),
					count = count + excluded.count`,
				c.ID, c.CUJ, c.Route, c.Status, c.Kind, c.Signature, c.Injected,
				c.FirstSeen.UnixNano(), c.LastSeen.UnixNano(), c.Count, string(ex)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO error_class_hour (class, t, count) VALUES (?, ?, ?)
				ON CONFLICT (class, t) DO UPDATE SET count = count + excluded.count`,
				c.ID, floorDiv(c.LastSeen.Unix(), 3600), c.Count); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return slolab.Errorf(slolab.Unavailable, "store %s: writing error classes: %w", s.cfg.Path, err)
	}
	return nil
}

// ErrorClasses returns the error classes seen in the hours [from, to): from
// is rounded down and to up to whole hours. Each class's Count is its count
// in those hours; FirstSeen, LastSeen and the example are the class's own.
func (s *Store) ErrorClasses(ctx context.Context, from, to time.Time) ([]errclass.Class, error) {
	var out []errclass.Class
	err := each(ctx, s.db, func(rows *sql.Rows) error {
		var c errclass.Class
		var first, last int64
		var ex string
		if err := rows.Scan(&c.ID, &c.CUJ, &c.Route, &c.Status, &c.Kind, &c.Signature, &c.Injected, &first, &last, &ex, &c.Count); err != nil {
			return err
		}
		c.FirstSeen, c.LastSeen = time.Unix(0, first), time.Unix(0, last)
		if err := json.Unmarshal([]byte(ex), &c.Example); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}, `SELECT c.id, c.cuj, c.route, c.status, c.kind, c.signature, c.injected, c.first_seen, c.last_seen, c.example, SUM(h.count)
		FROM error_class c JOIN error_class_hour h ON h.class = c.id
		WHERE h.t >= ? AND h.t < ?
		GROUP BY c.id
		ORDER BY SUM(h.count) DESC, c.first_seen, c.id`,
		floorDiv(from.Unix(), 3600), ceilDiv(to.Unix(), 3600))
	if err != nil {
		return nil, slolab.Errorf(slolab.Unavailable, "store %s: reading error classes: %w", s.cfg.Path, err)
	}
	return out, nil
}

// dropErrorClasses drops the hourly counts older than the hour drop (Unix
// hours) and the classes left without any.
func dropErrorClasses(ctx context.Context, tx *sql.Tx, drop int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM error_class_hour WHERE t < ?`, drop); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM error_class WHERE id NOT IN (SELECT class FROM error_class_hour)`)
	return err
}
