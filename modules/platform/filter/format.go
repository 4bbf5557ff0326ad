package filter

import "strings"

// Format prints e as a canonical filter: operators and literals in lower case, one
// space between tokens, strings re-encoded as minimal JSON, and parentheses only
// where precedence or associativity needs them. For any AST produced by Parse,
// Parse(Format(e)) yields an AST equal to e (though the printed form may be longer
// than the original input, e.g. when it adds spaces or makes an Entra value-path
// condition explicit). Format(nil) is "".
func Format(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

func writeExpr(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case nil:
	case Compare:
		writeAttrPath(b, e.Attr)
		b.WriteByte(' ')
		b.WriteString(string(e.Op))
		b.WriteByte(' ')
		writeValue(b, e.Value)
	case Present:
		writeAttrPath(b, e.Attr)
		b.WriteString(" pr")
	case Not:
		b.WriteString("not (")
		writeExpr(b, e.X)
		b.WriteByte(')')
	case ValuePath:
		writeAttrPath(b, e.Attr)
		b.WriteByte('[')
		writeExpr(b, e.Filter)
		b.WriteByte(']')
	case And, Or:
		writeChain(b, e)
	default:
		// Only reachable with pointers to nodes (e.g. *And), which are not part of
		// the AST contract; make the mistake visible rather than printing nothing.
		b.WriteString("<invalid node>")
	}
}

// writeChain prints a left-deep chain of the same operator, e.g. And{And{a, b}, c},
// as "a and b and c". It walks the left spine in a loop rather than recursing so
// that a parsed chain of any length prints without deep recursion.
func writeChain(b *strings.Builder, e Expr) {
	isAnd := false
	if _, ok := e.(And); ok {
		isAnd = true
	}
	var rights []Expr
	for {
		if a, ok := e.(And); ok && isAnd {
			rights = append(rights, a.Right)
			e = a.Left
			continue
		}
		if o, ok := e.(Or); ok && !isAnd {
			rights = append(rights, o.Right)
			e = o.Left
			continue
		}
		break
	}
	kw := " or "
	if isAnd {
		kw = " and "
	}
	// The leftmost operand is not of the chain's operator (the loop consumed those);
	// it needs parentheses only if it binds more loosely, i.e. an Or inside an And.
	_, leftOr := e.(Or)
	writeOperand(b, e, isAnd && leftOr)
	for i := len(rights) - 1; i >= 0; i-- {
		b.WriteString(kw)
		// A right operand of the same operator needs parentheses to preserve the
		// tree shape (both operators are left-associative), and so does an Or on
		// the right of an And.
		r := rights[i]
		_, rAnd := r.(And)
		_, rOr := r.(Or)
		writeOperand(b, r, rOr || (isAnd && rAnd))
	}
}

func writeOperand(b *strings.Builder, e Expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	writeExpr(b, e)
	if paren {
		b.WriteByte(')')
	}
}

const hexDigits = "0123456789abcdef"

// writeValue prints v as a filter literal. Strings are encoded as JSON with only
// the mandatory escapes, so non-ASCII text stays readable in logs.
func writeValue(b *strings.Builder, v Value) {
	switch v.Kind {
	case KindString:
		b.WriteByte('"')
		s := v.Str
		last := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 0x20 && c != '"' && c != '\\' {
				continue
			}
			b.WriteString(s[last:i])
			last = i + 1
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xF])
			}
		}
		b.WriteString(s[last:])
		b.WriteByte('"')
	case KindNumber:
		b.WriteString(v.Num)
	case KindBool:
		if v.Bool {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case KindNull:
		b.WriteString("null")
	default:
		b.WriteString("<invalid value>")
	}
}
