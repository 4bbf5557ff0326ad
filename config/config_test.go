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

// A refused secret must not be printed back: the error goes to a terminal or a log.
func TestInvalidSecretsAreNotEchoed(t *testing.T) {
	for _, c := range []struct{ env, value, secret string }{
		{"GATEHOUSE_SECRET_KEY", "dG9vLXNob3J0LWJ1dC1zdGlsbC1hLXNlY3JldA==", "dG9vLXNob3J0"},
		{"GATEHOUSE_DATABASE_URL", "postgres://gatehouse:pa%zzs3cret@db/gatehouse", "s3cret"},
		{"GATEHOUSE_DATABASE_URL", "postgres://gatehouse:pa#s3cret@db/gatehouse", "s3cret"},
		{"GATEHOUSE_DATABASE_URL", "postgres://gatehouse:pa/s3cret@db/gatehouse", "s3cret"},
		{"GATEHOUSE_REDIS_URL", "redis://:pa%zzs3cret@cache:6379", "s3cret"},
	} {
		env := map[string]string{c.env: c.value}
		_, err := Register(flag.NewFlagSet("t", flag.ContinueOnError)).Load(func(k string) string { return env[k] })
		if err == nil {
			t.Errorf("%s=%q accepted", c.env, c.value)
			continue
		}
		if strings.Contains(err.Error(), c.secret) {
			t.Errorf("%s: the error shows the secret: %v", c.env, err)
		}
		if !strings.Contains(err.Error(), c.env) {
			t.Errorf("%s: the error does not name the variable: %v", c.env, err)
		}
	}
}

// `gatehouse config` masks a password even in a URL that parses oddly (an unescaped
// '#' starts a fragment, so net/url sees no user information).
func TestPrintMasksOddPasswords(t *testing.T) {
	env := map[string]string{"GATEHOUSE_DATABASE_URL": "postgres://gatehouse:pa#s3cret@db/gatehouse"}
	cfg, err := Register(flag.NewFlagSet("t", flag.ContinueOnError)).Load(func(k string) string { return env[k] })
	if err != nil {
		return // refused is fine too, as long as the refusal does not show it (above)
	}
	var b strings.Builder
	if err := cfg.Print(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "s3cret") {
		t.Errorf("gatehouse config shows the password:\n%s", b.String())
	}
}

// The flag wins over the variable even when it is given empty: `--redis-url=` runs on
// the in-process cache, `--secret-key=` unsealed, whatever the environment says.
func TestEmptyFlagWinsOverEnvironment(t *testing.T) {
	env := map[string]string{"GATEHOUSE_REDIS_URL": "redis://cache:6379/0", "GATEHOUSE_PUBLIC_URL": "https://id.example.com"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := Register(fs)
	if err := fs.Parse([]string{"--redis-url=", "--public-url="}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisURL != "" {
		t.Errorf("--redis-url= with GATEHOUSE_REDIS_URL set: RedisURL = %q, want the in-process cache", cfg.RedisURL)
	}
	if !cfg.PublicURLDerived {
		t.Errorf("--public-url= with GATEHOUSE_PUBLIC_URL set: public URL %s, want one derived from the listen address", cfg.PublicURL)
	}
}

// A listen address is checked whole: a port out of range is refused at configuration,
// naming the variable, not when serve tries to listen.
func TestListenPortIsChecked(t *testing.T) {
	for _, v := range []string{"127.0.0.1:99999", ":http-alt", "127.0.0.1:-1"} {
		_, err := Register(flag.NewFlagSet("t", flag.ContinueOnError)).Load(func(k string) string {
			return map[string]string{"GATEHOUSE_LISTEN": v}[k]
		})
		if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_LISTEN") || !strings.Contains(err.Error(), "0 to 65535") {
			t.Errorf("GATEHOUSE_LISTEN=%s: %v", v, err)
		}
	}
	for _, v := range []string{":0", "127.0.0.1:8080", "[::1]:443"} {
		if _, err := Register(flag.NewFlagSet("t", flag.ContinueOnError)).Load(func(k string) string {
			return map[string]string{"GATEHOUSE_LISTEN": v}[k]
		}); err != nil {
			t.Errorf("GATEHOUSE_LISTEN=%s: %v", v, err)
		}
	}
}
