package filter

import (
	"errors"
	"testing"
)

var fuzzSeeds = []string{
	`userName Eq "john"`,
	`title pr and userType eq "Employee"`,
	`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`,
	`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`,
	`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`,
	`meta.lastModified gt "2011-05-13T04:42:34Z"`,
	`urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley"`,
	`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`,
	`emails[type eq "work"].value eq "x@y.com"`,
	`emails[type eq "work" or type eq "home"].value pr`,
	`a eq -1.5e3 or b lt 0 and c ge 2E+7`,
	`a eq TRUE and b ne null or not (c eq False)`,
	`a eq "\ud83d\ude00 \u00e9 \" \\ \/ \b\f\n\r\t"`,
	`(a pr and (b pr or (c pr and d pr)))`,
	`a pr and (b pr and c pr)`,
	`members[$ref eq "x"]`,
	`emails[not (type eq "work")]`,
	`userName eq"x"`,
	"a\tpr",
	`a eq 1and b pr`,
	`emails[type[x pr]]`,
	`((a pr)`,
	`a eq "\ud83d"`,
	``,
}

// roomyLimits are for re-parsing Format output, which may be somewhat longer and
// one level deeper than the input it came from (Entra's folded value paths gain
// parentheses), but never has more nodes.
func roomyLimits(n int) Limits {
	return Limits{MaxLength: 4*n + 64, MaxDepth: 2*DefaultLimits.MaxDepth + 2, MaxNodes: DefaultLimits.MaxNodes}
}

func checkError(t *testing.T, in string, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("%q: error %T (%v) is not *Error", in, err, err)
	}
	if pe.Offset < 0 || pe.Offset > len(in) {
		t.Fatalf("%q: offset %d out of range (%v)", in, pe.Offset, err)
	}
	if pe.Msg == "" {
		t.Fatalf("%q: empty message", in)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, err := Parse(in)
		if err != nil {
			if e != nil {
				t.Fatalf("%q: both an AST and an error", in)
			}
			checkError(t, in, err)
			return
		}
		if e == nil {
			t.Fatalf("%q: nil AST without error", in)
		}
		out := Format(e)
		e2, err := ParseWithLimits(out, roomyLimits(len(in)))
		if err != nil {
			t.Fatalf("%q: Format gave %q, which does not parse: %v", in, out, err)
		}
		if e2 != e {
			t.Fatalf("%q: Format gave %q, which parses to a different AST:\n%#v\n%#v", in, out, e2, e)
		}
		if out2 := Format(e2); out2 != out {
			t.Fatalf("%q: Format is not stable: %q then %q", in, out, out2)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		`members`, `name.givenName`, `emails[type eq "work"].value`, `members[value eq "2819c223"]`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`,
		`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName`, `a.b.c`, ` a`, `emails[type eq "work"]x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePath(in)
		if err != nil {
			checkError(t, in, err)
			return
		}
		if p.Sub != "" && p.Filter == nil || p.Filter != nil && p.Attr.Sub != "" {
			t.Fatalf("%q: inconsistent Path %#v", in, p)
		}
		out := p.String()
		p2, perr := parsePath(out, roomyLimits(len(in))) // *Error: keep it out of err
		if perr != nil {
			t.Fatalf("%q: String gave %q, which does not parse: %v", in, out, perr)
		}
		if p2 != p {
			t.Fatalf("%q: String gave %q, which parses to %#v, want %#v", in, out, p2, p)
		}
	})
}
