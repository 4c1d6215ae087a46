// Package spec is slolab's declarative model — Services with their Critical User
// Journeys and SLOs, fault rules, experiments — with loaders that report every
// mistake at once as file:line:col: field.path: message.
//
// Every front end (YAML and JSON here, CUE in cuespec) produces the same
// positioned Node tree, and one decoder turns that tree into the model, so a
// rule means the same thing and fails the same way wherever it was written.
package spec

import (
	"fmt"
	"sort"
	"strings"

	"slolab.dev/slolab"
)

// Pos is a position in a source file. Line and Col count from 1; zero means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one mistake in a spec: where it is, which field, and what is wrong.
type Error struct {
	Pos  Pos
	Path string // field path such as spec.cujs[2].latency.objective; empty for syntax errors
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every mistake found in one load, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrorKind makes every spec error an invalid-input error for the CLI and the admin API.
func (es Errors) ErrorKind() slolab.Kind { return slolab.Invalid }

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns the errors ordered by file, line and column, keeping the
// order of discovery for errors at the same place.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return es
}

// err returns nil for no errors, so callers can return it as an error directly.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}
