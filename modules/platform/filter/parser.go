package filter

import (
	"fmt"
	"strings"
)

// Limits bounds the work a single filter can cause. A zero or negative field means
// "use the default" (the values DefaultLimits is initialised with), so a partially
// filled Limits never silently disables a protection.
type Limits struct {
	// MaxLength is the maximum input length in bytes.
	MaxLength int
	// MaxDepth is the maximum number of nested groups: parentheses (including the
	// one after "not") and value-path brackets. The parser recurses only on these,
	// so MaxDepth bounds its stack use; for that reason values above MaxDepthCap
	// are treated as MaxDepthCap.
	MaxDepth int
	// MaxNodes is the maximum number of AST nodes (comparisons, presence tests,
	// and, or, not and value paths).
	MaxNodes int
}

// DefaultLimits are generous for every filter an identity provider sends in
// practice and small enough that a hostile filter cannot become an expensive query.
var DefaultLimits = Limits{MaxLength: defaultMaxLength, MaxDepth: defaultMaxDepth, MaxNodes: defaultMaxNodes}

// The defaults are constants so that reassigning DefaultLimits cannot turn the
// fallback for zero fields into zero.
const (
	defaultMaxLength = 4096
	defaultMaxDepth  = 16
	defaultMaxNodes  = 256
)

// MaxDepthCap is the largest effective Limits.MaxDepth. Each level costs a few
// stack frames, and a goroutine that exhausts its stack kills the whole process,
// so no configuration may allow hostile input to nest without bound.
const MaxDepthCap = 10_000

func (l Limits) withDefaults() Limits {
	if l.MaxLength <= 0 {
		l.MaxLength = defaultMaxLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	l.MaxDepth = min(l.MaxDepth, MaxDepthCap)
	if l.MaxNodes <= 0 {
		l.MaxNodes = defaultMaxNodes
	}
	return l
}

// Parse parses a SCIM filter with DefaultLimits. Any error is an *Error.
func Parse(s string) (Expr, error) { return ParseWithLimits(s, DefaultLimits) }

// ParseWithLimits parses a SCIM filter, rejecting input that exceeds l. Any error is
// an *Error; limit violations also match ErrTooLong, ErrTooDeep or ErrTooComplex
// with errors.Is.
func ParseWithLimits(s string, l Limits) (Expr, error) {
	e, err := parseFilter(s, l.withDefaults())
	if err != nil {
		return nil, err
	}
	return e, nil
}

func parseFilter(s string, l Limits) (Expr, *Error) {
	if len(s) > l.MaxLength {
		return nil, errTooLong("filter", len(s), l.MaxLength)
	}
	p := &parser{lex: lexer{src: s}, lim: l, what: "filter"}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, p.errAt(p.tok.pos, "filter is empty")
	}
	e, err := p.parseOr(false)
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokEOF:
		return e, nil
	case tokRParen:
		return nil, p.errAt(p.tok.pos, `unbalanced parentheses: ")" has no matching "("`)
	}
	return nil, p.errAt(p.tok.pos, `expected "and", "or" or the end of the filter after %s, found %s`,
		p.describe(p.prev), p.describe(p.tok))
}

// Path is a parsed PATCH path (RFC 7644 §3.5.2):
//
//	members                        → {Attr: {Name: "members"}}
//	name.givenName                 → {Attr: {Name: "name", Sub: "givenName"}}
//	members[value eq "2819c223"]   → {Attr: {Name: "members"}, Filter: value eq "2819c223"}
//	emails[type eq "work"].value   → {Attr: {Name: "emails"}, Filter: type eq "work", Sub: "value"}
type Path struct {
	// Attr is the targeted attribute. When Filter is non-nil, Attr.Sub is empty.
	Attr AttrPath
	// Filter selects elements of the multi-valued attribute Attr; nil if none.
	// Its attribute paths name sub-attributes of Attr.
	Filter Expr
	// Sub is the sub-attribute of the selected elements, as in
	// `emails[type eq "work"].value`; empty if none. Only set when Filter is.
	Sub string
}

