// Package config is Gatehouse's typed configuration. Every setting has one GATEHOUSE_*
// environment variable and one command-line flag (the flag wins); defaults give the
// embedded single-node mode (SQLite file, in-process cache). Only cmd/gatehouse reads it;
// everything else receives the pieces it needs.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Config is the effective configuration of one process.
type Config struct {
	Listen    string
	PublicURL *url.URL
	// PublicURLDerived is true when GATEHOUSE_PUBLIC_URL was not set and PublicURL was
	// made from the listen address; serve then uses the address actually bound.
	PublicURLDerived bool
	DatabaseURL      string
	RedisURL         string
	RedisPrefix      string
	LogLevel         slog.Level
	LogFormat        string
	ShutdownTimeout  time.Duration
	AutoMigrate      bool
	// SCIMMaxBodyBytes bounds every SCIM request body.
	SCIMMaxBodyBytes int64
	// SCIMRateLimit is the SCIM requests per second of a tenant without its own limit.
	SCIMRateLimit int
	// GraphQLIntrospection enables GraphQL schema introspection and field suggestions.
	GraphQLIntrospection bool
	// GraphiQL serves the GraphiQL IDE at GET /graphql.
	GraphiQL bool
	// graphQLIntrospection and graphiQL are the settings as given (true, false, auto);
	// auto resolves once the database is known.
	graphQLIntrospection, graphiQL string
	// SecretKey seals signing keys at rest (AES-256-GCM); nil keeps them unsealed.
	SecretKey []byte
	// SAMLClockSkew is how far an assertion's validity window may be off this clock.
	SAMLClockSkew time.Duration
	// SAMLMaxBodyBytes bounds the body of a POST to the SAML ACS and SLO endpoints.
	SAMLMaxBodyBytes int64
	// SAMLMetadataAllowPrivate lets metadata URLs point at private, loopback and
	// link-local addresses (development and tests only).
	SAMLMetadataAllowPrivate bool
	// ServerTiming adds a Server-Timing header with each request's SQL statement count
	// and time (benchmarks and diagnosis: it shows clients the server's internals).
	ServerTiming bool
}

func parseAuto(dst *string, v string) error {
	switch v = strings.ToLower(v); v {
	case "auto", "true", "false":
		*dst = v
		return nil
	}
	if b, err := strconv.ParseBool(v); err == nil {
		*dst = strconv.FormatBool(b)
		return nil
	}
	return errors.New("must be true, false or auto")
}

// resolveAuto turns an auto setting on for the embedded default (SQLite), where a
// developer explores the API, and off for a PostgreSQL deployment.
func (c *Config) resolveAuto(v string) bool {
	if v == "auto" {
		return strings.HasPrefix(c.DatabaseURL, "sqlite:")
	}
	return v == "true"
}

func parseBool(dst *bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*dst = b
		return nil
	}
}

// setting ties an environment variable and a flag to a field, with its default and help,
// so parsing, validation, `gatehouse config` and the docs all come from one table.
type setting struct {
	env, flag, def, help string
	secret               bool
	set                  func(c *Config, v string) error
	get                  func(c *Config) string
}

