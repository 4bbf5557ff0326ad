package patch

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// PatchOpURN is the schema of a PATCH request body (RFC 7644 §3.5.2).
const PatchOpURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// DefaultMaxOperations is the operation limit ParseRequest applies when given
// none. Identity providers send a handful of operations per request (Entra
// batches member changes into a few operations with many values), so a
// thousand leaves ample room while bounding the work one request causes.
const DefaultMaxOperations = 1000

// Operation names, as found in Operation.Op.
const (
	OpAdd     = "add"
	OpReplace = "replace"
	OpRemove  = "remove"
)

// Operation is one element of a PATCH request's "Operations".
type Operation struct {
	// Op is "add", "replace" or "remove", always in lower case.
	Op string
	// Path is the attribute path (RFC 7644 §3.5.2 PATH), "" when the
	// operation has none. An empty or null "path" is treated as absent.
	Path string
	// Value is the raw "value" member, nil when there is none. A JSON null
	// is kept as the literal null.
	Value json.RawMessage
}

// ParseRequest decodes a PATCH request body:
//
//	{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//	 "Operations":[{"op":"replace","path":"active","value":false}]}
//
// Member names are matched case-insensitively ("Operations" and
// "operations", "op" and "Op"), as are operation names ("Replace", "ADD").
// A missing "schemas" is tolerated (Entra omits it in some requests); one
// that does not list PatchOpURN is invalidSyntax. An empty or null
// "Operations" yields no operations, which is not an error. More than maxOps
// operations is tooMany; maxOps <= 0 means DefaultMaxOperations.
//
// ParseRequest checks the envelope only; paths and values are checked by
// Apply against the schema. Any error is an *Error.
func ParseRequest(body []byte, maxOps int) ([]Operation, error) {
	if maxOps <= 0 {
		maxOps = DefaultMaxOperations
	}
	top, err := decodeMembers(body, "request body")
	if err != nil {
		return nil, err
	}
	if raw, ok := top["schemas"]; ok {
		if err := checkSchemas(raw); err != nil {
			return nil, err
		}
	}
	rawOps, ok := top["operations"]
	if !ok {
		return nil, errorf(InvalidSyntax, `request body has no "Operations" member`)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(rawOps, &list); err != nil {
		return nil, errorf(InvalidSyntax, `"Operations" must be an array of operations`)
	}
	if len(list) > maxOps {
		return nil, errorf(TooMany, "request has %d operations; the limit is %d", len(list), maxOps)
	}
	ops := make([]Operation, len(list))
	for i, raw := range list {
		if ops[i], err = parseOperation(i+1, raw); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// decodeMembers decodes a JSON object into its members keyed by lower-cased
// name, rejecting names that differ only in case: which of them the client
// meant is anybody's guess.
func decodeMembers(data []byte, what string) (map[string]json.RawMessage, *Error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errorf(InvalidSyntax, "%s must be a JSON object", what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errorf(InvalidSyntax, "%s is not valid JSON: %v", what, err)
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, errorf(InvalidSyntax, "%s has member %q more than once (names are case-insensitive)", what, k)
		}
		out[lk] = v
	}
	return out, nil
}

func checkSchemas(raw json.RawMessage) *Error {
	if isNull(raw) {
		return nil
	}
	var schemas []string
	if err := json.Unmarshal(raw, &schemas); err != nil {
		return errorf(InvalidSyntax, `"schemas" must be an array of strings`)
	}
	for _, s := range schemas {
		if strings.EqualFold(s, PatchOpURN) {
			return nil
		}
	}
	return errorf(InvalidSyntax, `"schemas" must contain %q`, PatchOpURN)
}

func parseOperation(n int, raw json.RawMessage) (Operation, *Error) {
	m, err := decodeMembers(raw, "operation "+strconv.Itoa(n))
	if err != nil {
		return Operation{}, err
	}
	var op Operation
	rawOp, ok := m["op"]
	if !ok {
		return op, errorf(InvalidSyntax, `operation %d: "op" is required (add, replace or remove)`, n)
	}
	var name string
	if json.Unmarshal(rawOp, &name) != nil {
		return op, errorf(InvalidSyntax, `operation %d: "op" must be a string (add, replace or remove)`, n)
	}
	switch op.Op = strings.ToLower(name); op.Op {
	case OpAdd, OpReplace, OpRemove:
	default:
		return op, errorf(InvalidSyntax, `operation %d: unknown op %q; expected add, replace or remove`, n, name)
	}
	if rawPath, ok := m["path"]; ok && !isNull(rawPath) {
		if json.Unmarshal(rawPath, &op.Path) != nil {
			return op, errorf(InvalidPath, `operation %d (%s): "path" must be a string`, n, op.Op)
		}
	}
	if v, ok := m["value"]; ok {
		op.Value = v
	}
	return op, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