// String returns the path in PATCH path syntax, with the filter in canonical form.
func (p Path) String() string {
	var b strings.Builder
	writeAttrPath(&b, p.Attr)
	if p.Filter != nil {
		b.WriteByte('[')
		writeExpr(&b, p.Filter)
		b.WriteByte(']')
	}
	if p.Sub != "" {
		b.WriteByte('.')
		b.WriteString(p.Sub)
	}
	return b.String()
}

// ParsePath parses a PATCH operation's "path" with DefaultLimits. Any error is an
// *Error (callers map it to scimType invalidPath). Unlike filters, paths admit no
// whitespace outside the brackets.
func ParsePath(s string) (Path, error) {
	p, err := parsePath(s, DefaultLimits.withDefaults())
	if err != nil {
		return Path{}, err
	}
	return p, nil
}

func parsePath(s string, l Limits) (Path, *Error) {
	if len(s) > l.MaxLength {
		return Path{}, errTooLong("path", len(s), l.MaxLength)
	}
	p := &parser{lex: lexer{src: s}, lim: l, what: "path"}
	if err := p.advance(); err != nil {
		return Path{}, err
	}
	t := p.tok
	switch {
	case t.kind == tokEOF && t.pos == 0:
		return Path{}, p.errAt(0, "path is empty")
	case t.pos != 0:
		return Path{}, p.errAt(0, "path must not start with whitespace")
	case t.kind != tokWord:
		return Path{}, p.errAt(t.pos, "expected an attribute name, found %s", p.describe(t))
	}
	attr, err := p.attrPath(t, false)
	if err != nil {
		return Path{}, err
	}
	if err := p.advance(); err != nil {
		return Path{}, err
	}
	path := Path{Attr: attr}
	if p.tok.kind == tokLBrack {
		f, rb, err := p.parseBrackets(t, attr)
		if err != nil {
			return Path{}, err
		}
		path.Filter = f
		if p.tok.kind == tokDot {
			sub, err := p.parseSubAfterBracket(rb)
			if err != nil {
				return Path{}, err
			}
			path.Sub = sub
		}
	}
	if p.tok.kind != tokEOF {
		if p.tok.pos != p.prev.end {
			return Path{}, p.errAt(p.prev.end, "unexpected whitespace in path")
		}
		return Path{}, p.errAt(p.tok.pos, "unexpected %s after %s", p.describe(p.tok), p.describe(p.prev))
	}
	if p.prev.end != len(s) {
		return Path{}, p.errAt(p.prev.end, "path must not end with whitespace")
	}
	return path, nil
}

// parser is a recursive-descent parser with one token of lookahead. It recurses
// only into groups ("(...)", "not (...)", "[...]"), each of which counts against
// Limits.MaxDepth; and/or chains are built in loops.
type parser struct {
	lex   lexer
	tok   token // current token
	prev  token // previous token, for "after X" in messages; kind tokEOF at start
	lim   Limits
	what  string // "filter" or "path", for messages
	depth int
	nodes int
}

func (p *parser) advance() *Error {
	p.prev = p.tok
	t, err := p.lex.next()
	if err != nil {
		err.what = p.what
		return err
	}
	p.tok = t
	return nil
}

// started reports whether any token has been consumed, i.e. whether p.prev is real.
func (p *parser) started() bool { return p.prev.end > 0 }

func (p *parser) errAt(off int, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Offset: off, what: p.what}
}

// text returns the source text of t.
func (p *parser) text(t token) string { return p.lex.src[t.pos:t.end] }

// describe names a token for an error message.
func (p *parser) describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokString:
		// The literal already carries its quotes; quoting it again would bury the
		// value under backslashes.
		txt := p.text(t)
		if len(txt) > maxQuoted {
			return "string " + truncate(txt) + `..."`
		}
		return "string " + txt
	}
	return quote(p.text(t))
}

// after returns " after X" naming the previous token, or "" at the start of input.
func (p *parser) after() string {
	if !p.started() {
		return ""
	}
	return " after " + p.describe(p.prev)
}

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokWord && strings.EqualFold(p.text(p.tok), kw)
}

func (p *parser) addNode(off int) *Error {
	p.nodes++
	if p.nodes > p.lim.MaxNodes {
		return &Error{
			Msg: fmt.Sprintf("%s is too complex: it has more than %d comparisons and logical operators",
				p.what, p.lim.MaxNodes),
			Offset: off, what: p.what, err: ErrTooComplex,
		}
	}
	return nil
}