var settings = []setting{
	{env: "GATEHOUSE_LISTEN", flag: "listen", def: "127.0.0.1:8080",
		help: "address the HTTP server listens on (host:port)",
		set: func(c *Config, v string) error {
			_, port, err := net.SplitHostPort(v)
			if err != nil {
				return errors.New(`must be host:port, e.g. "127.0.0.1:8080" or ":8080"`)
			}
			if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("the port %q must be a number from 0 to 65535 (0: any free port)", port)
			}
			c.Listen = v
			return nil
		},
		get: func(c *Config) string { return c.Listen }},
	{env: "GATEHOUSE_PUBLIC_URL", flag: "public-url", def: "",
		help: "external base URL used in every absolute URL the server emits (default http://<listen>)",
		set: func(c *Config, v string) error {
			if v == "" {
				return nil // derived from Listen in finish
			}
			u, err := parsePublicURL(v)
			if err != nil {
				return err
			}
			c.PublicURL = u
			return nil
		},
		get: func(c *Config) string { return c.PublicURL.String() }},
	{env: "GATEHOUSE_DATABASE_URL", flag: "database-url", def: "sqlite:./gatehouse.db", secret: true,
		help: `"sqlite:PATH" (embedded default) or "postgres://user:pass@host:5432/db?sslmode=disable"`,
		set: func(c *Config, v string) error {
			if _, err := db.ParseURL(v); err != nil {
				return err
			}
			c.DatabaseURL = v
			return nil
		},
		get: func(c *Config) string { return db.Redact(c.DatabaseURL) }},
	{env: "GATEHOUSE_REDIS_URL", flag: "redis-url", def: "", secret: true,
		help: "redis:// or rediss:// URL (Sentinel: master_name=, Cluster: addr=…); empty = in-process cache, single node only",
		set: func(c *Config, v string) error {
			if v != "" {
				if _, err := cache.ParseRedisURL(v); err != nil {
					return err
				}
			}
			c.RedisURL = v
			return nil
		},
		get: func(c *Config) string {
			if c.RedisURL == "" {
				return "(in-process cache)"
			}
			return db.Redact(c.RedisURL)
		}},
	{env: "GATEHOUSE_REDIS_PREFIX", flag: "redis-prefix", def: "gatehouse:",
		help: "prefix of every Redis key, so deployments can share a Redis",
		set: func(c *Config, v string) error {
			if strings.ContainsAny(v, " \t\r\n{}") {
				return errors.New("must not contain spaces or braces")
			}
			c.RedisPrefix = v
			return nil
		},
		get: func(c *Config) string { return c.RedisPrefix }},
	{env: "GATEHOUSE_LOG_LEVEL", flag: "log-level", def: "info",
		help: "debug, info, warn or error",
		set: func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		},
		get: func(c *Config) string { return strings.ToLower(c.LogLevel.String()) }},
	{env: "GATEHOUSE_LOG_FORMAT", flag: "log-format", def: "text",
		help: "text (for people) or json (for log collectors)",
		set: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.LogFormat = v
			return nil
		},
		get: func(c *Config) string { return c.LogFormat }},
	{env: "GATEHOUSE_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "15s",
		help: "how long in-flight requests may take to finish on SIGINT/SIGTERM",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New(`must be a positive duration, e.g. "15s"`)
			}
			c.ShutdownTimeout = d
			return nil
		},
		get: func(c *Config) string { return c.ShutdownTimeout.String() }},
	{env: "GATEHOUSE_AUTO_MIGRATE", flag: "auto-migrate", def: "true",
		help: "apply pending migrations when serve starts (replicas take a lock; false = run `gatehouse migrate up` yourself)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.AutoMigrate = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(c.AutoMigrate) }},
	{env: "GATEHOUSE_SCIM_MAX_BODY_BYTES", flag: "scim-max-body-bytes", def: "1048576",
		help: "largest SCIM request body accepted; larger ones get 413",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1024 || n > 64<<20 {
				return errors.New("must be a whole number of bytes between 1024 and 67108864")
			}
			c.SCIMMaxBodyBytes = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.SCIMMaxBodyBytes, 10) }},
	{env: "GATEHOUSE_SCIM_RATE_LIMIT", flag: "scim-default-rate-limit", def: "100",
		help: "SCIM requests per second per tenant (bursts of twice it) for tenants without their own limit; past it, 429",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				return errors.New("must be a whole number of requests per second between 1 and 10000")
			}
			c.SCIMRateLimit = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(c.SCIMRateLimit) }},
	{env: "GATEHOUSE_GRAPHQL_INTROSPECTION", flag: "graphql-introspection", def: "auto",
		help: "allow GraphQL schema introspection and field suggestions: true, false, or auto (on with SQLite, the embedded development default; off with PostgreSQL)",
		set:  func(c *Config, v string) error { return parseAuto(&c.graphQLIntrospection, v) },
		get:  func(c *Config) string { return c.graphQLIntrospection }},
	{env: "GATEHOUSE_GRAPHIQL", flag: "graphiql", def: "auto",
		help: "serve the GraphiQL IDE at GET /graphql: true, false, or auto (on with SQLite, off with PostgreSQL)",
		set:  func(c *Config, v string) error { return parseAuto(&c.graphiQL, v) },
		get:  func(c *Config) string { return c.graphiQL }},
	{env: "GATEHOUSE_SECRET_KEY", flag: "secret-key", def: "", secret: true,
		help: "32 random bytes, base64 (`openssl rand -base64 32`): seals the JWT and SAML signing keys stored in the database; empty = stored unsealed (a warning is logged)",
		set: func(c *Config, v string) error {
			if v == "" {
				c.SecretKey = nil
				return nil
			}
			k, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(k) != 32 {
				return errors.New("must be 32 bytes in standard base64 (44 characters); make one with `openssl rand -base64 32`")
			}
			c.SecretKey = k
			return nil
		},
		get: func(c *Config) string {
			if c.SecretKey == nil {
				return ""
			}
			return "****"
		}},
	{env: "GATEHOUSE_SAML_CLOCK_SKEW", flag: "saml-clock-skew", def: "3m",
		help: "how far a SAML assertion's NotBefore/NotOnOrAfter may be off this server's clock",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > 10*time.Minute {
				return errors.New("must be a duration between 0s and 10m, e.g. 3m")
			}
			c.SAMLClockSkew = d
			return nil
		},
		get: func(c *Config) string { return c.SAMLClockSkew.String() }},
	{env: "GATEHOUSE_SAML_MAX_BODY_BYTES", flag: "saml-max-body-bytes", def: "1048576",
		help: "largest body accepted at the SAML ACS and logout endpoints; larger ones are refused",
		set: func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 4096 || n > 16<<20 {
				return errors.New("must be a whole number of bytes between 4096 and 16777216")
			}
			c.SAMLMaxBodyBytes = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(c.SAMLMaxBodyBytes, 10) }},
	{env: "GATEHOUSE_SAML_METADATA_ALLOW_PRIVATE", flag: "saml-metadata-allow-private", def: "false",
		help: "let SAML metadata URLs use http and private, loopback or link-local addresses (development only)",
		set:  func(c *Config, v string) error { return parseBool(&c.SAMLMetadataAllowPrivate)(c, v) },
		get:  func(c *Config) string { return strconv.FormatBool(c.SAMLMetadataAllowPrivate) }},
	{env: "GATEHOUSE_SERVER_TIMING", flag: "server-timing", def: "false",
		help: "add a Server-Timing header with the SQL statements each request ran and their time (benchmarks and diagnosis: it tells clients about the server's internals)",
		set:  func(c *Config, v string) error { return parseBool(&c.ServerTiming)(c, v) },
		get:  func(c *Config) string { return strconv.FormatBool(c.ServerTiming) }},
}

