package patch

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
	"github.com/gatehouse-dev/gatehouse/modules/scim/internal/schema"
)

// Value filters select elements of a complex multi-valued attribute
// (RFC 7644 §3.5.2, valuePath). Their attribute paths name sub-attributes of
// that attribute. The filter parser bounds a filter's size and nesting
// (filter.DefaultLimits); the walks below use explicit stacks for and/or
// chains so that only parenthesised nesting costs stack depth.

// checkFilter verifies that e only names sub-attributes of attr and compares
// each with a literal of a fitting type, so that evaluation cannot fail and
// a bad filter is reported even when there is nothing to match. It returns
// a message for the client, or "".
func checkFilter(attr *schema.Attribute, e filter.Expr) string {
	stack := []filter.Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := x.(type) {
		case filter.And:
			stack = append(stack, n.Left, n.Right)
		case filter.Or:
			stack = append(stack, n.Left, n.Right)
		case filter.Not:
			stack = append(stack, n.X)
		case filter.Present:
			if attr.Sub(n.Attr.Name) == nil {
				return unknownSub(attr, n.Attr.Name)
			}
		case filter.Compare:
			sub := attr.Sub(n.Attr.Name)
			if sub == nil {
				return unknownSub(attr, n.Attr.Name)
			}
			if msg := checkLiteral(attr, sub, n.Op, n.Value); msg != "" {
				return msg
			}
		default:
			return "nested filters are not supported"
		}
	}
	return ""
}

func unknownSub(attr *schema.Attribute, name string) string {
	return fmt.Sprintf("attribute %q has no sub-attribute %q", attr.Name, name)
}

// checkLiteral checks that v can be compared with sub using op. The parser
// already restricts co/sw/ew to strings, gt/ge/lt/le to strings and
// numbers, and null to eq/ne.
func checkLiteral(attr, sub *schema.Attribute, op filter.Op, v filter.Value) string {
	if v.Kind == filter.KindNull {
		return ""
	}
	path := attr.Name + "." + sub.Name
	bad := func(want string) string {
		return fmt.Sprintf("%s is %s, so it cannot be compared with %s using %q", path, want, v, op)
	}
	switch sub.Type {
	case schema.TypeBoolean:
		if _, ok := literalBool(v); !ok || (op != filter.OpEq && op != filter.OpNe) {
			return bad("a boolean (only eq and ne with true or false apply)")
		}
	case schema.TypeInteger, schema.TypeDecimal:
		if v.Kind != filter.KindNumber {
			return bad("a number")
		}
	case schema.TypeDateTime:
		if v.Kind != filter.KindString {
			return bad("a dateTime")
		}
		if _, err := time.Parse(time.RFC3339, v.Str); err != nil {
			return fmt.Sprintf("%s is a dateTime; %s is not in RFC 3339 format", path, v)
		}
	case schema.TypeComplex:
		return fmt.Sprintf("%s is complex and cannot be compared", path)
	default:
		if v.Kind != filter.KindString {
			return bad("a string")
		}
	}
	return ""
}

// literalBool reads a boolean literal, also accepting the strings "true"
// and "false" in any case, as schema.Coerce does for values.
func literalBool(v filter.Value) (bool, bool) {
	switch {
	case v.Kind == filter.KindBool:
		return v.Bool, true
	case v.Kind == filter.KindString && strings.EqualFold(v.Str, "true"):
		return true, true
	case v.Kind == filter.KindString && strings.EqualFold(v.Str, "false"):
		return false, true
	}
	return false, false
}

// operands flattens a chain of And nodes, or of Or nodes, rooted at e into
// its operands, left to right, without recursion.
func operands(e filter.Expr) []filter.Expr {
	_, isAnd := e.(filter.And)
	var out []filter.Expr
	stack := []filter.Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := x.(type) {
		case filter.And:
			if isAnd {
				stack = append(stack, n.Right, n.Left) // left is popped first
				continue
			}
		case filter.Or:
			if !isAnd {
				stack = append(stack, n.Right, n.Left)
				continue
			}
		}
		out = append(out, x)
	}
	return out
}

// matches evaluates a filter checked by checkFilter against one element.
// It recurses only where operators change (a parenthesised group, not, an
// and inside an or), which filter.DefaultLimits.MaxDepth bounds.
func matches(attr *schema.Attribute, e filter.Expr, elem map[string]any) bool {
	switch n := e.(type) {
	case filter.And:
		for _, x := range operands(n) {
			if !matches(attr, x, elem) {
				return false
			}
		}
		return true
	case filter.Or:
		for _, x := range operands(n) {
			if matches(attr, x, elem) {
				return true
			}
		}
		return false
	case filter.Not:
		return !matches(attr, n.X, elem)
	case filter.Present:
		sub := attr.Sub(n.Attr.Name)
		v := lookup(elem, sub.Name)
		return !unassigned(v) && v != ""
	case filter.Compare:
		sub := attr.Sub(n.Attr.Name)
		return compareAny(sub, n.Op, lookup(elem, sub.Name), n.Value)
	}
	return false
}