func (p *parser) enter(off int) *Error {
	p.depth++
	if p.depth > p.lim.MaxDepth {
		return &Error{
			Msg:    fmt.Sprintf("%s nests deeper than %d levels", p.what, p.lim.MaxDepth),
			Offset: off, what: p.what, err: ErrTooDeep,
		}
	}
	return nil
}

// parseOr parses OR = AND *("or" AND). inner is true inside value-path brackets.
func (p *parser) parseOr(inner bool) (Expr, *Error) {
	left, err := p.parseAnd(inner)
	if err != nil {
		return nil, err
	}
	for p.isKeyword("or") {
		off := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.parseAnd(inner)
		if err != nil {
			return nil, err
		}
		if err := p.addNode(off); err != nil {
			return nil, err
		}
		left = Or{Left: left, Right: right}
	}
	return left, nil
}

// parseAnd parses AND = UNARY *("and" UNARY).
func (p *parser) parseAnd(inner bool) (Expr, *Error) {
	left, err := p.parseUnary(inner)
	if err != nil {
		return nil, err
	}
	for p.isKeyword("and") {
		off := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.parseUnary(inner)
		if err != nil {
			return nil, err
		}
		if err := p.addNode(off); err != nil {
			return nil, err
		}
		left = And{Left: left, Right: right}
	}
	return left, nil
}

// parseUnary parses UNARY = "(" OR ")" / "not" "(" OR ")" / ATTREXP.
func (p *parser) parseUnary(inner bool) (Expr, *Error) {
	switch {
	case p.tok.kind == tokLParen:
		return p.parseGroup(inner)
	case p.isKeyword("not"):
		off := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokLParen {
			return nil, p.errAt(p.tok.pos, `"not" must be followed by a filter in parentheses, as in not (title pr); found %s`,
				p.describe(p.tok))
		}
		x, err := p.parseGroup(inner)
		if err != nil {
			return nil, err
		}
		if err := p.addNode(off); err != nil {
			return nil, err
		}
		return Not{X: x}, nil
	case p.tok.kind == tokWord && !p.isKeyword("and") && !p.isKeyword("or"):
		return p.parseAttrExpr(inner)
	case p.tok.kind == tokLBrack && inner:
		return nil, p.errAt(p.tok.pos, `nested value paths are not allowed: "[" inside "[...]"`)
	}
	return nil, p.errAt(p.tok.pos, `expected an attribute path, "(" or "not"%s, found %s`, p.after(), p.describe(p.tok))
}

// parseGroup parses "(" OR ")" with p.tok at "(".
func (p *parser) parseGroup(inner bool) (Expr, *Error) {
	open := p.tok
	if err := p.enter(open.pos); err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	e, err := p.parseOr(inner)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		return nil, p.errAt(p.tok.pos, `expected ")" to close the "(" at offset %d, found %s`, open.pos, p.describe(p.tok))
	}
	p.depth--
	return e, p.advance()
}

// parseAttrExpr parses an attribute expression with p.tok at the attribute path:
// `attr pr`, `attr op value`, `attr[filter]` or Entra's `attr[filter].sub op value`.
func (p *parser) parseAttrExpr(inner bool) (Expr, *Error) {
	at := p.tok
	attr, err := p.attrPath(at, inner)
	if err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokLBrack {
		return p.parseCondition(attr, p.text(at), at.pos)
	}
	if inner {
		return nil, p.errAt(p.tok.pos, `nested value paths are not allowed: "[" inside "[...]"`)
	}
	f, rb, err := p.parseBrackets(at, attr)
	if err != nil {
		return nil, err
	}
	if err := p.addNode(at.pos); err != nil {
		return nil, err
	}
	if p.tok.kind == tokDot {
		// Entra ID's `emails[type eq "work"].value eq "x"`: fold the trailing
		// condition into the element filter so that both must hold for the same
		// element, which is what the client means.
		dot := p.tok
		sub, err := p.parseSubAfterBracket(rb)
		if err != nil {
			return nil, err
		}
		cond, err := p.parseCondition(AttrPath{Name: sub}, p.text(at)+"[...]."+sub, dot.pos)
		if err != nil {
			return nil, err
		}
		if err := p.addNode(dot.pos); err != nil {
			return nil, err
		}
		f = And{Left: f, Right: cond}
	}
	return ValuePath{Attr: attr, Filter: f}, nil
}