// redactSecret is how a refused secret value is quoted in the error: a URL with its
// password masked, any other secret (the sealing key) not at all.
func redactSecret(s setting, v string) string {
	if s.env == "GATEHOUSE_DATABASE_URL" || s.env == "GATEHOUSE_REDIS_URL" {
		return db.Redact(v)
	}
	return fmt.Sprintf("(%d characters, not shown)", len(v))
}

func parsePublicURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New(`must be an absolute http(s) URL, e.g. "https://id.example.com"`)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("must not carry a query, fragment or credentials")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// Flags holds the command-line flags of every setting, registered on a caller's FlagSet
// so each subcommand accepts the same server settings beside its own flags.
type Flags struct {
	fs   *flag.FlagSet
	vals map[string]*string
}

// Register adds one flag per setting to fs.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, vals: map[string]*string{}}
	for _, s := range settings {
		f.vals[s.flag] = fs.String(s.flag, "", fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, s.def))
	}
	return f
}

// Load builds the configuration from getenv and the parsed flags, validating every
// value. An invalid value is an error that names the variable or flag and says what is
// allowed; all invalid values are reported at once.
func (f *Flags) Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	// A flag given on the command line wins even when empty (`--redis-url=` for the
	// in-process cache); an empty variable counts as unset.
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, s := range settings {
		v, source := s.def, "default"
		if e := getenv(s.env); e != "" {
			v, source = e, s.env
		}
		if given[s.flag] {
			v, source = *f.vals[s.flag], "--"+s.flag
		}
		if err := s.set(&c, v); err != nil {
			shown := v
			if s.secret {
				shown = redactSecret(s, v)
			}
			if source == "default" {
				errs = append(errs, fmt.Errorf("default of %s %q: %w", s.env, shown, err))
			} else {
				errs = append(errs, fmt.Errorf("%s=%q: %w", source, shown, err))
			}
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	c.GraphQLIntrospection = c.resolveAuto(c.graphQLIntrospection)
	c.GraphiQL = c.resolveAuto(c.graphiQL)
	if c.PublicURL == nil {
		// Listening on every interface (":8080", "0.0.0.0:8080", "[::]:8080"), the
		// address clients can use on this machine is localhost.
		host, port, _ := net.SplitHostPort(c.Listen)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "localhost"
		}
		c.PublicURL = &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}
		c.PublicURLDerived = true
	}
	return c, nil
}

// URL returns the absolute public URL of path (which starts with "/").
func (c Config) URL(path string) string { return c.PublicURL.String() + path }

// Print writes the effective configuration with secrets masked.
func (c Config) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%s\n", s.env, s.get(&c))
	}
	return tw.Flush()
}