// compareAny compares a sub-attribute value with a literal; a multi-valued
// sub-attribute matches if any of its values does.
func compareAny(sub *schema.Attribute, op filter.Op, v any, lit filter.Value) bool {
	if l, ok := schema.AsList(v); ok && len(l) > 0 {
		for _, e := range l {
			if compare(sub, op, e, lit) {
				return true
			}
		}
		return false
	}
	return compare(sub, op, v, lit)
}

func compare(sub *schema.Attribute, op filter.Op, v any, lit filter.Value) bool {
	if lit.Kind == filter.KindNull {
		return (op == filter.OpEq) == unassigned(v)
	}
	if unassigned(v) {
		// An absent value equals nothing, so it is "not equal" to anything.
		return op == filter.OpNe
	}
	switch sub.Type {
	case schema.TypeBoolean:
		b, ok := v.(bool)
		want, _ := literalBool(lit)
		return ok && (b == want) == (op == filter.OpEq)
	case schema.TypeInteger, schema.TypeDecimal:
		x, ok := numberValue(v)
		y, err := strconv.ParseFloat(lit.Num, 64)
		return ok && err == nil && ordered(cmp.Compare(x, y), op)
	case schema.TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		x, errX := time.Parse(time.RFC3339, s)
		y, errY := time.Parse(time.RFC3339, lit.Str)
		if errX == nil && errY == nil {
			return ordered(x.Compare(y), op)
		}
		return compareStrings(s, lit.Str, op, true)
	}
	s, ok := v.(string)
	return ok && compareStrings(s, lit.Str, op, sub.CaseExact)
}

// compareStrings applies op, folding case unless caseExact (RFC 7644
// §3.4.2.2 honours the attribute's caseExact characteristic).
func compareStrings(s, lit string, op filter.Op, caseExact bool) bool {
	if !caseExact {
		s, lit = strings.ToLower(s), strings.ToLower(lit)
	}
	switch op {
	case filter.OpCo:
		return strings.Contains(s, lit)
	case filter.OpSw:
		return strings.HasPrefix(s, lit)
	case filter.OpEw:
		return strings.HasSuffix(s, lit)
	}
	return ordered(strings.Compare(s, lit), op)
}

// ordered applies a comparison operator to the result c of a comparison.
func ordered(c int, op filter.Op) bool {
	switch op {
	case filter.OpEq:
		return c == 0
	case filter.OpNe:
		return c != 0
	case filter.OpGt:
		return c > 0
	case filter.OpGe:
		return c >= 0
	case filter.OpLt:
		return c < 0
	case filter.OpLe:
		return c <= 0
	}
	return false
}

// cond is one `sub eq literal` term of a filter.
type cond struct {
	sub *schema.Attribute
	val any // the literal as a decoded JSON value
}

// eqConjunction returns the terms of a filter made only of eq comparisons
// joined by and, e.g. `type eq "work" and primary eq true`: such a filter
// describes the element it looks for, which is what lets add and replace
// create that element when none matches. A nil filter is the empty
// conjunction. ok is false for any other filter.
func eqConjunction(attr *schema.Attribute, e filter.Expr) (conds []cond, ok bool) {
	if e == nil {
		return nil, true
	}
	stack := []filter.Expr{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch n := x.(type) {
		case filter.And:
			stack = append(stack, n.Right, n.Left)
		case filter.Compare:
			if n.Op != filter.OpEq || n.Value.Kind == filter.KindNull {
				return nil, false
			}
			c := cond{sub: attr.Sub(n.Attr.Name), val: literalValue(n.Value)}
			for _, prev := range conds {
				// `type eq "work" and type eq "home"` describes nothing.
				if prev.sub == c.sub && !equal(prev.val, c.val) {
					return nil, false
				}
			}
			conds = append(conds, c)
		default:
			return nil, false
		}
	}
	return conds, true
}

func literalValue(v filter.Value) any {
	switch v.Kind {
	case filter.KindString:
		return v.Str
	case filter.KindNumber:
		return json.Number(v.Num)
	case filter.KindBool:
		return v.Bool
	}
	return nil
}