// parseBrackets parses "[" VALFILTER "]" with p.tok at "[" directly after the
// attribute token at. It returns the filter and the "]" token, leaving p.tok after it.
func (p *parser) parseBrackets(at token, attr AttrPath) (Expr, token, *Error) {
	open := p.tok
	if open.pos != at.end {
		return nil, token{}, p.errAt(at.end, `unexpected whitespace before "["; write %s[...]`, truncate(p.text(at)))
	}
	if attr.Sub != "" {
		return nil, token{}, p.errAt(open.pos,
			`a value filter must follow a multi-valued attribute, not the sub-attribute %s; write %s[...]`,
			quote(p.text(at)), truncate(strings.TrimSuffix(p.text(at), "."+attr.Sub)))
	}
	if err := p.enter(open.pos); err != nil {
		return nil, token{}, err
	}
	if err := p.advance(); err != nil {
		return nil, token{}, err
	}
	f, err := p.parseOr(true)
	if err != nil {
		return nil, token{}, err
	}
	if p.tok.kind != tokRBrack {
		return nil, token{}, p.errAt(p.tok.pos, `expected "]" to close the "[" at offset %d, found %s`, open.pos, p.describe(p.tok))
	}
	p.depth--
	rb := p.tok
	return f, rb, p.advance()
}

// parseSubAfterBracket parses the ".sub" of `attr[...].sub` with p.tok at the "."
// and rb the preceding "]".
func (p *parser) parseSubAfterBracket(rb token) (string, *Error) {
	dot := p.tok
	if dot.pos != rb.end {
		return "", p.errAt(rb.end, `unexpected whitespace before "."`)
	}
	if err := p.advance(); err != nil {
		return "", err
	}
	t := p.tok
	if t.kind != tokWord || t.pos != dot.end {
		return "", p.errAt(dot.end, `expected a sub-attribute name right after "].", found %s`, p.describe(t))
	}
	name := p.text(t)
	if i := strings.IndexAny(name, ".:"); i >= 0 {
		return "", p.errAt(t.pos+i, `expected a single sub-attribute name after "].", found %s`, quote(name))
	}
	if err := p.checkName(name, t.pos); err != nil {
		return "", err
	}
	return name, p.advance()
}

