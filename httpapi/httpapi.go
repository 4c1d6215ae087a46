// Package httpapi is what every slolab HTTP API shares: a Guard that decides
// which requests reach the handlers (the Host they name, where a change
// comes from, its content type, the bearer token, limits on failed token
// attempts), the one mapping of error kinds to HTTP statuses, and bodies read
// strictly (one JSON value, nothing after it).
//
// The admin API and the dashboard wrap their handlers in a Guard, and so
// should any new endpoint that serves state or changes it.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"slolab.dev/slolab"
)

// MaxBody is the default bound on request bodies.
const MaxBody = 1 << 20

// Status returns the HTTP status for an error's kind: the one place where
// kinds become statuses.
func Status(err error) int {
	switch slolab.KindOf(err) {
	case slolab.Invalid:
		return http.StatusBadRequest
	case slolab.NotFound:
		return http.StatusNotFound
	case slolab.Conflict:
		return http.StatusConflict
	case slolab.Unauthorized:
		return http.StatusUnauthorized
	case slolab.Forbidden:
		return http.StatusForbidden
	case slolab.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// KindOf returns the error kind an HTTP status stands for, for clients: the
// inverse of Status, with the statuses net/http and proxies answer too.
func KindOf(status int) slolab.Kind {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed, http.StatusUnsupportedMediaType:
		return slolab.Invalid
	case http.StatusNotFound:
		return slolab.NotFound
	case http.StatusConflict:
		return slolab.Conflict
	case http.StatusUnauthorized, http.StatusTooManyRequests:
		return slolab.Unauthorized
	case http.StatusForbidden, http.StatusMisdirectedRequest:
		return slolab.Forbidden
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return slolab.Unavailable
	}
	return slolab.Internal
}

// ErrorBody is the body of every error response: {"error": "…"}.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError answers with err's message and the status of its kind.
func WriteError(w http.ResponseWriter, err error) {
	WriteJSON(w, Status(err), ErrorBody{Error: err.Error()})
}

// WriteJSON answers with v as indented JSON, never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(w, `{"error": %q}`, err.Error())
	}
}

// ReadBody reads a request body whole; a body beyond the Guard's bound is
// an Invalid error that says the bound.
func ReadBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, slolab.Errorf(slolab.Invalid, "the request body exceeds %d bytes", mbe.Limit)
	}
	if err != nil {
		return nil, slolab.Errorf(slolab.Invalid, "reading the request body: %v", err)
	}
	return data, nil
}

// NoTrailingJSON refuses a body sent as application/json that holds one
// JSON value and more after it, with the message DecodeJSON gives, for
// handlers that parse JSON and YAML bodies with a YAML parser (which would
// call the extra bytes a YAML syntax error). A body that is not one valid
// JSON value is left to that parser, whose errors carry positions.
func NoTrailingJSON(r *http.Request, data []byte, want string) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil
	}
	var v json.RawMessage
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return slolab.Errorf(slolab.Invalid, "request body: want one JSON value such as %s, got more after its end at byte %d", want, end)
	}
	return nil
}

// DecodeJSON reads exactly one JSON value from data into v: an unknown
// field, a second value or any byte after the value but white space is an
// Invalid error. want shows the expected shape in messages, e.g.
// `{"ttl": "10m"}`.
func DecodeJSON(data []byte, v any, want string) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return slolab.Errorf(slolab.Invalid, "request body: empty; want %s", want)
		}
		return slolab.Errorf(slolab.Invalid, "request body: want %s: %v", want, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return slolab.Errorf(slolab.Invalid, "request body: want one JSON value such as %s, got more after its end at byte %d", want, end)
	}
	return nil
}
