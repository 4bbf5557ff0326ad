package filter

import (
	"errors"
	"strings"
	"testing"
)

// Helpers that keep the expected ASTs in the tables readable.

func name(n string) AttrPath      { return AttrPath{Name: n} }
func sub(n, s string) AttrPath    { return AttrPath{Name: n, Sub: s} }
func str(s string) Value          { return Value{Kind: KindString, Str: s} }
func num(s string) Value          { return Value{Kind: KindNumber, Num: s} }
func boolean(b bool) Value        { return Value{Kind: KindBool, Bool: b} }
func null() Value                 { return Value{Kind: KindNull} }
func pr(a AttrPath) Expr          { return Present{Attr: a} }
func and(l, r Expr) Expr          { return And{Left: l, Right: r} }
func or(l, r Expr) Expr           { return Or{Left: l, Right: r} }
func not(x Expr) Expr             { return Not{X: x} }
func vp(a AttrPath, f Expr) Expr  { return ValuePath{Attr: a, Filter: f} }
func eq(a AttrPath, v Value) Expr { return Compare{Attr: a, Op: OpEq, Value: v} }
func cmp(a AttrPath, op Op, v Value) Expr {
	return Compare{Attr: a, Op: op, Value: v}
}

const (
	coreUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	enterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Expr
	}{
		// RFC 7644 §3.4.2.2, every example filter.
		{"rfc case-insensitive op", `userName Eq "john"`, eq(name("userName"), str("john"))},
		{"rfc case-insensitive attr", `Username eq "john"`, eq(name("Username"), str("john"))},
		{"rfc eq", `userName eq "bjensen"`, eq(name("userName"), str("bjensen"))},
		{"rfc co with quote", `name.familyName co "O'Malley"`, cmp(sub("name", "familyName"), OpCo, str("O'Malley"))},
		{"rfc sw", `userName sw "J"`, cmp(name("userName"), OpSw, str("J"))},
		{"rfc urn sw", `urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`,
			cmp(AttrPath{URN: coreUser, Name: "userName"}, OpSw, str("J"))},
		{"rfc urn sub co", `urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley"`,
			cmp(AttrPath{URN: coreUser, Name: "name", Sub: "familyName"}, OpCo, str("O'Malley"))},
		{"rfc pr", `title pr`, pr(name("title"))},
		{"rfc gt", `meta.lastModified gt "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), OpGt, str("2011-05-13T04:42:34Z"))},
		{"rfc ge", `meta.lastModified ge "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), OpGe, str("2011-05-13T04:42:34Z"))},
		{"rfc lt", `meta.lastModified lt "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), OpLt, str("2011-05-13T04:42:34Z"))},
		{"rfc le", `meta.lastModified le "2011-05-13T04:42:34Z"`, cmp(sub("meta", "lastModified"), OpLe, str("2011-05-13T04:42:34Z"))},
		{"rfc pr and", `title pr and userType eq "Employee"`,
			and(pr(name("title")), eq(name("userType"), str("Employee")))},
		{"rfc pr or", `title pr or userType eq "Intern"`,
			or(pr(name("title")), eq(name("userType"), str("Intern")))},
		{"rfc schemas", `schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`,
			eq(name("schemas"), str(enterpriseUser))},
		{"rfc and group", `userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
			and(eq(name("userType"), str("Employee")),
				or(cmp(name("emails"), OpCo, str("example.com")), cmp(sub("emails", "value"), OpCo, str("example.org"))))},
		{"rfc and not", `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
			and(cmp(name("userType"), OpNe, str("Employee")),
				not(or(cmp(name("emails"), OpCo, str("example.com")), cmp(sub("emails", "value"), OpCo, str("example.org")))))},
		{"rfc and paren single", `userType eq "Employee" and (emails.type eq "work")`,
			and(eq(name("userType"), str("Employee")), eq(sub("emails", "type"), str("work")))},
		{"rfc and value path", `userType eq "Employee" and emails[type eq "work" and value co "@example.com"]`,
			and(eq(name("userType"), str("Employee")),
				vp(name("emails"), and(eq(name("type"), str("work")), cmp(name("value"), OpCo, str("@example.com")))))},
		{"rfc value path or value path", `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
			or(vp(name("emails"), and(eq(name("type"), str("work")), cmp(name("value"), OpCo, str("@example.com")))),
				vp(name("ims"), and(eq(name("type"), str("xmpp")), cmp(name("value"), OpCo, str("@foo.com")))))},

		// Microsoft Entra ID.
		{"entra userName", `userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"`,
			eq(name("userName"), str("Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"))},
		{"entra externalId", `externalId eq "6e9b2e0c-3a8f-4b0a-9a43-6f1f7c1d2e3f"`,
			eq(name("externalId"), str("6e9b2e0c-3a8f-4b0a-9a43-6f1f7c1d2e3f"))},
		{"entra displayName", `displayName eq "Group1DisplayName"`, eq(name("displayName"), str("Group1DisplayName"))},
		{"entra value path sub eq", `emails[type eq "work"].value eq "x@y.com"`,
			vp(name("emails"), and(eq(name("type"), str("work")), eq(name("value"), str("x@y.com"))))},
		{"entra value path sub pr", `emails[type eq "work"].value pr`,
			vp(name("emails"), and(eq(name("type"), str("work")), pr(name("value"))))},
		{"entra value path sub with or inside", `emails[type eq "work" or primary eq true].value co "@y.com"`,
			vp(name("emails"), and(or(eq(name("type"), str("work")), eq(name("primary"), boolean(true))),
				cmp(name("value"), OpCo, str("@y.com"))))},
		{"entra value path sub then and", `emails[type eq "work"].value eq "x@y.com" and active eq true`,
			and(vp(name("emails"), and(eq(name("type"), str("work")), eq(name("value"), str("x@y.com")))),
				eq(name("active"), boolean(true)))},
		{"entra capitalised True", `active eq True`, eq(name("active"), boolean(true))},
		{"entra enterprise manager", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"`,
			eq(AttrPath{URN: enterpriseUser, Name: "manager", Sub: "value"}, str("26118915-6090-4610-87e4-49d8ca9f808d"))},
		{"entra enterprise department", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales"`,
			eq(AttrPath{URN: enterpriseUser, Name: "department"}, str("Sales"))},
		{"entra members value path", `members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
			vp(name("members"), eq(name("value"), str("2819c223-7f76-453a-919d-413861904646")))},

		// Okta.
		{"okta userName", `userName eq "a@b.com"`, eq(name("userName"), str("a@b.com"))},
		{"okta id", `id eq "00u1ab2c3d4E5f6G7h8"`, eq(name("id"), str("00u1ab2c3d4E5f6G7h8"))},

		// Case-insensitivity of keywords, operators and literals; case preserved in names.
		{"ops upper", `a EQ 1 AND b NE 2 OR c GT 3`,
			or(and(cmp(name("a"), OpEq, num("1")), cmp(name("b"), OpNe, num("2"))), cmp(name("c"), OpGt, num("3")))},
		{"not upper", `NOT (a PR)`, not(pr(name("a")))},
		{"literals mixed case", `a eq FALSE or b eq Null or c eq tRuE`,
			or(or(eq(name("a"), boolean(false)), eq(name("b"), null())), eq(name("c"), boolean(true)))},
		{"urn prefix upper", `URN:ietf:params:scim:schemas:core:2.0:User:userName eq "x"`,
			eq(AttrPath{URN: "URN:ietf:params:scim:schemas:core:2.0:User", Name: "userName"}, str("x"))},
		{"all ops", `a eq 1 and a ne 1 and a co "x" and a sw "x" and a ew "x" and a gt 1 and a ge 1 and a lt 1 and a le 1`,
			and(and(and(and(and(and(and(and(cmp(name("a"), OpEq, num("1")), cmp(name("a"), OpNe, num("1"))),
				cmp(name("a"), OpCo, str("x"))), cmp(name("a"), OpSw, str("x"))), cmp(name("a"), OpEw, str("x"))),
				cmp(name("a"), OpGt, num("1"))), cmp(name("a"), OpGe, num("1"))), cmp(name("a"), OpLt, num("1"))),
				cmp(name("a"), OpLe, num("1")))},

		// Precedence and associativity.
		{"and binds tighter than or", `a pr or b pr and c pr`, or(pr(name("a")), and(pr(name("b")), pr(name("c"))))},
		{"and binds tighter than or 2", `a pr and b pr or c pr`, or(and(pr(name("a")), pr(name("b"))), pr(name("c")))},
		{"and left assoc", `a pr and b pr and c pr`, and(and(pr(name("a")), pr(name("b"))), pr(name("c")))},
		{"or left assoc", `a pr or b pr or c pr`, or(or(pr(name("a")), pr(name("b"))), pr(name("c")))},
		{"parens override", `(a pr or b pr) and c pr`, and(or(pr(name("a")), pr(name("b"))), pr(name("c")))},
		{"right grouping kept", `a pr and (b pr and c pr)`, and(pr(name("a")), and(pr(name("b")), pr(name("c"))))},
		{"redundant parens", `((((a pr))))`, pr(name("a"))},
		{"not binds tightest", `not (a pr) and b pr`, and(not(pr(name("a"))), pr(name("b")))},
		{"double not", `not (not (a pr))`, not(not(pr(name("a"))))},
		{"not inside brackets", `emails[not (type eq "work")]`, vp(name("emails"), not(eq(name("type"), str("work"))))},
		{"parens inside brackets", `emails[(type eq "work" or type eq "home") and primary eq true]`,
			vp(name("emails"), and(or(eq(name("type"), str("work")), eq(name("type"), str("home"))), eq(name("primary"), boolean(true))))},
		{"urn value path", `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[value eq "x"]`,
			vp(AttrPath{URN: enterpriseUser, Name: "manager"}, eq(name("value"), str("x")))},

		// Whitespace leniency.
		{"many spaces", "  userName   eq \t \"x\"  ", eq(name("userName"), str("x"))},
		{"no space before string", `userName eq"x"`, eq(name("userName"), str("x"))},
		{"no space around parens", `(a pr)and(b pr)`, and(pr(name("a")), pr(name("b")))},
		{"not without space", `not(a pr)`, not(pr(name("a")))},
		{"string then keyword", `a eq "x"and b pr`, and(eq(name("a"), str("x")), pr(name("b")))},
		{"spaces inside brackets", `emails[ type eq "work" ]`, vp(name("emails"), eq(name("type"), str("work")))},

		// Values.
		{"empty string", `a eq ""`, eq(name("a"), str(""))},
		{"escapes", `a eq "q\" b\\ s\/ \b\f\n\r\t"`, eq(name("a"), str("q\" b\\ s/ \b\f\n\r\t"))},
		{"unicode escape", `a eq "caf\u00e9 \u00E9"`, eq(name("a"), str("café é"))},
		{"surrogate pair", `a eq "\ud83d\ude00"`, eq(name("a"), str("😀"))},
		{"raw utf8", `a eq "Zoë 日本"`, eq(name("a"), str("Zoë 日本"))},
		{"escape then raw utf8", `a eq "\"Zoë\""`, eq(name("a"), str(`"Zoë"`))},
		{"escaped nul", `a eq "\u0000"`, eq(name("a"), str("\x00"))},
		{"zero", `a eq 0`, eq(name("a"), num("0"))},
		{"negative zero", `a eq -0`, eq(name("a"), num("-0"))},
		{"integer", `a eq 42`, eq(name("a"), num("42"))},
		{"float exp", `a gt -1.5e3`, cmp(name("a"), OpGt, num("-1.5e3"))},
		{"exp sign", `a lt 2E+10`, cmp(name("a"), OpLt, num("2E+10"))},
		{"fraction", `a le 0.25`, cmp(name("a"), OpLe, num("0.25"))},
		{"null eq", `manager eq null`, eq(name("manager"), null())},
		{"ne false", `active ne false`, cmp(name("active"), OpNe, boolean(false))},
		{"number before paren", `(a eq 1)`, eq(name("a"), num("1"))},

		// Attribute names.
		{"dollar ref sub", `members.$ref eq "https://x/Users/1"`, eq(sub("members", "$ref"), str("https://x/Users/1"))},
		{"name with digits dash underscore", `x-Attr_2.sub-3_y pr`, pr(sub("x-Attr_2", "sub-3_y"))},
		{"keyword-like attr names", `pr pr and eq eq 1 and true eq true`,
			and(and(pr(name("pr")), eq(name("eq"), num("1"))), eq(name("true"), boolean(true)))},
		{"value path with dollar ref", `members[$ref eq "x"]`, vp(name("members"), eq(name("$ref"), str("x")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q)\n got: %#v\nwant: %#v", tt.in, got, tt.want)
			}
			// Every accepted filter must round-trip through Format.
			canon := Format(got)
			again, err := Parse(canon)
			if err != nil {
				t.Fatalf("Parse(Format) = Parse(%q): %v", canon, err)
			}
			if again != got {
				t.Fatalf("Parse(Format(%q)) = %#v, want %#v", canon, again, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		offset int    // expected Error.Offset
		msg    string // expected substring of Error()
	}{
		{"empty", ``, 0, "filter is empty"},
		{"blank", "   \t ", 5, "filter is empty"},
		{"unknown operator", `userName equals "john"`, 9,
			`invalid filter at offset 9: expected comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName", found "equals"`},
		{"missing space after op", `userName eq1`, 9, `found "eq1"`},
		{"missing operator", `userName`, 8, `after "userName", found end of input`},
		{"missing value", `userName eq`, 11, `expected a value (a "string", number, true, false or null) after "eq", found end of input`},
		{"unquoted value", `userName eq john`, 12, `found "john"; strings must be in double quotes`},
		{"single quotes", `userName eq 'john'`, 12, "double quotes, not single quotes"},
		{"value is paren", `userName eq (`, 12, `expected a value`},
		{"unterminated string", `userName eq "john`, 12, "unterminated string starting at offset 12"},
		{"unterminated after escape", `a eq "x\`, 5, "unterminated string"},
		{"unterminated after escaped quote", `a eq "x\"`, 5, "unterminated string"},
		{"bad escape", `a eq "\x41"`, 6, `invalid escape \x in string`},
		{"bad escape quote", `a eq "\'"`, 6, `invalid escape \'`},
		{"short unicode escape", `a eq "\u12"`, 6, `invalid escape \u12"`},
		{"bad hex", `a eq "\u12G4"`, 6, "four hex digits"},
		{"lone high surrogate", `a eq "\ud83d"`, 6, "high surrogate must be followed"},
		{"high surrogate then non-surrogate", `a eq "\ud83d\u0041"`, 6, "high surrogate must be followed"},
		{"lone low surrogate", `a eq "\ude00"`, 6, "low surrogate without"},
		{"raw newline in string", "a eq \"x\ny\"", 7, `control character '\n' in string`},
		{"raw tab in string", "a eq \"x\ty\"", 7, `control character '\t' in string`},
		{"invalid utf8 in string", "a eq \"x\xffy\"", 7, "invalid UTF-8 in string"},
		{"invalid utf8 outside string", "a\xff eq 1", 1, "invalid UTF-8 byte 0xff"},
		{"unexpected char", `a eq 1 & b pr`, 7, `unexpected character '&'`},
		{"non-ascii attr", `naïve pr`, 2, `unexpected character 'ï'`},
		{"newline between tokens", "a pr\nand b pr", 4, "line break"},
		{"leading zero", `a eq 01`, 5, "leading zeros"},
		{"bare minus", `a eq -`, 5, `expected a digit after "-"`},
		{"minus word", `-a eq 1`, 0, `expected an attribute path, "(" or "not", found "-a"`},
		{"number as attribute", `1abc pr`, 0, `expected an attribute path, "(" or "not", found "1abc"`},
		{"bad number as operator", `a 1x "y"`, 2, `expected comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "a", found "1x"`},
		{"invalid number value", `a eq -x`, 5, `invalid number "-x": expected a digit after "-"`},
		{"trailing dot", `a eq 1.`, 5, `expected a digit after "."`},
		{"empty exponent", `a eq 1e+`, 5, "exponent"},
		{"number then letter", `a eq 1and b pr`, 6, `expected a space after the number "1", found "a"`},
		{"number then dot", `a eq 1.2.3`, 8, `expected a space after the number "1.2"`},
		{"hex number", `a eq 0x10`, 6, `expected a space after the number "0"`},
		{"unbalanced open", `(a pr`, 5, `expected ")" to close the "(" at offset 0, found end of input`},
		{"unbalanced open nested", `((a pr) and b pr`, 16, `expected ")" to close the "(" at offset 0`},
		{"unbalanced close", `a pr)`, 4, `unbalanced parentheses: ")" has no matching "("`},
		{"empty parens", `()`, 1, `expected an attribute path, "(" or "not" after "(", found ")"`},
		{"not without parens", `not a pr`, 4, `"not" must be followed by a filter in parentheses`},
		{"not at end", `a pr and not`, 12, `"not" must be followed by a filter in parentheses`},
		{"dangling and", `a pr and`, 8, `expected an attribute path, "(" or "not" after "and", found end of input`},
		{"double or", `a pr or or b pr`, 8, `after "or", found "or"`},
		{"leading and", `and a pr`, 0, `expected an attribute path, "(" or "not", found "and"`},
		{"trailing garbage", `a pr b`, 5, `expected "and", "or" or the end of the filter after "pr", found "b"`},
		{"trailing string", `a eq "x" "y"`, 9, `after string "x", found string "y"`},
		{"value after pr", `title pr "x"`, 9, `found string "x"`},
		{"two values", `a eq 1 2`, 7, `found "2"`},
		{"pr value", `a pr 1`, 5, `found "1"`},
		{"op without attr", `eq "x"`, 3, `expected comparison operator`},
		{"starts with string", `"x" eq a`, 0, `found string "x"`},
		{"starts with bracket", `[a pr]`, 0, `found "["`},
		{"co needs string", `a co 1`, 5, `operator "co" needs a string value, found 1`},
		{"sw needs string", `a sw true`, 5, `operator "sw" needs a string value, found true`},
		{"ew needs string", `a ew null`, 5, `operator "ew" needs a string value, found null`},
		{"gt bool", `a gt true`, 5, `operator "gt" needs a string or number value, found true`},
		{"le null", `a le null`, 5, `needs a string or number value`},
		{"colon without urn", `foo:bar pr`, 3, `unexpected ":" in attribute path "foo:bar"`},
		{"short urn", `urn:a:b pr`, 0, `schema URN "urn:a" is incomplete`},
		{"urn without attribute", `urn:ietf:params:scim:schemas:core:2.0:User: pr`, 43, "expected an attribute name after the schema URN"},
		{"urn empty segment", `urn:ietf::x:y pr`, 9, "empty segment in schema URN"},
		{"urn dollar", `urn:ie$tf:x:y pr`, 6, "invalid character '$' in schema URN"},
		{"sub sub attribute", `name.givenName.x pr`, 14, `attribute path "name.givenName.x" has more than one sub-attribute level`},
		{"empty sub", `name. pr`, 5, "missing attribute name"},
		{"empty name", `$ pr`, 0, `invalid attribute name "$"`},
		{"dollar in middle", `a$b pr`, 1, `invalid attribute name "a$b"`},
		{"sub starts with digit", `name.1x pr`, 5, `invalid attribute name "1x"`},
		{"nested brackets", `emails[type[value eq 1]]`, 11, "nested value paths are not allowed"},
		{"nested bracket start", `emails[[type eq 1]]`, 7, "nested value paths are not allowed"},
		{"nested brackets in group", `emails[(x[y pr])]`, 9, "nested value paths are not allowed"},
		{"space before bracket", `emails [type eq "work"]`, 6, `unexpected whitespace before "["; write emails[...]`},
		{"bracket after sub attr", `emails.value[type eq "work"]`, 12, "not the sub-attribute"},
		{"unclosed bracket", `emails[type eq "work"`, 21, `expected "]" to close the "[" at offset 6, found end of input`},
		{"paren closes bracket", `emails[type eq "work")`, 21, `expected "]" to close the "["`},
		{"bracket closes paren", `(emails eq "x"]`, 14, `expected ")" to close the "("`},
		{"empty brackets", `emails[]`, 7, `found "]"`},
		{"urn inside brackets", `emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "work"]`, 7, "cannot have a schema URN"},
		{"dotted inside brackets", `emails[type.x eq "work"]`, 11, "single sub-attribute names"},
		{"value path then op", `emails[type eq "work"] eq "x"`, 23, `expected "and", "or" or the end of the filter after "]", found "eq"`},
		{"value path sub without op", `emails[type eq "work"].value`, 28, `expected comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "emails[...].value"`},
		{"value path sub sub", `emails[type eq "work"].value.x eq "y"`, 28, `expected a single sub-attribute name after "]."`},
		{"value path space before dot", `emails[type eq "work"] .value eq "y"`, 22, `unexpected whitespace before "."`},
		{"value path space after dot", `emails[type eq "work"]. value eq "y"`, 23, `expected a sub-attribute name right after "]."`},
		{"value path dot nothing", `emails[type eq "work"].`, 23, `expected a sub-attribute name right after "].", found end of input`},
		{"value path sub urn", `emails[type eq "work"].urn:x:y:z pr`, 26, `expected a single sub-attribute name`},
		{"value path sub invalid", `emails[type eq "work"].$ pr`, 23, `invalid attribute name "$"`},
		{"reserved and as attr", `a pr and and eq 1`, 9, `found "and"`},
		{"dot alone", `. pr`, 0, `found "."`},
		{"long token is truncated", `a eq 1 ` + strings.Repeat("x", 1000), 7, `found "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error", tt.in, got)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T is not *Error", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse(%q) error\n  %s\nwant it to contain\n  %s", tt.in, err, tt.msg)
			}
			if pe.Offset != tt.offset {
				t.Errorf("Parse(%q) offset = %d, want %d (%s)", tt.in, pe.Offset, tt.offset, err)
			}
			if errors.Is(err, ErrTooLong) || errors.Is(err, ErrTooDeep) || errors.Is(err, ErrTooComplex) {
				t.Errorf("syntax error %q matches a limit sentinel", err)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error message is %d bytes; hostile input must not inflate it", len(err.Error()))
			}
		})
	}
}

func TestLimits(t *testing.T) {
	chain := func(n int, sep string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(sep)
			}
			b.WriteString(`a eq 1`)
		}
		return b.String()
	}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		target error
		msg    string
	}{
		{"too long", `userName eq "` + strings.Repeat("x", 4986) + `"`, DefaultLimits, ErrTooLong,
			"filter is 5000 bytes; the limit is 4096"},
		{"too long custom", `a pr and b pr`, Limits{MaxLength: 5}, ErrTooLong, "filter is 13 bytes; the limit is 5"},
		{"too deep parens", strings.Repeat("(", 17) + "a pr" + strings.Repeat(")", 17), DefaultLimits, ErrTooDeep,
			"filter nests deeper than 16 levels"},
		{"too deep not", strings.Repeat("not (", 17) + "a pr" + strings.Repeat(")", 17), DefaultLimits, ErrTooDeep,
			"filter nests deeper than 16 levels"},
		{"too deep with brackets", strings.Repeat("(", 16) + "emails[type pr]" + strings.Repeat(")", 16), DefaultLimits, ErrTooDeep,
			"filter nests deeper than 16 levels"},
		{"too deep custom", `(a pr) and ((b pr))`, Limits{MaxDepth: 1}, ErrTooDeep, "filter nests deeper than 1 levels"},
		{"too many nodes", chain(129, " and "), DefaultLimits, ErrTooComplex,
			"filter is too complex: it has more than 256 comparisons and logical operators"},
		{"too many nodes custom", `a pr or b pr`, Limits{MaxNodes: 2}, ErrTooComplex, "more than 2"},
		{"entra fold counts nodes", `emails[type eq "work"].value eq "x"`, Limits{MaxNodes: 3}, ErrTooComplex, "more than 3"},
		{"hostile deep parens fail fast", strings.Repeat("(", 1_000_000), Limits{MaxLength: 2_000_000}, ErrTooDeep,
			"filter nests deeper than 16 levels"},
		{"depth is capped whatever the limit", strings.Repeat("(", MaxDepthCap+1) + "a pr" + strings.Repeat(")", MaxDepthCap+1),
			Limits{MaxLength: 1 << 20, MaxDepth: 1 << 40}, ErrTooDeep, "filter nests deeper than 10000 levels"},
		{"hostile long chain fails fast", chain(100_000, " or "), Limits{MaxLength: 1 << 24}, ErrTooComplex, "more than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWithLimits(tt.in, tt.lim)
			if !errors.Is(err, tt.target) {
				t.Fatalf("error = %v, want errors.Is(%v)", err, tt.target)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *Error", err)
			}
			if err.Error() != tt.msg && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
		})
	}

	t.Run("exactly at the limits", func(t *testing.T) {
		in := strings.Repeat("(", 16) + "a pr" + strings.Repeat(")", 16)
		if _, err := Parse(in); err != nil {
			t.Errorf("16 levels: %v", err)
		}
		// 128 comparisons + 127 ands = 255 nodes; one more "and" and comparison
		// would make 257.
		if _, err := Parse(chain(128, " and ")); err != nil {
			t.Errorf("255 nodes: %v", err)
		}
		in = `userName eq "` + strings.Repeat("x", 4096-14) + `"`
		if len(in) != 4096 {
			t.Fatalf("test bug: len = %d", len(in))
		}
		if _, err := Parse(in); err != nil {
			t.Errorf("4096 bytes: %v", err)
		}
	})

	t.Run("zero limits mean defaults", func(t *testing.T) {
		_, err := ParseWithLimits(strings.Repeat("(", 17)+"a pr"+strings.Repeat(")", 17), Limits{})
		if !errors.Is(err, ErrTooDeep) {
			t.Errorf("Limits{} did not apply the default depth: %v", err)
		}
		_, err = ParseWithLimits(chain(1000, " and "), Limits{MaxLength: -1, MaxDepth: -1, MaxNodes: -1})
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("negative limits did not apply the default length: %v", err)
		}
	})

	// A flat chain must not recurse once per term: 100k terms with limits raised
	// far enough to accept it must parse (and print) without exhausting the stack.
	t.Run("100k-term chain", func(t *testing.T) {
		const n = 100_000
		for _, sep := range []string{" and ", " or "} {
			in := chain(n, sep)
			e, err := ParseWithLimits(in, Limits{MaxLength: len(in), MaxNodes: 2 * n})
			if err != nil {
				t.Fatalf("%q chain: %v", sep, err)
			}
			if out := Format(e); out != in {
				t.Fatalf("%q chain: Format differs from input (len %d vs %d)", sep, len(out), len(in))
			}
		}
	})
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`userName Eq "john"`, `userName eq "john"`},
		{`  a   EQ   TRUE  `, `a eq true`},
		{`a eq NULL`, `a eq null`},
		{`a gt -1.5E3`, `a gt -1.5E3`},
		{`a eq "\u00e9\/\u0001\"\\\n"`, `a eq "é/\u0001\"\\\n"`},
		{`((a pr))`, `a pr`},
		{`a pr or b pr and c pr`, `a pr or b pr and c pr`},
		{`(a pr or b pr) and c pr`, `(a pr or b pr) and c pr`},
		{`a pr and (b pr or c pr)`, `a pr and (b pr or c pr)`},
		{`a pr and (b pr and c pr)`, `a pr and (b pr and c pr)`},
		{`a pr or (b pr or c pr)`, `a pr or (b pr or c pr)`},
		{`(a pr and b pr) or c pr`, `a pr and b pr or c pr`},
		{`NOT(a pr)`, `not (a pr)`},
		{`emails[type eq "work"].value eq "x@y.com"`, `emails[type eq "work" and value eq "x@y.com"]`},
		{`emails[type eq "a" or type eq "b"].value pr`, `emails[(type eq "a" or type eq "b") and value pr]`},
		{`URN:ietf:params:scim:schemas:core:2.0:User:name.familyName co "x"`, `URN:ietf:params:scim:schemas:core:2.0:User:name.familyName co "x"`},
	}
	for _, tt := range tests {
		e, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := Format(e); got != tt.want {
			t.Errorf("Format(Parse(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Format(nil); got != "" {
		t.Errorf("Format(nil) = %q", got)
	}
	if got := Format(&And{}); got != "<invalid node>" {
		t.Errorf("Format(&And{}) = %q", got)
	}
}

func TestAttrPathString(t *testing.T) {
	tests := []struct {
		p    AttrPath
		want string
	}{
		{name("userName"), "userName"},
		{sub("name", "familyName"), "name.familyName"},
		{AttrPath{URN: enterpriseUser, Name: "department"}, enterpriseUser + ":department"},
		{AttrPath{URN: enterpriseUser, Name: "manager", Sub: "value"}, enterpriseUser + ":manager.value"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{str(`O'Malley "x"`), `"O'Malley \"x\""`},
		{num("-1.5e3"), `-1.5e3`},
		{boolean(true), `true`},
		{boolean(false), `false`},
		{null(), `null`},
		{Value{}, `<invalid value>`},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.v, got, tt.want)
		}
	}
	if KindString.String() != "string" || ValueKind(0).String() != "invalid" {
		t.Errorf("ValueKind.String is wrong")
	}
}

// The error type must work with a hand-built value too, e.g. in callers' tests.
func TestErrorZeroValue(t *testing.T) {
	err := &Error{Msg: "boom", Offset: 3}
	if got, want := err.Error(), "invalid filter at offset 3: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if err.Unwrap() != nil {
		t.Errorf("Unwrap() = %v, want nil", err.Unwrap())
	}
}

func BenchmarkParse(b *testing.B) {
	inputs := map[string]string{
		"simple":    `userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"`,
		"rfc":       `userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
		"valuepath": `emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
	}
	for name, in := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
