// Package filtersql translates a parsed SCIM filter into a parameterised SQL condition
// over the caller's own tables. The caller says, through a Schema, which column holds
// each attribute; the filter is never evaluated in memory over a tenant's rows, so the
// database can use its indexes.
//
// The SQL it writes is the subset PostgreSQL and SQLite share: "?" placeholders for Bun,
// LIKE with an explicit ESCAPE (SQLite connections run with case_sensitive_like so both
// dialects compare case-sensitively and case-insensitive attributes are folded
// explicitly), and IN subqueries for multi-valued attributes (which both planners drive
// from the child table's index).
package filtersql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
)

// Kind is the SQL-side type of an attribute.
type Kind int

const (
	String Kind = iota
	Bool
	Time
	Number
)

// Field is a filterable column.
type Field struct {
	// Column is the SQL expression, e.g. "u.user_name_key".
	Column string
	Kind   Kind
	// CaseExact attributes compare as stored. Otherwise values are lower-cased and, unless
	// Folded, so is the column (lower(col)).
	CaseExact bool
	// Folded says Column already holds lower-cased text (an indexed "_key" column).
	Folded bool
	// NotNull says the column is never NULL (a keyset seek then reads one index range).
	NotNull bool
	// Unique says no two of the tenant's rows share a value (with NotNull, a listing
	// sorts by the column alone, as its unique index is ordered).
	Unique bool
}

// Multi describes a multi-valued attribute kept in a child table, one row per value.
type Multi struct {
	// Subquery selects the owning resource ids, already restricted to this attribute and
	// tenant, with "?" placeholders bound by Args; conditions on the element are ANDed to
	// it. E.g. "SELECT v.user_id FROM user_values AS v WHERE v.tenant_id = ? AND v.attr = ?".
	Subquery string
	Args     []any
	// Sub resolves a sub-attribute name (case-insensitive) to a column of the child
	// table; DefaultSub is used when the filter names the attribute alone.
	Sub        func(name string) (Field, bool)
	DefaultSub string
}

// Schema resolves attribute paths of one resource type.
type Schema interface {
	// Resolve returns the field of a single-valued attribute, or the Multi of a
	// multi-valued one (then p.Sub, if any, names its sub-attribute). An unknown or
	// unfilterable attribute is an error whose message names it.
	Resolve(p filter.AttrPath) (*Field, *Multi, error)
}

// Limits on what one filter may cost.
const maxInValueBytes = 1024

func invalid(format string, args ...any) error {
	return apperr.Invalid(format, args...).WithCode("invalidFilter")
}

// Compile returns a SQL condition equivalent to e over the resource whose id column is
// idColumn, with its arguments.
func Compile(e filter.Expr, s Schema, idColumn string) (string, []any, error) {
	c := compiler{s: s, id: idColumn}
	var b strings.Builder
	if err := c.expr(&b, e); err != nil {
		return "", nil, err
	}
	return b.String(), c.args, nil
}

type compiler struct {
	s    Schema
	id   string
	args []any
}

func (c *compiler) expr(b *strings.Builder, e filter.Expr) error {
	switch n := e.(type) {
	case filter.And:
		return c.binary(b, "AND", n.Left, n.Right)
	case filter.Or:
		return c.binary(b, "OR", n.Left, n.Right)
	case filter.Not:
		b.WriteString("NOT (")
		if err := c.expr(b, n.X); err != nil {
			return err
		}
		b.WriteString(")")
		return nil
	case filter.Compare:
		return c.attr(b, n.Attr, func(b *strings.Builder, f Field) error { return c.compare(b, f, n.Attr, n.Op, n.Value) })
	case filter.Present:
		return c.attr(b, n.Attr, func(b *strings.Builder, f Field) error { return c.present(b, f) })
	case filter.ValuePath:
		return c.valuePath(b, n)
	}
	return invalid("unsupported filter node %T", e)
}

// binary writes "(L op R)". Recursion is bounded by the parser's node limit
// (filter.DefaultLimits.MaxNodes), so hostile input cannot exhaust the stack.
func (c *compiler) binary(b *strings.Builder, op string, l, r filter.Expr) error {
	b.WriteString("(")
	if err := c.expr(b, l); err != nil {
		return err
	}
	b.WriteString(" " + op + " ")
	if err := c.expr(b, r); err != nil {
		return err
	}
	b.WriteString(")")
	return nil
}

// attr writes a condition on one attribute, wrapping it in the membership subquery when
// the attribute is multi-valued ("some value matches", RFC 7644 §3.4.2.2).
func (c *compiler) attr(b *strings.Builder, p filter.AttrPath, cond func(*strings.Builder, Field) error) error {
	f, m, err := c.s.Resolve(p)
	if err != nil {
		return err
	}
	if m == nil {
		return cond(b, *f)
	}
	sub := p.Sub
	if sub == "" {
		sub = m.DefaultSub
	}
	sf, ok := m.Sub(sub)
	if !ok {
		return invalid("attribute %q has no sub-attribute %q that can be filtered", p.Name, sub)
	}
	c.open(b, m)
	if err := cond(b, sf); err != nil {
		return err
	}
	b.WriteString("))")
	return nil
}

func (c *compiler) open(b *strings.Builder, m *Multi) {
	b.WriteString(c.id + " IN (" + m.Subquery + " AND (")
	c.args = append(c.args, m.Args...)
}

func (c *compiler) valuePath(b *strings.Builder, n filter.ValuePath) error {
	_, m, err := c.s.Resolve(n.Attr)
	if err != nil {
		return err
	}
	if m == nil {
		return invalid("attribute %q is not multi-valued, so it cannot take a [filter]", n.Attr.String())
	}
	inner := compiler{s: subSchema{m: m, parent: n.Attr.Name}, id: "", args: nil}
	var ib strings.Builder
	if err := inner.expr(&ib, n.Filter); err != nil {
		return err
	}
	c.open(b, m)
	b.WriteString(ib.String())
	c.args = append(c.args, inner.args...)
	b.WriteString("))")
	return nil
}

