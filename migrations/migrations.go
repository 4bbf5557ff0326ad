// Package migrations holds the versioned schema, one set of SQL files per dialect,
// embedded in the binary, and the runner that applies them under a lock so replicas
// starting together never migrate twice.
//
// Files are named <timestamp>_<module>.tx.{up,down}.sql; ".tx." makes Bun run each file in
// a transaction, so a failed migration leaves nothing half-applied. Every change is added
// to both postgres/ and sqlite/ under the same name (a test checks the sets match).
package migrations

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Files returns the migration files of a dialect.
func Files(d db.Dialect) (fs.FS, error) { return fs.Sub(files, string(d)) }

func migrator(bdb *bun.DB) (*migrate.Migrator, error) {
	sub, err := Files(db.DialectOf(bdb))
	if err != nil {
		return nil, err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(sub); err != nil {
		return nil, err
	}
	return migrate.NewMigrator(bdb, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// Status lists every known migration with whether it is applied.
type Status struct {
	Name    string
	Applied bool
	Group   int64
}

// Up applies every pending migration and returns their names.
func Up(ctx context.Context, bdb *bun.DB) ([]string, error) {
	return run(ctx, bdb, func(m *migrate.Migrator) (*migrate.MigrationGroup, error) {
		return m.Migrate(ctx)
	})
}

// Down rolls back the last applied group of migrations and returns their names.
func Down(ctx context.Context, bdb *bun.DB) ([]string, error) {
	return run(ctx, bdb, func(m *migrate.Migrator) (*migrate.MigrationGroup, error) {
		return m.Rollback(ctx)
	})
}

// run does step under the migration lock and returns the names of the group it moved.
func run(ctx context.Context, bdb *bun.DB, step func(*migrate.Migrator) (*migrate.MigrationGroup, error)) ([]string, error) {
	var names []string
	err := withLock(ctx, bdb, func(m *migrate.Migrator) error {
		g, err := step(m)
		if err != nil {
			return err
		}
		for _, mg := range g.Migrations {
			names = append(names, mg.String())
		}
		return nil
	})
	return names, err
}

// List reports every migration and whether it has been applied.
func List(ctx context.Context, bdb *bun.DB) ([]Status, error) {
	m, err := migrator(bdb)
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(ms))
	for _, mg := range ms {
		out = append(out, Status{Name: mg.String(), Applied: mg.IsApplied(), Group: mg.GroupID})
	}
	return out, nil
}

// lockKey is the PostgreSQL advisory lock id for migrations (any fixed number works; a
// hash of a name keeps it readable and unlikely to collide with other applications).
func lockKey() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("gatehouse/migrations"))
	return int64(h.Sum64() >> 1)
}

// withLock runs fn holding the migration lock. On PostgreSQL it is a session advisory
// lock on one pinned connection: a second replica waits for it, and it is released if the
// process dies. SQLite serialises through a lock file next to the database.
func withLock(ctx context.Context, bdb *bun.DB, fn func(*migrate.Migrator) error) error {
	m, err := migrator(bdb)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, bdb)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("creating migration tables: %w", err)
	}
	return fn(m)
}

func lock(ctx context.Context, bdb *bun.DB) (func(), error) {
	if db.DialectOf(bdb) == db.SQLite {
		return lockSQLite(ctx, bdb)
	}
	conn, err := bdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", lockKey()); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("taking the migration lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", lockKey())
		_ = conn.Close()
	}, nil
}