// parseCondition parses `pr` or `op value` after the attribute attr (written as
// attrText at offset attrOff, for messages).
func (p *parser) parseCondition(attr AttrPath, attrText string, attrOff int) (Expr, *Error) {
	opTok := p.tok
	if p.isKeyword("pr") {
		if err := p.addNode(attrOff); err != nil {
			return nil, err
		}
		return Present{Attr: attr}, p.advance()
	}
	op, ok := Op(""), false
	if opTok.kind == tokWord {
		op, ok = lookupOp(p.text(opTok))
	}
	if !ok {
		return nil, p.errAt(opTok.pos, "expected comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after %s, found %s",
			quote(attrText), p.describe(opTok))
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	vt := p.tok
	var v Value
	switch vt.kind {
	case tokString:
		v = Value{Kind: KindString, Str: vt.val}
	case tokNumber:
		v = Value{Kind: KindNumber, Num: p.text(vt)}
	case tokWord:
		switch w := p.text(vt); {
		case strings.EqualFold(w, "true"):
			v = Value{Kind: KindBool, Bool: true}
		case strings.EqualFold(w, "false"):
			v = Value{Kind: KindBool}
		case strings.EqualFold(w, "null"):
			v = Value{Kind: KindNull}
		default:
			return nil, p.errAt(vt.pos, `expected a value (a "string", number, true, false or null) after %q, found %s; strings must be in double quotes`,
				p.text(opTok), p.describe(vt))
		}
	case tokBad:
		vt.err.what = p.what
		return nil, vt.err
	default:
		return nil, p.errAt(vt.pos, `expected a value (a "string", number, true, false or null) after %q, found %s`,
			p.text(opTok), p.describe(vt))
	}
	if err := checkOperand(op, v); err != "" {
		return nil, p.errAt(vt.pos, "%s", err)
	}
	if err := p.addNode(attrOff); err != nil {
		return nil, err
	}
	return Compare{Attr: attr, Op: op, Value: v}, p.advance()
}

// checkOperand rejects literals an operator cannot meaningfully take (RFC 7644
// §3.4.2.2: co/sw/ew are substring tests; ordering booleans or null is an error).
func checkOperand(op Op, v Value) string {
	switch op {
	case OpCo, OpSw, OpEw:
		if v.Kind != KindString {
			return fmt.Sprintf("operator %q needs a string value, found %s", op, v)
		}
	case OpGt, OpGe, OpLt, OpLe:
		if v.Kind != KindString && v.Kind != KindNumber {
			return fmt.Sprintf("operator %q needs a string or number value, found %s", op, v)
		}
	}
	return ""
}

// attrPath validates the word token t as an attribute path and splits it. Inside
// value-path brackets (inner) only a plain sub-attribute name is allowed.
func (p *parser) attrPath(t token, inner bool) (AttrPath, *Error) {
	s := p.text(t)
	var ap AttrPath
	rest, restOff := s, t.pos
	if len(s) >= 4 && strings.EqualFold(s[:4], "urn:") {
		if inner {
			return ap, p.errAt(t.pos, `attribute paths inside "[...]" name sub-attributes and cannot have a schema URN; found %s`, quote(s))
		}
		i := strings.LastIndexByte(s, ':')
		ap.URN, rest, restOff = s[:i], s[i+1:], t.pos+i+1
		if err := p.checkURN(ap.URN, t.pos); err != nil {
			return ap, err
		}
		if rest == "" {
			return ap, p.errAt(restOff, "expected an attribute name after the schema URN %s", quote(ap.URN))
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		return ap, p.errAt(t.pos+i, `unexpected ":" in attribute path %s; only schema URNs (urn:...) contain ":"`, quote(s))
	}
	ap.Name = rest
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		if inner {
			return ap, p.errAt(restOff+i, `attribute paths inside "[...]" are single sub-attribute names; found %s`, quote(s))
		}
		ap.Name, ap.Sub = rest[:i], rest[i+1:]
		if j := strings.IndexByte(ap.Sub, '.'); j >= 0 {
			return ap, p.errAt(restOff+i+1+j, "attribute path %s has more than one sub-attribute level", quote(s))
		}
		if err := p.checkName(ap.Sub, restOff+i+1); err != nil {
			return ap, err
		}
	}
	if err := p.checkName(ap.Name, restOff); err != nil {
		return ap, err
	}
	return ap, nil
}

// checkName validates ATTRNAME = ["$"] ALPHA *(ALPHA / DIGIT / "-" / "_") at off.
func (p *parser) checkName(name string, off int) *Error {
	const rule = `attribute names start with a letter (or "$" for $ref) and contain only letters, digits, "-" and "_"`
	if name == "" {
		return p.errAt(off, "missing attribute name")
	}
	i := 0
	if name[0] == '$' {
		i = 1
	}
	if i >= len(name) || !isAlpha(name[i]) {
		return p.errAt(off, "invalid attribute name %s: %s", quote(name), rule)
	}
	for i++; i < len(name); i++ {
		if c := name[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return p.errAt(off+i, "invalid attribute name %s: %s", quote(name), rule)
		}
	}
	return nil
}

// checkURN validates the schema URN part of an attribute path: "urn" and at least
// two more non-empty segments of letters, digits, ".", "-" and "_".
func (p *parser) checkURN(urn string, off int) *Error {
	segs := 0
	start := 0
	for i := 0; i <= len(urn); i++ {
		if i < len(urn) && urn[i] != ':' {
			if c := urn[i]; !isAlpha(c) && !isDigit(c) && c != '.' && c != '-' && c != '_' {
				return p.errAt(off+i, "invalid character %q in schema URN %s", c, quote(urn))
			}
			continue
		}
		if i == start {
			return p.errAt(off+i, "empty segment in schema URN %s", quote(urn))
		}
		segs++
		start = i + 1
	}
	if segs < 3 {
		return p.errAt(off, `schema URN %s is incomplete; expected urn:<namespace>:<name>, as in urn:ietf:params:scim:schemas:core:2.0:User`, quote(urn))
	}
	return nil
}
