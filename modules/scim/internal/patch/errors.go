package patch

import "fmt"

// SCIM error types (RFC 7644 §3.12, Table 9) reported in Error.ScimType.
// All of them go with HTTP status 400.
const (
	InvalidSyntax = "invalidSyntax" // the request body is not a valid PatchOp message
	InvalidPath   = "invalidPath"   // a path is malformed or names no attribute
	NoTarget      = "noTarget"      // a path or filter selects nothing where something is needed
	InvalidValue  = "invalidValue"  // a value is missing or has the wrong type
	Mutability    = "mutability"    // the operation would modify a readOnly or immutable attribute
	TooMany       = "tooMany"       // more operations than the server accepts
)

// Error is a client error in a PATCH request. ScimType is one of the
// constants above and Detail a message for the client, which names the
// operation (1-based) and says what is wrong, e.g.
// "operation 2 (remove): path is required for remove".
type Error struct {
	ScimType string
	Detail   string
}

func (e *Error) Error() string { return e.ScimType + ": " + e.Detail }

func errorf(scimType, format string, args ...any) *Error {
	return &Error{ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}
