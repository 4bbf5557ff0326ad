package db_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// Redact hides the password of every database or Redis URL, including ones net/url
// cannot parse or parses without user information (an unescaped '#', '/' or '%').
func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://gatehouse:s3cret@db:5432/gatehouse?sslmode=disable", "postgres://gatehouse:***@db:5432/gatehouse?sslmode=disable"},
		{"postgres://gatehouse@db/gatehouse", "postgres://gatehouse@db/gatehouse"},
		{"postgres://db/gatehouse?application_name=x", "postgres://db/gatehouse?application_name=x"},
		{"sqlite:./gatehouse.db", "sqlite:./gatehouse.db"},
		{"redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"},
		{"postgres://gatehouse:pa#s3cret@db/gatehouse", "postgres://gatehouse:***@db/gatehouse"},
		{"postgres://gatehouse:pa/s3cret@db/gatehouse", "postgres://gatehouse:***@db/gatehouse"},
		{"postgres://gatehouse:pa%zzs3cret@db/gatehouse", "postgres://gatehouse:***@db/gatehouse"},
		{"redis://:pa@s3cret@cache:6379", "redis://:***@cache:6379"},
	} {
		if got := db.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// A URL that does not parse is refused without being quoted back.
	if _, err := db.ParseURL("postgres://gatehouse:pa%zzs3cret@db/gatehouse"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ParseURL error = %v; want a refusal that does not show the password", err)
	}
}

// A PostgreSQL URL the driver would refuse is refused when the configuration is read,
// with an error, instead of panicking later when the database is opened.
func TestParseURLRefusesWhatTheDriverRefuses(t *testing.T) {
	for _, raw := range []string{
		"postgres://gatehouse@db/gatehouse?sslmode=requires",
		"postgres://gatehouse@db/gatehouse?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
	} {
		_, err := db.ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted it", raw)
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Open(%q) panicked: %v", raw, v)
				}
			}()
			if _, err := db.Open(context.Background(), raw); err == nil {
				t.Errorf("Open(%q) succeeded", raw)
			}
		}()
	}
}

// An in-memory SQLite database lives as long as its one connection: an idle server must
// not close it and start over on an empty database.
func TestSQLiteInMemorySurvivesIdleness(t *testing.T) {
	defer db.SetConnMaxIdleTime(50 * time.Millisecond)()
	ctx := context.Background()
	bdb, err := db.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if _, err := bdb.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // database/sql reaps idle connections once a second at most
	if _, err := bdb.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("after an idle moment the in-memory database is gone: %v", err)
	}
}
