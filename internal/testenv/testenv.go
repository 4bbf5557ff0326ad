// Package testenv gives tests real services: a fresh migrated database per test on
// SQLite and on PostgreSQL, and Redis under a private key prefix.
//
// PostgreSQL comes from GATEHOUSE_TEST_POSTGRES_URL, else 127.0.0.1:5432 (user postgres);
// Redis from GATEHOUSE_TEST_REDIS_URL, else 127.0.0.1:6379. `make test` sets both,
// starting throwaway servers when none is running (scripts/test-services.sh). A missing
// service skips its tests with a loud line — or fails them when CI=true or
// GATEHOUSE_TEST_REQUIRE_SERVICES=1, so CI can never pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// RequireServices reports whether a missing service must fail the run instead of
// skipping.
func RequireServices() bool {
	return os.Getenv("CI") == "true" || os.Getenv("GATEHOUSE_TEST_REQUIRE_SERVICES") == "1"
}

func missing(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("!!! %s is not available (%v): set %s or run `make test`, which starts one", what, err, map[string]string{
		"PostgreSQL": "GATEHOUSE_TEST_POSTGRES_URL", "Redis": "GATEHOUSE_TEST_REDIS_URL"}[what])
	if RequireServices() {
		t.Fatal(msg + " — required because CI=true or GATEHOUSE_TEST_REQUIRE_SERVICES=1")
	}
	t.Skip("SKIPPING: " + msg)
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresURL returns the admin URL of the test PostgreSQL server.
func PostgresURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultPostgresURL
}

// RedisURL returns the URL of the test Redis server.
func RedisURL() string {
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

// pg holds this test binary's connection to the PostgreSQL server and its migrated
// template database, from which each test's database is cloned (much faster than
// migrating each one).
var pg struct {
	once     sync.Once
	err      error
	admin    *bun.DB
	template string
	mu       sync.Mutex
	created  []string
}

func withDB(raw, name string) string {
	u, _ := url.Parse(raw)
	u.Path = "/" + name
	return u.String()
}

func setupPostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := db.Open(ctx, PostgresURL())
	if err != nil {
		return err
	}
	pg.admin = admin
	pg.template = randomName("gatehouse_tmpl_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pg.template); err != nil {
		return err
	}
	pg.created = append(pg.created, pg.template)
	tdb, err := db.Open(ctx, withDB(PostgresURL(), pg.template))
	if err != nil {
		return err
	}
	defer tdb.Close()
	if _, err := migrations.Up(ctx, tdb); err != nil {
		return fmt.Errorf("migrating the template database: %w", err)
	}
	return nil
}

// Postgres returns a fresh, migrated PostgreSQL database for this test, dropped after it.
func Postgres(t testing.TB) *bun.DB {
	t.Helper()
	pg.once.Do(func() { pg.err = setupPostgres() })
	if pg.err != nil {
		missing(t, "PostgreSQL", pg.err)
	}
	ctx := context.Background()
	name := randomName("gatehouse_test_")
	pg.mu.Lock()
	// CREATE DATABASE … TEMPLATE needs the template free of other sessions; serialise.
	_, err := pg.admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+pg.template)
	pg.mu.Unlock()
	if err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	bdb, err := db.Open(ctx, withDB(PostgresURL(), name))
	if err != nil {
		t.Fatalf("opening test database: %v", err)
	}
	t.Cleanup(func() {
		_ = bdb.Close()
		_, _ = pg.admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return bdb
}

// PostgresDatabaseURL returns the URL of a fresh, migrated PostgreSQL database for this
// test (for tests that start a server process), dropped after it.
func PostgresDatabaseURL(t testing.TB) string {
	t.Helper()
	bdb := Postgres(t)
	var name string
	if err := bdb.QueryRowContext(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return withDB(PostgresURL(), name)
}

// SQLiteURL returns the URL of a new SQLite file in the test's temp dir.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
}

// SQLite returns a fresh, migrated SQLite database in the test's temp dir.
func SQLite(t testing.TB) *bun.DB {
	t.Helper()
	ctx := context.Background()
	bdb, err := db.Open(ctx, SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })
	if _, err := migrations.Up(ctx, bdb); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return bdb
}

// EachDB runs fn as a subtest on a fresh SQLite database and on a fresh PostgreSQL one:
// the same contract holds on both dialects.
func EachDB(t *testing.T, fn func(t *testing.T, bdb *bun.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// Redis returns a Redis-backed cache whose keys live under a prefix private to this
// test; the keys are deleted after it.
func Redis(t testing.TB) *cache.Redis {
	t.Helper()
	ctx := context.Background()
	prefix := randomName("gatehouse_test_") + ":"
	r, err := cache.NewRedis(ctx, RedisURL(), prefix)
	if err != nil {
		missing(t, "Redis", err)
	}
	t.Cleanup(func() {
		c := r.Client()
		iter := c.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
		for iter.Next(context.Background()) {
			c.Del(context.Background(), iter.Val())
		}
		_ = r.Close()
	})
	return r
}

// Main runs a package's tests and then drops the PostgreSQL databases it created. Call
// it from TestMain in every package that uses this one.
func Main(m *testing.M) {
	code := m.Run()
	if pg.admin != nil {
		for _, name := range pg.created {
			_, _ = pg.admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
		_ = pg.admin.Close()
	}
	os.Exit(code)
}
