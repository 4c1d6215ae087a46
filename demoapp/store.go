package demoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the embedded, pure-Go SQLite driver
)

// store is the app's own storage: SQLite in memory, one connection (SQLite
// serialises writes anyway, and a query here takes microseconds).
type store struct {
	db      *sql.DB
	now     func() time.Time
	inserts atomic.Uint64
}

// Retention bounds the app's memory under endless load: beyond this many
// rows, the oldest are pruned (the seeded messages are kept, since the load
// templates edit and read them).
const Retention = 50_000

const schema = `
CREATE TABLE messages (
	id      INTEGER PRIMARY KEY,
	room    TEXT NOT NULL,
	author  TEXT NOT NULL,
	text    TEXT NOT NULL,
	created INTEGER NOT NULL,
	edited  INTEGER
);
CREATE INDEX messages_room ON messages(room, id);
CREATE TABLE sessions (
	token   TEXT PRIMARY KEY,
	user    TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE files (
	id      INTEGER PRIMARY KEY,
	blob    TEXT NOT NULL,
	name    TEXT NOT NULL,
	type    TEXT NOT NULL,
	size    INTEGER NOT NULL,
	author  TEXT NOT NULL,
	created INTEGER NOT NULL
);
CREATE TABLE tasks (
	id      INTEGER PRIMARY KEY,
	title   TEXT NOT NULL,
	author  TEXT NOT NULL,
	message INTEGER,
	created INTEGER NOT NULL
);`

// Rooms are the chat rooms the app starts with (the ones the spec's load uses).
var Rooms = []string{"general", "random", "ops"}

func openStore(now func() time.Time, seed int) (*store, error) {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		return nil, fmt.Errorf("demo app: opening its storage: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &store{db: db, now: now}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, errors.Join(fmt.Errorf("demo app: creating its tables: %w", err), db.Close())
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	at := now().UnixMilli()
	for i := range seed {
		room := Rooms[i%len(Rooms)]
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages(room, author, text, created) VALUES (?, ?, ?, ?)`,
			room, "demo", fmt.Sprintf("welcome to #%s (message %d)", room, i+1), at); err != nil {
			return nil, errors.Join(fmt.Errorf("demo app: seeding messages: %w", err), tx.Rollback(), db.Close())
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

func (s *store) close() error { return s.db.Close() }

// Message is a chat message.
type Message struct {
	ID      int64      `json:"id"`
	Room    string     `json:"room"`
	Author  string     `json:"author"`
	Text    string     `json:"text"`
	Created time.Time  `json:"created"`
	Edited  *time.Time `json:"edited,omitempty"`
}

// File is an uploaded file's metadata.
type File struct {
	ID      int64     `json:"id"`
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Size    int64     `json:"size"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`
	URL     string    `json:"url"`
}

// Task is a to-do item, possibly made from a message.
type Task struct {
	ID      int64     `json:"id"`
	Title   string    `json:"title"`
	Author  string    `json:"author"`
	Message *int64    `json:"message,omitempty"`
	Created time.Time `json:"created"`
}

var errNotFound = errors.New("not found")

// maybePrune drops the oldest rows of a table every thousand inserts, keeping
// Retention rows and the seeded messages.
func (s *store) maybePrune(ctx context.Context) {
	if s.inserts.Add(1)%1000 != 0 {
		return
	}
	for _, q := range []string{
		`DELETE FROM messages WHERE id > ? AND id <= (SELECT MAX(id) FROM messages) - ?`,
		`DELETE FROM tasks WHERE id > ? AND id <= (SELECT MAX(id) FROM tasks) - ?`,
		`DELETE FROM files WHERE id > ? AND id <= (SELECT MAX(id) FROM files) - ?`,
		`DELETE FROM sessions WHERE rowid > ? AND rowid <= (SELECT MAX(rowid) FROM sessions) - ?`,
	} {
		s.db.ExecContext(ctx, q, DefaultMessages, Retention) //nolint:errcheck // best effort
	}
}

func (s *store) login(ctx context.Context, user, token string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions(token, user, created) VALUES (?, ?, ?)`, token, user, s.now().UnixMilli())
	s.maybePrune(ctx)
	return err
}

func (s *store) logout(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE token = ?`, token)
	return err
}

func (s *store) sessionUser(ctx context.Context, token string) (string, error) {
	var user string
	err := s.db.QueryRowContext(ctx, `SELECT user FROM sessions WHERE token = ?`, token).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	return user, err
}

func (s *store) addMessage(ctx context.Context, room, author, text string) (Message, error) {
	at := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO messages(room, author, text, created) VALUES (?, ?, ?, ?)`, room, author, text, at.UnixMilli())
	if err != nil {
		return Message{}, err
	}
	id, err := res.LastInsertId()
	s.maybePrune(ctx)
	return Message{ID: id, Room: room, Author: author, Text: text, Created: time.UnixMilli(at.UnixMilli()).UTC()}, err
}

