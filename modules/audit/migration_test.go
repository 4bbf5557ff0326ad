package audit_test

import (
	"io/fs"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/migrations"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// The chain migration runs on a database that already has events: they are numbered
// in id order per tenant and marked legacy, verification starts after them, and the
// chain continues from there. Down and up again round-trips.
func TestChainMigrationKeepsExistingEvents(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		script := func(name string) {
			t.Helper()
			sub, err := migrations.Files(db.DialectOf(bdb))
			if err != nil {
				t.Fatal(err)
			}
			sql, err := fs.ReadFile(sub, "20261122001000_audit_chain.tx."+name+".sql")
			if err != nil {
				t.Fatal(err)
			}
			f.exec(string(sql))
		}
		script("down")
		// Events as the earlier schema stored them, ids in time order, two tenants.
		old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, tenant := range []string{"acme", "globex", "acme", "acme", "globex"} {
			f.exec("INSERT INTO audit_events (id, tenant_id, occurred_at, actor_type, action, changes) VALUES (?, ?, ?, 'system', 'user.created', ?)",
				"01old0000000000000000000"+string(rune('a'+i))+"0", tenant, old.Add(time.Duration(i)*time.Hour), `{"n":{"after":1}}`)
		}
		script("up")

		acme := f.all("acme")
		if got := seqs(acme); len(got) != 3 || got[0] != 1 || got[2] != 3 || acme[0].Hash != "legacy" || acme[2].PrevHash != "legacy" {
			t.Fatalf("legacy events of acme: %+v", acme)
		}
		if rep := f.mustVerify("acme", 0); rep.FromCheckpoint != 3 {
			t.Fatalf("Verify = %+v, want it to start after the 3 legacy events", rep)
		}
		f.mustVerify("globex", 0)
		f.record("acme", 2)
		f.record("newco", 1)
		wantChain(t, f.all("acme")[3:], 4, 5)
		if e := f.all("acme")[3]; e.PrevHash != "legacy" {
			t.Fatalf("the first chained event follows %q", e.PrevHash)
		}
		if rep := f.mustVerify("acme", 2); rep.FromCheckpoint != 3 {
			t.Fatalf("%+v", rep)
		}
		f.mustVerify("newco", 1)
		// A legacy event cannot be passed off as a chained one after the checkpoint.
		f.exec("UPDATE audit_events SET hash = 'x' WHERE tenant_id = 'acme' AND seq = 2")
		if rep := f.verify("acme"); rep.OK || rep.BrokenSeq != 2 {
			t.Fatalf("a non-legacy event before the checkpoint: %+v", rep)
		}
		f.exec("UPDATE audit_events SET hash = 'legacy' WHERE tenant_id = 'acme' AND seq = 2")

		// Pruning takes legacy events along; the legacy ones alone leave the checkpoint.
		if n, err := f.log.Prune(ctx, bdb, "globex", old.Add(2*time.Hour)); err != nil || n != 1 {
			t.Fatalf("pruning a legacy event = %d, %v", n, err)
		}
		if rep := f.mustVerify("globex", 0); rep.FromCheckpoint != 2 {
			t.Fatalf("%+v", rep)
		}
		if n, err := f.log.Prune(ctx, bdb, "acme", f.clock.Now().Add(time.Hour)); err != nil || n != 5 {
			t.Fatalf("pruning everything = %d, %v", n, err)
		}
		if rep := f.mustVerify("acme", 0); rep.FromCheckpoint != 5 {
			t.Fatalf("%+v", rep)
		}

		script("down")
		script("up")
		f.record("acme", 1)
		f.mustVerify("acme", 1)
	})
}
