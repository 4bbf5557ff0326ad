package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Path
	}{
		{`members`, Path{Attr: name("members")}},
		{`userName`, Path{Attr: name("userName")}},
		{`name.givenName`, Path{Attr: sub("name", "givenName")}},
		{`members[value eq "2819c223"]`, Path{Attr: name("members"), Filter: eq(name("value"), str("2819c223"))}},
		{`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
			Path{Attr: name("members"), Filter: eq(name("value"), str("2819c223-7f76-453a-919d-413861904646"))}},
		{`emails[type eq "work"].value`, Path{Attr: name("emails"), Filter: eq(name("type"), str("work")), Sub: "value"}},
		{`emails[type eq "work" and primary eq True].display`,
			Path{Attr: name("emails"), Filter: and(eq(name("type"), str("work")), eq(name("primary"), boolean(true))), Sub: "display"}},
		{`addresses[type eq "work"].streetAddress`,
			Path{Attr: name("addresses"), Filter: eq(name("type"), str("work")), Sub: "streetAddress"}},
		{`members[value eq "x"].$ref`, Path{Attr: name("members"), Filter: eq(name("value"), str("x")), Sub: "$ref"}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
			Path{Attr: AttrPath{URN: enterpriseUser, Name: "manager"}}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`,
			Path{Attr: AttrPath{URN: enterpriseUser, Name: "employeeNumber"}}},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
			Path{Attr: AttrPath{URN: enterpriseUser, Name: "manager", Sub: "value"}}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName`,
			Path{Attr: AttrPath{URN: coreUser, Name: "name", Sub: "givenName"}}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq "work"].value`,
			Path{Attr: AttrPath{URN: coreUser, Name: "emails"}, Filter: eq(name("type"), str("work")), Sub: "value"}},
		// The last-':' rule applied to a bare schema URN (some clients send one);
		// the caller decides what a Name that is really a schema name means.
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
			Path{Attr: AttrPath{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0", Name: "User"}}},
		{`emails[ type eq "work" ]`, Path{Attr: name("emails"), Filter: eq(name("type"), str("work"))}},
		{`Members[Value EQ "x"]`, Path{Attr: name("Members"), Filter: eq(name("Value"), str("x"))}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePath(tt.in)
			if err != nil {
				t.Fatalf("ParsePath(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParsePath(%q)\n got: %#v\nwant: %#v", tt.in, got, tt.want)
			}
			again, err := ParsePath(got.String())
			if err != nil || again != got {
				t.Fatalf("ParsePath(%q.String() = %q) = %#v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		offset int
		msg    string
	}{
		{"empty", ``, 0, "invalid path at offset 0: path is empty"},
		{"leading space", ` members`, 0, "path must not start with whitespace"},
		{"only spaces", `   `, 0, "path must not start with whitespace"},
		{"trailing space", `members `, 7, "path must not end with whitespace"},
		{"trailing space after bracket", `members[value eq "x"] `, 21, "path must not end with whitespace"},
		{"space before bracket", `members [value eq "x"]`, 7, `unexpected whitespace before "["`},
		{"space inside path", `name givenName`, 4, "unexpected whitespace in path"},
		{"sub sub", `a.b.c`, 3, `attribute path "a.b.c" has more than one sub-attribute level`},
		{"filter then sub sub", `emails[type eq "work"].value.display`, 28, `expected a single sub-attribute name after "]."`},
		{"filter on sub attr", `emails.value[type eq "work"]`, 12, "not the sub-attribute"},
		{"trailing junk word", `emails[type eq "work"]x`, 22, `unexpected "x" after "]"`},
		{"trailing bracket", `emails[type eq "work"]]`, 22, `unexpected "]" after "]"`},
		{"trailing junk after sub", `emails[type eq "work"].value[x pr]`, 28, `unexpected "[" after "value"`},
		{"trailing paren", `members)`, 7, `unexpected ")" after "members"`},
		{"space before dot", `emails[type eq "work"] .value`, 22, `unexpected whitespace before "."`},
		{"dot without name", `emails[type eq "work"].`, 23, "expected a sub-attribute name"},
		{"unclosed bracket", `members[value eq "x"`, 20, `expected "]" to close the "[" at offset 7`},
		{"empty filter", `members[]`, 8, `found "]"`},
		{"nested brackets", `members[value[x eq 1]]`, 13, "nested value paths are not allowed"},
		{"bad filter", `members[value equals "x"]`, 14, "expected comparison operator"},
		{"starts with string", `"members"`, 0, `expected an attribute name, found string "members"`},
		{"starts with bracket", `[value eq "x"]`, 0, `expected an attribute name, found "["`},
		{"bad name", `1abc`, 0, `expected an attribute name, found "1abc"`},
		{"colon without urn", `foo:bar`, 3, `unexpected ":"`},
		{"urn without attr", `urn:ietf:params:scim:schemas:core:2.0:User:`, 43, "expected an attribute name after the schema URN"},
		{"urn inside filter", `emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "work"]`, 7, "cannot have a schema URN"},
		{"invalid char", `members/value`, 7, `unexpected character '/'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePath(tt.in)
			if err == nil {
				t.Fatalf("ParsePath(%q) = %#v, want error", tt.in, got)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePath(%q) error %T is not *Error", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParsePath(%q) error\n  %s\nwant it to contain\n  %s", tt.in, err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "invalid path at offset ") {
				t.Errorf("ParsePath(%q) error %q does not say it is about a path", tt.in, err)
			}
			if pe.Offset != tt.offset {
				t.Errorf("ParsePath(%q) offset = %d, want %d (%s)", tt.in, pe.Offset, tt.offset, err)
			}
		})
	}
}

func TestParsePathLimits(t *testing.T) {
	_, err := ParsePath("a" + strings.Repeat("b", 5000))
	if !errors.Is(err, ErrTooLong) || err.Error() != "path is 5001 bytes; the limit is 4096" {
		t.Errorf("long path: %v", err)
	}
	deep := "members[" + strings.Repeat("(", 16) + "value pr" + strings.Repeat(")", 16) + "]"
	_, err = ParsePath(deep)
	if !errors.Is(err, ErrTooDeep) || err.Error() != "path nests deeper than 16 levels" {
		t.Errorf("deep path: %v", err)
	}
	var b strings.Builder
	b.WriteString("members[")
	for i := range 200 {
		if i > 0 {
			b.WriteString(" or ")
		}
		b.WriteString("value pr")
	}
	b.WriteString("]")
	_, err = ParsePath(b.String())
	if !errors.Is(err, ErrTooComplex) {
		t.Errorf("complex path: %v", err)
	}
}
