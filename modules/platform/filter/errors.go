package filter

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Sentinels for the limit violations, matched with errors.Is. They are always
// wrapped in an *Error, so code that maps every *Error to scimType invalidFilter
// (or invalidPath) needs no special case, while code that wants to log or count
// abuse can tell them apart.
var (
	ErrTooLong    = errors.New("filter: input too long")
	ErrTooDeep    = errors.New("filter: nested too deeply")
	ErrTooComplex = errors.New("filter: too many nodes")
)

// Error is a syntax or limit error. Msg is meant for the API client and says what
// was expected and what was found; Offset is the 0-based byte offset in the input
// where the problem was detected.
type Error struct {
	Msg    string
	Offset int

	what string // "filter" or "path"; "" means "filter"
	err  error  // one of the sentinels, for limit errors
}

func (e *Error) Error() string {
	if e.err != nil {
		// Limit messages are self-contained ("filter is 5000 bytes; the limit is
		// 4096"); an offset would add nothing the client can act on.
		return e.Msg
	}
	what := e.what
	if what == "" {
		what = "filter"
	}
	return "invalid " + what + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Unwrap returns ErrTooLong, ErrTooDeep or ErrTooComplex for limit errors and nil
// otherwise.
func (e *Error) Unwrap() error { return e.err }

func errTooLong(what string, n, limit int) *Error {
	return &Error{
		Msg:    fmt.Sprintf("%s is %d bytes; the limit is %d", what, n, limit),
		Offset: limit,
		what:   what,
		err:    ErrTooLong,
	}
}

// maxQuoted bounds how much of the input an error message repeats, so a hostile
// megabyte-long token cannot produce a megabyte-long error (or log line).
const maxQuoted = 40

// quote returns s as a Go-quoted string, truncated to maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncate(s)) + "..."
}

// truncate cuts s to at most maxQuoted bytes without splitting a UTF-8 sequence.
func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	i := maxQuoted
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
