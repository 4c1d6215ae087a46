// Package slolab holds what every part of slolab shares: the small set of error
// kinds that the admin API maps to HTTP statuses and the CLI maps to exit codes,
// each in exactly one place.
package slolab

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

// The error kinds. The zero value is Internal so that an unclassified error is
// never mistaken for the caller's fault.
const (
	Internal     Kind = iota // a bug or an unexpected failure
	Invalid                  // the input is wrong; the message says how
	NotFound                 // the named thing does not exist
	Conflict                 // the request contradicts current state
	Unauthorized             // a token is missing or wrong
	Unavailable              // a dependency (upstream, store, admin API) cannot be reached
	Failed                   // the operation ran and its verdict is negative (a hypothesis broke, a canary failed)
	Forbidden                // refused whoever asks: a Host the API does not serve, a change from another web origin
)

var kindNames = [...]string{"internal", "invalid", "not found", "conflict", "unauthorized", "unavailable", "failed", "forbidden"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is an error with a Kind. Msg is shown to users as is.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind whose message is the formatted text.
// A %w verb makes its operand the cause, so errors.Is and errors.As see through it.
func Errorf(kind Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Kinded is implemented by error types of other packages that know their kind
// (spec.Errors is Invalid) without wrapping themselves in an *Error.
type Kinded interface {
	error
	ErrorKind() Kind
}

// KindOf returns the kind of the first *Error or Kinded error in err's chain, or Internal.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	if k, ok := errors.AsType[Kinded](err); ok {
		return k.ErrorKind()
	}
	return Internal
}
