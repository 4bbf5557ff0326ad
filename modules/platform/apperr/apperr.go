// Package apperr is the small error vocabulary every module speaks. A module returns an
// *Error with a Kind; each transport (SCIM, GraphQL, HTML, CLI) maps the kind to its own
// wire format exactly once, so the same rule violation looks the same everywhere.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind string

const (
	KindInvalid            Kind = "invalid"             // the input is wrong; fix it and retry
	KindNotFound           Kind = "not_found"           // no such thing (or not visible to this tenant)
	KindConflict           Kind = "conflict"            // violates uniqueness or current state
	KindForbidden          Kind = "forbidden"           // authenticated, but not allowed
	KindUnauthenticated    Kind = "unauthenticated"     // no valid credential
	KindPreconditionFailed Kind = "precondition_failed" // a version check failed
	KindUnavailable        Kind = "unavailable"         // a dependency is down; retry later
	KindInternal           Kind = "internal"            // a bug or an unexpected failure
)

// Error is an error with a Kind, a message safe to show to the caller, and optionally the
// underlying cause, which is for logs only.
type Error struct {
	Kind Kind
	// Code is an optional machine-readable refinement of Kind that a transport may surface
	// (for SCIM it becomes scimType, e.g. "uniqueness", "invalidFilter").
	Code string
	// Message is shown to the caller; it must never contain secrets or internals.
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind with a formatted public message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// WithCode returns a copy of e carrying a machine-readable code.
func (e *Error) WithCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

func Invalid(format string, args ...any) *Error   { return New(KindInvalid, format, args...) }
func NotFound(format string, args ...any) *Error  { return New(KindNotFound, format, args...) }
func Conflict(format string, args ...any) *Error  { return New(KindConflict, format, args...) }
func Forbidden(format string, args ...any) *Error { return New(KindForbidden, format, args...) }
func Unauthenticated(format string, args ...any) *Error {
	return New(KindUnauthenticated, format, args...)
}
func PreconditionFailed(format string, args ...any) *Error {
	return New(KindPreconditionFailed, format, args...)
}

// Unavailable wraps a dependency failure; the cause is kept for the log.
func Unavailable(err error, format string, args ...any) *Error {
	e := New(KindUnavailable, format, args...)
	e.Err = err
	return e
}

// KindOf reports the kind of err: the Kind of the first *Error in its chain, or
// KindInternal for any other non-nil error.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// CodeOf returns the Code of the first *Error in err's chain, or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// PublicMessage returns what may be shown to a caller: the message of an *Error, or
// "internal error" for anything else, so internals never leak.
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		return e.Message
	}
	return "internal error"
}

// Is reports whether err has the given kind.
func Is(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }
