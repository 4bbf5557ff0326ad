// Package db opens the database for either supported dialect and holds the few places
// where PostgreSQL and SQLite differ, so the rest of the code is dialect-neutral Bun.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names a supported SQL dialect.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DialectOf reports which dialect db speaks.
func DialectOf(db bun.IDB) Dialect {
	if db.Dialect().Name() == dialect.PG {
		return Postgres
	}
	return SQLite
}

// Target is a parsed database URL.
type Target struct {
	Dialect Dialect
	// DSN is what the driver receives. For SQLite it is a file: URI with the pragmas this
	// server depends on; for PostgreSQL the URL as given.
	DSN string
	// Path is the SQLite file path ("" for PostgreSQL).
	Path string
}

// ParseURL accepts "sqlite:PATH" (PATH may be ":memory:") or a postgres:// or
// postgresql:// URL, and says what it expected when it gets anything else.
func ParseURL(raw string) (Target, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if path == "" {
			return Target{}, errors.New(`sqlite URL has no file path: use e.g. "sqlite:./gatehouse.db"`)
		}
		// busy_timeout lets concurrent writers queue instead of failing; _txlock=immediate takes the write lock at BEGIN so two
		// transactions never deadlock upgrading read locks; foreign_keys is off by default
		// in SQLite and our schema relies on cascades; case_sensitive_like makes LIKE behave
		// as in PostgreSQL, so case-insensitive matching is always explicit (lower()).
		// WAL (readers beside the writer) is set once by Open: it is a property of the file,
		// and switching to it can fail with SQLITE_BUSY without waiting, so it needs a retry
		// that a per-connection pragma cannot have.
		q := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=case_sensitive_like(1)&_txlock=immediate"
		return Target{Dialect: SQLite, DSN: "file:" + path + "?" + q, Path: path}, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return Target{}, fmt.Errorf("postgres URL does not parse: %w", urlError(err))
		}
		if err := checkPostgresDSN(raw); err != nil {
			return Target{}, err
		}
		return Target{Dialect: Postgres, DSN: raw}, nil
	default:
		return Target{}, errors.New(`unsupported database URL: use "sqlite:PATH" or "postgres://user:password@host:5432/dbname?sslmode=disable"`)
	}
}

// checkPostgresDSN builds the driver's configuration from raw, as Open will, and turns
// the driver's panic on a setting it refuses (an unknown sslmode, an unreadable
// sslrootcert) into an error.
func checkPostgresDSN(raw string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("postgres URL is not usable: %v", v)
		}
	}()
	pgdriver.NewConnector(pgdriver.WithDSN(raw))
	return nil
}

// connMaxIdleTime is how long an idle connection stays open (a variable for tests).
var connMaxIdleTime = 5 * time.Minute

// Open connects to the database named by rawURL and checks that it answers.
func Open(ctx context.Context, rawURL string) (*bun.DB, error) {
	t, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	var bdb *bun.DB
	switch t.Dialect {
	case SQLite:
		sqldb, err := sql.Open("sqlite", t.DSN)
		if err != nil {
			return nil, err
		}
		if t.Path == ":memory:" {
			// Each connection to :memory: is a separate database, gone when it closes:
			// keep exactly one, open for good (never closed for being idle).
			sqldb.SetMaxOpenConns(1)
			sqldb.SetMaxIdleConns(1)
			sqldb.SetConnMaxIdleTime(0)
			sqldb.SetConnMaxLifetime(0)
		} else {
			sqldb.SetMaxOpenConns(8)
			sqldb.SetConnMaxIdleTime(connMaxIdleTime)
		}
		bdb = bun.NewDB(sqldb, sqlitedialect.New())
	case Postgres:
		sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(t.DSN)))
		sqldb.SetMaxOpenConns(4 * runtime.GOMAXPROCS(0))
		sqldb.SetMaxIdleConns(4 * runtime.GOMAXPROCS(0))
		sqldb.SetConnMaxIdleTime(connMaxIdleTime)
		bdb = bun.NewDB(sqldb, pgdialect.New())
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if t.Dialect == SQLite && t.Path != ":memory:" {
		if err := enableWAL(pingCtx, bdb); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("database %s does not answer: %w", Redact(rawURL), err)
		}
	}
	if err := bdb.PingContext(pingCtx); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("database %s does not answer: %w", Redact(rawURL), err)
	}
	return bdb, nil
}

// enableWAL switches a SQLite file to write-ahead logging. Several processes opening a
// new file at once (replicas starting together) make the switch fail with SQLITE_BUSY at
// once, without the busy timeout, so it is retried until ctx ends.
func enableWAL(ctx context.Context, bdb *bun.DB) error {
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		var mode string
		err := bdb.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		var sqErr *sqlite.Error
		if err == nil || !errors.As(err, &sqErr) || sqErr.Code()&0xff != sqlite3.SQLITE_BUSY {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// Redact returns a database or cache URL with its password replaced by "***", for
// logs, errors and `gatehouse config`. A URL that net/url cannot parse, or parses
// without user information because the password holds an unescaped '#', '/', '?' or
// '%', still has everything between "scheme://user:" and its last '@' masked.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.User == nil && strings.Contains(raw, "@")) {
		scheme, rest, ok := strings.Cut(raw, "://")
		at := strings.LastIndexByte(rest, '@')
		if !ok || at < 0 {
			return raw
		}
		user, _, hasPassword := strings.Cut(rest[:at], ":")
		if !hasPassword {
			return raw
		}
		return scheme + "://" + user + ":***@" + rest[at+1:]
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	s := u.String()
	return strings.Replace(s, "%2A%2A%2A", "***", 1)
}

// urlError is what net/url found wrong without the URL it quotes, which may hold a
// password (escape special characters in one as %XX, e.g. '#' as %23).
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w (escape special characters in the password as %%XX, e.g. '#' as %%23)", ue.Err)
	}
	return err
}

// IsUniqueViolation reports whether err is a unique-constraint violation in either
// dialect. Stores turn it into a conflict error naming the attribute.
func IsUniqueViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsForeignKeyViolation reports whether err is a foreign key violation: a row refers
// to one that is gone (deleted by a concurrent transaction, typically).
func IsForeignKeyViolation(err error) bool {
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return pgErr.Field('C') == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// RunInTx runs fn in a transaction on idb: a new transaction on a *bun.DB, a savepoint
// inside an existing bun.Tx. Modules write their store functions against bun.IDB and use
// this so that a use case spanning several modules composes into one transaction.
func RunInTx(ctx context.Context, idb bun.IDB, fn func(ctx context.Context, tx bun.Tx) error) error {
	return idb.RunInTx(ctx, nil, fn)
}

// EscapeLike escapes the LIKE wildcards in s with backslash; queries using it must say
// ESCAPE '\'.
func EscapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// SharedClock returns the SQL expression for "now" on the database's clock when replicas
// on several machines compare the times they store (PostgreSQL: one clock for all of
// them, free of skew between app servers), or "" on SQLite, whose processes share one
// machine and store their own clock's time.
func SharedClock(idb bun.IDB) string {
	if DialectOf(idb) == Postgres {
		return "now()"
	}
	return ""
}

// IsNoRows reports whether err says a query found no row.
func IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
