package db_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Replicas starting together on one new SQLite file all open it, and it ends up in WAL
// mode (readers beside the writer), which every later connection shares.
func TestOpenSQLiteConcurrentlyEnablesWAL(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := context.Background()
	const openers = 8
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() {
			bdb, err := db.Open(ctx, url)
			if err == nil {
				_, err = bdb.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (x INTEGER)")
				bdb.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
	}
	bdb, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var mode string
	if err := bdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}
