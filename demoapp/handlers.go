package demoapp

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SessionCookie holds the session token the login route hands out.
const SessionCookie = "demo_session"

// Password is the one password the demo accepts, for every user.
const Password = "demo"

// httpError is an error with the status to answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBlobUnavailable):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

// decode reads a JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: %v", err)
	}
	return nil
}

// user says who sent a request: the session's user, else the X-User-ID
// header that slolab load sends, else "guest".
func (a *App) user(r *http.Request) string {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if u, err := a.db.sessionUser(r.Context(), c.Value); err == nil {
			return u
		}
	}
	if u := r.Header.Get("X-User-ID"); u != "" && len(u) <= 64 {
		return u
	}
	return "guest"
}

func checkText(field, s string, limit int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return badRequest("%s: must not be empty", field)
	case len(s) > limit:
		return badRequest("%s: at most %d bytes, got %d", field, limit, len(s))
	case !utf8.ValidString(s):
		return badRequest("%s: must be UTF-8", field)
	}
	return nil
}

func (a *App) login(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkText("user", req.User, 64); err != nil {
		return err
	}
	if req.Password != Password {
		return &httpError{http.StatusUnauthorized, fmt.Sprintf("wrong password: every demo user's password is %q", Password)}
	}
	token := rand.Text()
	if err := a.db.login(r.Context(), req.User, token); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"user": req.User, "session": token})
	return nil
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := a.db.logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]bool{"loggedOut": true})
	return nil
}

func checkRoom(room string) error {
	for _, r := range Rooms {
		if r == room {
			return nil
		}
	}
	return &httpError{http.StatusNotFound, fmt.Sprintf("no room %q: the rooms are %s", room, strings.Join(Rooms, ", "))}
}

func (a *App) postMessage(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Room string `json:"room"`
		Text string `json:"text"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkRoom(req.Room); err != nil {
		return err
	}
	if err := checkText("text", req.Text, 4000); err != nil {
		return err
	}
	m, err := a.db.addMessage(r.Context(), req.Room, a.user(r), req.Text)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, m)
	return nil
}

func (a *App) edit(w http.ResponseWriter, r *http.Request, id int64, text string) error {
	if err := checkText("text", text, 4000); err != nil {
		return err
	}
	m, err := a.db.editMessage(r.Context(), id, text)
	if errors.Is(err, errNotFound) {
		return &httpError{http.StatusNotFound, fmt.Sprintf("no message %d", id)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// update is the legacy edit endpoint: POST /update {"id": 7, "text": "..."}.
func (a *App) update(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ID   int64  `json:"id"`
		Text string `json:"text"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	return a.edit(w, r, req.ID, req.Text)
}

func (a *App) putMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	return a.edit(w, r, id, req.Text)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, badRequest("id: want a positive integer, got %q", r.PathValue("id"))
	}
	return id, nil
}

func (a *App) listMessages(w http.ResponseWriter, r *http.Request) error {
	room := r.URL.Query().Get("room")
	if room == "" {
		room = Rooms[0]
	}
	if err := checkRoom(room); err != nil {
		return err
	}
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return badRequest("limit: want 1..500, got %q", s)
		}
		limit = n
	}
	ms, err := a.db.messages(r.Context(), room, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "messages": ms})
	return nil
}

func (a *App) getMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	m, err := a.db.message(r.Context(), id)
	if errors.Is(err, errNotFound) {
		return &httpError{http.StatusNotFound, fmt.Sprintf("no message %d", id)}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// postFile stores the request body as a file: its name from ?name=, its type
// from Content-Type. The bytes go to the blob store, the metadata to SQLite.
func (a *App) postFile(w http.ResponseWriter, r *http.Request) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBlobBytes))
	if err != nil {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("a file may hold at most %d bytes", MaxBlobBytes)}
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "upload.txt"
	}
	if err := checkText("name", name, 200); err != nil {
		return err
	}
	ctype := r.Header.Get("Content-Type")
	if _, _, err := mime.ParseMediaType(ctype); err != nil {
		ctype = "application/octet-stream"
	}
	key, err := a.blobs.put(r.Context(), data)
	if err != nil {
		return err
	}
	f, err := a.db.addFile(r.Context(), File{Name: name, Type: ctype, Size: int64(len(data)), Author: a.user(r)}, key)
	if err != nil {
		return err
	}
	f.URL = fmt.Sprintf("files/%d", f.ID)
	writeJSON(w, http.StatusCreated, f)
	return nil
}

func (a *App) getFile(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	f, key, err := a.db.file(r.Context(), id)
	if errors.Is(err, errNotFound) {
		return &httpError{http.StatusNotFound, fmt.Sprintf("no file %d", id)}
	}
	if err != nil {
		return err
	}
	data, err := a.blobs.get(r.Context(), key)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", f.Type)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": f.Name}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox") // an uploaded page runs no script on the app's origin
	w.Write(data)                                        //nolint:errcheck // the client went away
	return nil
}

func (a *App) postTask(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Title   string `json:"title"`
		Message *int64 `json:"message"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkText("title", req.Title, 500); err != nil {
		return err
	}
	t, err := a.db.addTask(r.Context(), req.Title, a.user(r), req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (a *App) listTasks(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.db.tasks(r.Context(), 50)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": ts})
	return nil
}
