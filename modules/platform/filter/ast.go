package filter

import "strings"

// Expr is a node of a parsed filter. The set of implementations is closed: And, Or,
// Not, Compare, Present and ValuePath, always held as values (never pointers), so a
// type switch over those six cases is exhaustive.
type Expr interface{ isExpr() }

// And is true when both operands are.
type And struct{ Left, Right Expr }

// Or is true when either operand is.
type Or struct{ Left, Right Expr }

// Not negates X; in filter syntax it is always written `not (X)`.
type Not struct{ X Expr }

// Compare is `Attr Op Value`, e.g. `userName eq "bjensen"`.
type Compare struct {
	Attr  AttrPath
	Op    Op
	Value Value
}

// Present is `Attr pr`: the attribute has a non-empty, non-null value.
type Present struct{ Attr AttrPath }

// ValuePath is `Attr[Filter]`: some element of the multi-valued attribute Attr
// matches Filter. Attribute paths inside Filter name sub-attributes of Attr and
// carry only a Name (no URN, no Sub).
type ValuePath struct {
	Attr   AttrPath
	Filter Expr
}

func (And) isExpr()       {}
func (Or) isExpr()        {}
func (Not) isExpr()       {}
func (Compare) isExpr()   {}
func (Present) isExpr()   {}
func (ValuePath) isExpr() {}

// AttrPath names an attribute: an optional schema URN, an attribute name and an
// optional sub-attribute name. The case is as the client wrote it.
//
//	name.familyName                                              → {Name: "name", Sub: "familyName"}
//	urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value
//	    → {URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Name: "manager", Sub: "value"}
type AttrPath struct {
	URN  string
	Name string
	Sub  string
}

// String returns the path in filter syntax, e.g. "urn:...:User:manager.value".
func (p AttrPath) String() string {
	n := len(p.Name)
	if p.URN != "" {
		n += len(p.URN) + 1
	}
	if p.Sub != "" {
		n += len(p.Sub) + 1
	}
	var b strings.Builder
	b.Grow(n)
	writeAttrPath(&b, p)
	return b.String()
}

func writeAttrPath(b *strings.Builder, p AttrPath) {
	if p.URN != "" {
		b.WriteString(p.URN)
		b.WriteByte(':')
	}
	b.WriteString(p.Name)
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
}

// Op is a comparison operator, always in lower case in the AST whatever case the
// client used.
type Op string

// The comparison operators of RFC 7644 §3.4.2.2. "pr" is not an Op: it is the
// Present node.
const (
	OpEq Op = "eq" // equal
	OpNe Op = "ne" // not equal
	OpCo Op = "co" // contains
	OpSw Op = "sw" // starts with
	OpEw Op = "ew" // ends with
	OpGt Op = "gt" // greater than
	OpGe Op = "ge" // greater than or equal to
	OpLt Op = "lt" // less than
	OpLe Op = "le" // less than or equal to
)

var ops = [...]Op{OpEq, OpNe, OpCo, OpSw, OpEw, OpGt, OpGe, OpLt, OpLe}

// lookupOp matches s against the operators case-insensitively.
func lookupOp(s string) (Op, bool) {
	if len(s) != 2 {
		return "", false
	}
	for _, op := range ops {
		if strings.EqualFold(s, string(op)) {
			return op, true
		}
	}
	return "", false
}

// ValueKind says which field of a Value is meaningful.
type ValueKind uint8

// Value kinds. The zero ValueKind is invalid so that a zero Value is never mistaken
// for the empty string.
const (
	KindString ValueKind = iota + 1 // Value.Str
	KindNumber                      // Value.Num
	KindBool                        // Value.Bool
	KindNull                        // no field
)

func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindNull:
		return "null"
	}
	return "invalid"
}

// Value is the literal on the right of a comparison.
type Value struct {
	Kind ValueKind
	// Str is the decoded string for KindString (escapes already resolved).
	Str string
	// Num is the number exactly as written for KindNumber, e.g. "42" or "-1.5e3";
	// it always matches the JSON number grammar. It is kept as text so that the
	// caller chooses the numeric type (and so no precision is lost on the way).
	Num string
	// Bool is the value for KindBool.
	Bool bool
}

// String returns the value as a filter literal, e.g. `"O'Malley"`, `42` or `true`.
func (v Value) String() string {
	var b strings.Builder
	writeValue(&b, v)
	return b.String()
}
