package migrations_test

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Every migration exists for both dialects under the same name.
func TestDialectsHaveTheSameMigrations(t *testing.T) {
	names := func(d db.Dialect) []string {
		sub, err := migrations.Files(d)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		_ = fs.WalkDir(sub, ".", func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				out = append(out, p)
			}
			return err
		})
		return out
	}
	pg, lite := names(db.Postgres), names(db.SQLite)
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Fatalf("postgres migrations %v differ from sqlite %v", pg, lite)
	}
}

// Down then Up round-trips, and status reports what is applied.
func TestDownAndUp(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		ctx := context.Background()
		list, err := migrations.List(ctx, bdb)
		if err != nil || len(list) == 0 {
			t.Fatalf("List = %v, %v", list, err)
		}
		for _, s := range list {
			if !s.Applied {
				t.Fatalf("%s not applied", s.Name)
			}
		}
		down, err := migrations.Down(ctx, bdb)
		if err != nil || len(down) != len(list) {
			t.Fatalf("Down = %v, %v", down, err)
		}
		if _, err := bdb.ExecContext(ctx, "SELECT 1 FROM tenants"); err == nil {
			t.Fatal("tenants table survives a full rollback")
		}
		up, err := migrations.Up(ctx, bdb)
		if err != nil || len(up) != len(list) {
			t.Fatalf("Up = %v, %v", up, err)
		}
		again, err := migrations.Up(ctx, bdb)
		if err != nil || len(again) != 0 {
			t.Fatalf("second Up = %v, %v", again, err)
		}
	})
}

// Replicas starting together: several migrators on separate connections to one fresh
// database; every one succeeds and each migration is applied exactly once.
func TestConcurrentMigratorsApplyOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return testenv.SQLiteURL(t) }},
		{"postgres", func(t *testing.T) string {
			u := testenv.PostgresDatabaseURL(t)
			// PostgresDatabaseURL gives a migrated database; start from an empty one.
			bdb, err := db.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			if _, err := migrations.Down(context.Background(), bdb); err != nil {
				t.Fatal(err)
			}
			return u
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			ctx := context.Background()
			const replicas = 4
			applied := make([][]string, replicas)
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i := range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bdb, err := db.Open(ctx, url)
					if err != nil {
						errs[i] = err
						return
					}
					defer bdb.Close()
					applied[i], errs[i] = migrations.Up(ctx, bdb)
				}()
			}
			wg.Wait()
			total := 0
			for i := range replicas {
				if errs[i] != nil {
					t.Fatalf("replica %d: %v", i, errs[i])
				}
				total += len(applied[i])
			}
			bdb, err := db.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer bdb.Close()
			list, _ := migrations.List(ctx, bdb)
			if total != len(list) {
				t.Fatalf("%d migrations applied across replicas, want exactly %d", total, len(list))
			}
		})
	}
}

// Every foreign key is the leading part of an index: deleting a referenced row (a user,
// a group, a tenant) makes PostgreSQL look up the referencing rows by those columns, and
// without such an index that is a scan of the whole table, under the deleter's locks.
func TestForeignKeysAreIndexed(t *testing.T) {
	bdb := testenv.Postgres(t)
	var missing []string
	err := bdb.NewRaw(`SELECT c.conrelid::regclass::text || ' (' ||
			string_agg(a.attname, ', ' ORDER BY k.ord) || ')'
		FROM pg_constraint AS c
		CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
		WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
		AND NOT EXISTS (
			SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.conrelid
			AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
			AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
		GROUP BY c.conrelid, c.conname ORDER BY 1`).Scan(context.Background(), &missing)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("foreign keys without an index leading with their columns:\n%s", strings.Join(missing, "\n"))
	}
}
