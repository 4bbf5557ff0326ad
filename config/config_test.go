package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// The README's configuration table is written by hand; this keeps it complete.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		row := "| `" + s.env + "` | `--" + s.flag + "` | "
		if !strings.Contains(readme, row) {
			t.Errorf("README's configuration table has no row starting %q", row)
		}
	}
}

// GraphQL introspection and GraphiQL default to auto: on with SQLite (the embedded
// development setup), off with PostgreSQL; true and false override it either way.
func TestGraphQLDevelopmentDefaults(t *testing.T) {
	for _, c := range []struct {
		db, setting string
		want        bool
	}{
		{"sqlite:./gatehouse.db", "", true},
		{"postgres://gatehouse@db/gatehouse", "", false},
		{"postgres://gatehouse@db/gatehouse", "true", true},
		{"sqlite:./gatehouse.db", "false", false},
		{"sqlite:./gatehouse.db", "auto", true},
	} {
		env := map[string]string{"GATEHOUSE_DATABASE_URL": c.db,
			"GATEHOUSE_GRAPHQL_INTROSPECTION": c.setting, "GATEHOUSE_GRAPHIQL": c.setting}
		cfg, err := Register(flag.NewFlagSet("t", flag.ContinueOnError)).Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if cfg.GraphQLIntrospection != c.want || cfg.GraphiQL != c.want {
			t.Errorf("%s with %q: introspection %v, GraphiQL %v; want %v", c.db, c.setting, cfg.GraphQLIntrospection, cfg.GraphiQL, c.want)
		}
	}
}