func (s *store) editMessage(ctx context.Context, id int64, text string) (Message, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE messages SET text = ?, edited = ? WHERE id = ?`, text, s.now().UnixMilli(), id)
	if err != nil {
		return Message{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Message{}, errNotFound
	}
	return s.message(ctx, id)
}

const messageCols = `id, room, author, text, created, edited`

func scanMessage(sc interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var created int64
	var edited sql.NullInt64
	if err := sc.Scan(&m.ID, &m.Room, &m.Author, &m.Text, &created, &edited); err != nil {
		return Message{}, err
	}
	m.Created = time.UnixMilli(created).UTC()
	if edited.Valid {
		t := time.UnixMilli(edited.Int64).UTC()
		m.Edited = &t
	}
	return m, nil
}

func (s *store) message(ctx context.Context, id int64) (Message, error) {
	m, err := scanMessage(s.db.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, errNotFound
	}
	return m, err
}

// messages returns a room's latest messages, oldest first.
func (s *store) messages(ctx context.Context, room string, limit int) ([]Message, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?`, room, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // rows.Err reports what matters
	out := []Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}

func (s *store) addFile(ctx context.Context, f File, blob string) (File, error) {
	at := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO files(blob, name, type, size, author, created) VALUES (?, ?, ?, ?, ?, ?)`,
		blob, f.Name, f.Type, f.Size, f.Author, at.UnixMilli())
	if err != nil {
		return File{}, err
	}
	f.ID, err = res.LastInsertId()
	f.Created = time.UnixMilli(at.UnixMilli()).UTC()
	s.maybePrune(ctx)
	return f, err
}

func (s *store) file(ctx context.Context, id int64) (File, string, error) {
	var f File
	var blob string
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, blob, name, type, size, author, created FROM files WHERE id = ?`, id).
		Scan(&f.ID, &blob, &f.Name, &f.Type, &f.Size, &f.Author, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, "", errNotFound
	}
	f.Created = time.UnixMilli(created).UTC()
	return f, blob, err
}

func (s *store) addTask(ctx context.Context, title, author string, message *int64) (Task, error) {
	at := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO tasks(title, author, message, created) VALUES (?, ?, ?, ?)`, title, author, message, at.UnixMilli())
	if err != nil {
		return Task{}, err
	}
	id, err := res.LastInsertId()
	s.maybePrune(ctx)
	return Task{ID: id, Title: title, Author: author, Message: message, Created: time.UnixMilli(at.UnixMilli()).UTC()}, err
}

// tasks returns the latest tasks, newest first.
func (s *store) tasks(ctx context.Context, limit int) ([]Task, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, author, message, created FROM tasks ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // rows.Err reports what matters
	out := []Task{}
	for rows.Next() {
		var t Task
		var msg sql.NullInt64
		var created int64
		if err := rows.Scan(&t.ID, &t.Title, &t.Author, &msg, &created); err != nil {
			return nil, err
		}
		if msg.Valid {
			t.Message = &msg.Int64
		}
		t.Created = time.UnixMilli(created).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}
