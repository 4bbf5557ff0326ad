// Package archtest checks the dependency rules of DESIGN.md and STYLE.md by reading the
// import graph of the source tree, so a violation fails CI instead of waiting for review.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-dev/gatehouse"

// transports translate protocols to module calls; domain modules must not know them.
var transports = map[string]bool{"scim": true, "sso": true, "graph": true}

type edge struct{ from, file, to string }

func imports(t *testing.T, root string) []edge {
	t.Helper()
	var out []edge
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module+"/") {
				out = append(out, edge{from: filepath.ToSlash(rel), file: path, to: strings.TrimPrefix(p, module+"/")})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// moduleOf returns the module name of a path under modules/ ("" if not under it) and
// the rest of the path inside the module.
func moduleOf(p string) (string, string) {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || parts[0] != "modules" {
		return "", ""
	}
	return parts[1], strings.Join(parts[2:], "/")
}

// violation returns why an import breaks the rules, or "".
func violation(e edge) string {
	fromMod, _ := moduleOf(e.from)
	toMod, toRest := moduleOf(e.to)
	switch {
	case fromMod != "" && (strings.HasPrefix(e.to, "cmd/") || strings.HasPrefix(e.to, "graph") || e.to == "config"):
		return "a module imports " + e.to + "; modules never depend on the composition root, GraphQL or config (pass values in)"
	case fromMod == "platform" && toMod != "" && toMod != "platform":
		return "platform imports module " + toMod + "; platform is the bottom layer"
	case toMod != "" && strings.Contains("/"+toRest+"/", "/internal/") && fromMod != toMod:
		return "imports another module's internals: " + e.to
	case fromMod != "" && toMod != "" && fromMod != toMod && toMod != "platform" && toRest != "":
		return "module " + fromMod + " imports " + e.to + "; other modules are used only through their root package"
	case fromMod != "" && !transports[fromMod] && transports[toMod]:
		return "domain module " + fromMod + " imports transport " + toMod + "; dependencies point from transports to modules"
	}
	return ""
}

func TestRulesCatchViolations(t *testing.T) {
	bad := []edge{
		{from: "modules/identity", to: "modules/access/internal/store"},
		{from: "modules/identity", to: "modules/access/store"},
		{from: "modules/platform/db", to: "modules/tenancy"},
		{from: "modules/tenancy", to: "modules/scim"},
		{from: "modules/identity", to: "graph"},
		{from: "modules/identity", to: "config"},
	}
	for _, e := range bad {
		if violation(e) == "" {
			t.Errorf("%s -> %s should be refused", e.from, e.to)
		}
	}
	good := []edge{
		{from: "modules/scim", to: "modules/identity"},
		{from: "modules/scim", to: "modules/scim/internal/filter"},
		{from: "modules/identity", to: "modules/platform/db"},
		{from: "cmd/gatehouse", to: "modules/tenancy"},
		{from: "graph", to: "modules/access"},
	}
	for _, e := range good {
		if v := violation(e); v != "" {
			t.Errorf("%s -> %s refused: %s", e.from, e.to, v)
		}
	}
}

func TestImportGraph(t *testing.T) {
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal("cannot find the repository root")
	}
	edges := imports(t, root)
	if len(edges) < 10 {
		t.Fatalf("found only %d internal imports; the walk is broken", len(edges))
	}
	for _, e := range edges {
		if v := violation(e); v != "" {
			t.Errorf("%s: %s", e.file, v)
		}
	}
}