// subSchema resolves the plain sub-attribute names inside a value path.
type subSchema struct {
	m      *Multi
	parent string
}

func (s subSchema) Resolve(p filter.AttrPath) (*Field, *Multi, error) {
	if p.URN != "" || p.Sub != "" {
		return nil, nil, invalid("inside %s[…] name sub-attributes only, got %q", s.parent, p.String())
	}
	f, ok := s.m.Sub(p.Name)
	if !ok {
		return nil, nil, invalid("attribute %q has no sub-attribute %q that can be filtered", s.parent, p.Name)
	}
	return &f, nil, nil
}

func (c *compiler) col(f Field) string {
	if f.Kind == String && !f.CaseExact && !f.Folded {
		return "lower(" + f.Column + ")"
	}
	return f.Column
}

func (c *compiler) present(b *strings.Builder, f Field) error {
	if f.Kind == String {
		b.WriteString("(" + f.Column + " IS NOT NULL AND " + f.Column + " <> '')")
	} else {
		b.WriteString(f.Column + " IS NOT NULL")
	}
	return nil
}

func (c *compiler) compare(b *strings.Builder, f Field, p filter.AttrPath, op filter.Op, v filter.Value) error {
	if v.Kind == filter.KindNull {
		switch op {
		case filter.OpEq:
			b.WriteString(f.Column + " IS NULL")
			return nil
		case filter.OpNe:
			b.WriteString(f.Column + " IS NOT NULL")
			return nil
		}
		return invalid("%s %s null: only eq and ne compare with null", p.String(), op)
	}
	arg, err := c.value(f, p, op, v)
	if err != nil {
		return err
	}
	col := c.col(f)
	switch op {
	case filter.OpEq:
		b.WriteString(col + " = ?")
	case filter.OpNe:
		// An unassigned attribute is "not equal" to any value.
		b.WriteString("(" + f.Column + " IS NULL OR " + col + " <> ?)")
	case filter.OpGt, filter.OpGe, filter.OpLt, filter.OpLe:
		if f.Kind == Bool {
			return invalid("%s is a boolean; %s does not apply (use eq or ne)", p.String(), op)
		}
		sym := map[filter.Op]string{filter.OpGt: ">", filter.OpGe: ">=", filter.OpLt: "<", filter.OpLe: "<="}[op]
		b.WriteString(col + " " + sym + " ?")
	case filter.OpCo, filter.OpSw, filter.OpEw:
		if f.Kind != String {
			return invalid("%s is not a string; %s does not apply", p.String(), op)
		}
		s := db.EscapeLike(arg.(string))
		switch op {
		case filter.OpCo:
			arg = "%" + s + "%"
		case filter.OpSw:
			arg = s + "%"
		default:
			arg = "%" + s
		}
		b.WriteString(col + ` LIKE ? ESCAPE '\'`)
	default:
		return invalid("unsupported operator %q", op)
	}
	c.args = append(c.args, arg)
	return nil
}

// inCalendar reports whether t falls in years 0001 to 9999 in UTC, the times both
// databases store and read back: RFC 3339 text reaches year 0000, which PostgreSQL does
// not have, and through an offset a year past 9999, which neither reads back.
func inCalendar(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// value converts the literal to the column's type, refusing mismatches with a message
// that names the attribute.
func (c *compiler) value(f Field, p filter.AttrPath, op filter.Op, v filter.Value) (any, error) {
	switch f.Kind {
	case String:
		if v.Kind != filter.KindString {
			return nil, invalid("%s is a string; compare it with a quoted value", p.String())
		}
		if len(v.Str) > maxInValueBytes {
			return nil, invalid("the value compared with %s is longer than %d bytes", p.String(), maxInValueBytes)
		}
		if strings.IndexByte(v.Str, 0) >= 0 {
			// No stored text holds U+0000, and neither database takes it as an argument.
			return nil, invalid("the value compared with %s contains the NUL character (U+0000)", p.String())
		}
		if f.CaseExact {
			return v.Str, nil
		}
		return strings.ToLower(v.Str), nil
	case Bool:
		switch {
		case v.Kind == filter.KindBool:
			return v.Bool, nil
		case v.Kind == filter.KindString && strings.EqualFold(v.Str, "true"):
			return true, nil
		case v.Kind == filter.KindString && strings.EqualFold(v.Str, "false"):
			return false, nil
		}
		return nil, invalid("%s is a boolean; compare it with true or false", p.String())
	case Time:
		if v.Kind != filter.KindString {
			return nil, invalid("%s is a dateTime; compare it with a quoted RFC 3339 time", p.String())
		}
		t, err := time.Parse(time.RFC3339Nano, v.Str)
		if err != nil {
			return nil, invalid("%s is a dateTime; %q is not an RFC 3339 time such as \"2026-01-02T15:04:05Z\"", p.String(), v.Str)
		}
		if !inCalendar(t) {
			return nil, invalid("%s is a dateTime; %q is outside years 0001 to 9999 in UTC", p.String(), v.Str)
		}
		return t.UTC(), nil
	case Number:
		if v.Kind != filter.KindNumber {
			return nil, invalid("%s is a number; compare it with an unquoted number", p.String())
		}
		n, err := strconv.ParseFloat(v.Num, 64)
		if err != nil {
			return nil, invalid("%s: %q is not a number", p.String(), v.Num)
		}
		return n, nil
	}
	return nil, fmt.Errorf("filtersql: unknown kind %d", f.Kind)
}
