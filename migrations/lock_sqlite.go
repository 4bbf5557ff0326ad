package migrations

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/uptrace/bun"
)

// lockSQLite takes an exclusive flock on "<database file>.migrate-lock". The kernel drops
// it when the process exits, so a crash never leaves the database locked.
func lockSQLite(ctx context.Context, bdb *bun.DB) (func(), error) {
	var file string
	// PRAGMA database_list names the main database file ("" for :memory:).
	rows, err := bdb.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var seq int
		var name, path string
		if err := rows.Scan(&seq, &name, &path); err != nil {
			rows.Close()
			return nil, err
		}
		if name == "main" {
			file = path
		}
	}
	rows.Close()
	if file == "" {
		return func() {}, nil // in-memory: one process by definition
	}
	f, err := os.OpenFile(file+".migrate-lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the migration lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("taking the migration lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
