package filter

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokEOF    tokKind = iota
	tokWord           // attribute path, operator, keyword or true/false/null
	tokString         // JSON string; token.val holds the decoded text
	tokNumber         // JSON number; the text is the literal
	tokLParen         // (
	tokRParen         // )
	tokLBrack         // [
	tokRBrack         // ]
	tokDot            // . at the start of a token, as in `emails[...].value`
	tokBad            // malformed number; token.err says why
)

// token is a lexeme; src[pos:end] is its text.
type token struct {
	kind     tokKind
	pos, end int
	val      string // decoded value for tokString
	err      *Error // for tokBad
}

// lexer produces tokens on demand, so an error early in a huge input is reported
// without scanning the rest of it.
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }
func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isWordChar reports whether c can continue a word. Words are deliberately
// generous (they include '.', ':' and '$' so that a whole attribute path, URN
// included, is one token); the parser validates their structure afterwards, which
// gives better messages than a lexer error in the middle of a path.
func isWordChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == ':' || c == '$'
}

func (l *lexer) errAt(off int, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Offset: off}
}

func (l *lexer) next() (token, *Error) {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tokEOF, pos: start, end: start}, nil
	}
	c := l.src[start]
	single := func(k tokKind) (token, *Error) {
		l.pos++
		return token{kind: k, pos: start, end: l.pos}, nil
	}
	switch {
	case c == '(':
		return single(tokLParen)
	case c == ')':
		return single(tokRParen)
	case c == '[':
		return single(tokLBrack)
	case c == ']':
		return single(tokRBrack)
	case c == '.':
		return single(tokDot)
	case c == '"':
		return l.lexString()
	case c == '-' || isDigit(c):
		return l.lexNumber()
	case isAlpha(c) || c == '$':
		for l.pos++; l.pos < len(l.src) && isWordChar(l.src[l.pos]); l.pos++ {
		}
		return token{kind: tokWord, pos: start, end: l.pos}, nil
	case c == '\'':
		return token{}, l.errAt(start, "strings must be enclosed in double quotes, not single quotes")
	case c == '\r' || c == '\n':
		return token{}, l.errAt(start, "unexpected line break; only spaces and tabs may separate tokens")
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	if r == utf8.RuneError {
		return token{}, l.errAt(start, "invalid UTF-8 byte 0x%02x", c)
	}
	return token{}, l.errAt(start, "unexpected character %q", r)
}

// lexNumber scans a JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
//
// A malformed number is not an immediate error: it becomes a tokBad covering the
// whole run of word characters, because what went wrong depends on where it is.
// Where a value is expected the parser reports the number problem ("put a space
// after the number"); where an attribute name is expected, as in `1abc pr`, it
// reports that a name was expected instead.
func (l *lexer) lexNumber() (token, *Error) {
	s, start := l.src, l.pos
	i := start
	digits := func() int {
		j := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i - j
	}
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
		if i < len(s) && isDigit(s[i]) {
			return l.badNumber(start, "numbers must not have leading zeros")
		}
	case digits() == 0:
		return l.badNumber(start, `expected a digit after "-"`)
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return l.badNumber(start, `expected a digit after "."`)
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return l.badNumber(start, "expected a digit in the exponent")
		}
	}
	if i < len(s) && isWordChar(s[i]) {
		return l.badToken(start, i, fmt.Sprintf("expected a space after the number %q, found %q", s[start:i], s[i:i+1]))
	}
	l.pos = i
	return token{kind: tokNumber, pos: start, end: i}, nil
}

// badNumber returns a tokBad for a number that is malformed in itself.
func (l *lexer) badNumber(start int, why string) (token, *Error) {
	return l.badToken(start, start, fmt.Sprintf("invalid number %q: %s", truncate(l.src[start:l.runEnd(start)]), why))
}

// badToken returns a tokBad spanning the word characters from start, carrying msg
// as an error at errOff.
func (l *lexer) badToken(start, errOff int, msg string) (token, *Error) {
	l.pos = l.runEnd(start)
	return token{kind: tokBad, pos: start, end: l.pos, err: &Error{Msg: msg, Offset: errOff}}, nil
}

// runEnd returns the end of the run of word characters after the byte at start.
func (l *lexer) runEnd(start int) int {
	end := start + 1
	for end < len(l.src) && isWordChar(l.src[end]) {
		end++
	}
	return end
}

// lexString scans and decodes a JSON string literal. The common case — no escapes —
// returns a substring of the input without allocating.
func (l *lexer) lexString() (token, *Error) {
	s, start := l.src, l.pos
	i := start + 1
	// Fast path: find the closing quote, giving up at the first escape.
	for i < len(s) {
		c := s[i]
		if c == '"' {
			l.pos = i + 1
			return token{kind: tokString, pos: start, end: l.pos, val: s[start+1 : i]}, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return token{}, l.errControl(i, c)
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return token{}, l.errAt(i, "invalid UTF-8 in string")
		}
		i += size
	}
	if i >= len(s) {
		return token{}, l.errUnterminated(start)
	}

	// Slow path: there is at least one escape at i.
	var b strings.Builder
	b.Grow(i - start + 16)
	b.WriteString(s[start+1 : i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			l.pos = i + 1
			return token{kind: tokString, pos: start, end: l.pos, val: b.String()}, nil
		case c == '\\':
			if i+1 >= len(s) {
				return token{}, l.errUnterminated(start)
			}
			n, err := l.unescape(&b, i)
			if err != nil {
				return token{}, err
			}
			i += n
		case c < 0x20:
			return token{}, l.errControl(i, c)
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return token{}, l.errAt(i, "invalid UTF-8 in string")
			}
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return token{}, l.errUnterminated(start)
}

func (l *lexer) errControl(off int, c byte) *Error {
	return l.errAt(off, "control character %q in string; escape it, e.g. as \\n or \\u%04x", rune(c), c)
}

func (l *lexer) errUnterminated(start int) *Error {
	return l.errAt(start, "unterminated string starting at offset %d; add the closing \"", start)
}

// unescape decodes the escape sequence at s[i] == '\\' into b and returns its
// length in bytes.
func (l *lexer) unescape(b *strings.Builder, i int) (int, *Error) {
	s := l.src // the caller guarantees i+1 < len(s)
	switch s[i+1] {
	case '"':
		b.WriteByte('"')
	case '\\':
		b.WriteByte('\\')
	case '/':
		b.WriteByte('/')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			return 0, l.errAt(i, "invalid escape %s: \\u must be followed by four hex digits", escapeText(s, i, 6))
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, l.errAt(i, "invalid escape %s: low surrogate without a preceding high surrogate", s[i:i+6])
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), false
			if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				lo, ok = hex4(s, i+8)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, l.errAt(i, "invalid escape %s: high surrogate must be followed by a \\uDC00-\\uDFFF low surrogate", s[i:i+6])
			}
			b.WriteRune(0x10000 + (r-0xD800)<<10 + (lo - 0xDC00))
			return 12, nil
		}
		b.WriteRune(r)
		return 6, nil
	default:
		return 0, l.errAt(i, "invalid escape %s in string; valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX", escapeText(s, i, 2))
	}
	return 2, nil
}

// escapeText returns up to n bytes of s from i for an error message: verbatim if
// they are printable ASCII (so `\x` reads as written), Go-quoted otherwise.
func escapeText(s string, i, n int) string {
	t := s[i:min(i+n, len(s))]
	for j := 0; j < len(t); j++ {
		if t[j] <= ' ' || t[j] >= 0x7f {
			return strconv.Quote(t)
		}
	}
	return t
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			d = (c | 0x20) - 'a' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
