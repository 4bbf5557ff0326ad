package graph_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The schema is the API's reference (a front end is built from it and the README), so
// every type, field, argument, enum value and input field says what it is.
func TestSchemaDescribesEverything(t *testing.T) {
	missing := undescribed(t, "../schema.graphqls")
	for _, m := range missing {
		t.Errorf("schema.graphqls: %s has no description", m)
	}
}

// undescribed lists the schema elements of file that have no description.
func undescribed(t *testing.T, file string) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: file, Input: string(src)})
	if gerr != nil {
		t.Fatal(gerr)
	}
	var missing []string
	for name, def := range schema.Types {
		if def.BuiltIn {
			continue
		}
		if def.Description == "" {
			missing = append(missing, "type "+name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") { // __typename, __schema, __type are GraphQL's
				continue
			}
			if f.Description == "" {
				missing = append(missing, name+"."+f.Name)
			}
			for _, a := range f.Arguments {
				if a.Description == "" {
					missing = append(missing, name+"."+f.Name+"("+a.Name+")")
				}
			}
		}
		for _, v := range def.EnumValues {
			if v.Description == "" {
				missing = append(missing, name+"."+v.Name)
			}
		}
	}
	return missing
}

// The check itself finds what is missing, wherever it is missing.
func TestUndescribedFindsGaps(t *testing.T) {
	file := t.TempDir() + "/gaps.graphqls"
	if err := os.WriteFile(file, []byte(`
type Query { "ok" a(x: Int): E }
"ok" enum E { "ok" ONE TWO }
input I { "ok" a: Int b: Int }
"ok" union U = Query
`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range undescribed(t, file) {
		got[m] = true
	}
	for _, want := range []string{"type Query", "Query.a(x)", "E.TWO", "type I", "I.b"} {
		if !got[want] {
			t.Errorf("%q not reported; got %v", want, got)
		}
	}
	if got["E.ONE"] || got["type U"] || got["type E"] || got["I.a"] {
		t.Errorf("described elements reported: %v", got)
	}
}
