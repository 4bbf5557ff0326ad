package audit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
)

// recordHourly records n events an hour apart and returns the time of the first.
func (f *fx) recordHourly(tenantID string, n int) time.Time {
	f.t.Helper()
	start := f.clock.Now()
	for range n {
		f.record(tenantID, 1)
		f.clock.Advance(time.Hour)
	}
	return start
}

// Pruning deletes the oldest events and leaves a checkpoint that verification starts
// from; tampering with what remains, or with the checkpoint, is still found.
func TestPrune(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		start := f.recordHourly("acme", 20)
		f.record("globex", 3)
		mid := start.Add(10 * time.Hour) // events #1..#10 are older

		n, err := f.log.Prune(ctx, bdb, "acme", mid)
		if err != nil || n != 10 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		rep := f.mustVerify("acme", 10)
		if rep.FromCheckpoint != 10 {
			t.Fatalf("FromCheckpoint = %d", rep.FromCheckpoint)
		}
		rest := f.all("acme")
		wantChain(t, rest, 11, 20)
		if latest, _ := f.log.Latest(ctx, bdb, "acme"); latest != 20 {
			t.Fatalf("Latest = %d", latest)
		}
		f.mustVerify("globex", 3) // other tenants are untouched
		var outbox int
		if err := bdb.NewSelect().Table("audit_outbox").ColumnExpr("count(*)").Where("tenant_id = 'acme'").Scan(ctx, &outbox); err != nil || outbox != 10 {
			t.Fatalf("outbox rows of acme after the prune = %d, %v (pruned events take theirs along)", outbox, err)
		}
		if n, err := f.log.Prune(ctx, bdb, "acme", mid); err != nil || n != 0 {
			t.Fatalf("pruning again = %d, %v", n, err)
		}
		// Recording goes on after the checkpoint.
		f.record("acme", 1)
		f.mustVerify("acme", 11)

		// Tampering after a prune.
		f.exec("DELETE FROM audit_outbox")
		for _, c := range []struct {
			name, tamper, undo string
			seq                int64
			reason             string
		}{
			{"edit a remaining event", "UPDATE audit_events SET actor_name = 'x' WHERE tenant_id = 'acme' AND seq = 15",
				"", 15, "edited"},
			{"delete the first remaining event", "DELETE FROM audit_events WHERE tenant_id = 'acme' AND seq = 11", "", 11, "missing"},
			{"delete the checkpoint", "DELETE FROM audit_checkpoints WHERE tenant_id = 'acme'", "", 1, "missing"},
			{"edit the checkpoint's hash", "UPDATE audit_checkpoints SET hash = 'x' WHERE tenant_id = 'acme'", "", 11, "prev_hash"},
			{"move the checkpoint on", "UPDATE audit_checkpoints SET seq = 12 WHERE tenant_id = 'acme'", "", 11, "checkpoint"},
		} {
			t.Run(c.name, func(t *testing.T) {
				f.t = t
				tx, err := bdb.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, c.tamper); err != nil {
					t.Fatal(err)
				}
				rep, err := f.log.Verify(ctx, tx, "acme")
				if err != nil || rep.OK || rep.BrokenSeq != c.seq || !strings.Contains(rep.Reason, c.reason) {
					t.Fatalf("Verify = %+v, %v; want broken at #%d (%s)", rep, err, c.seq, c.reason)
				}
			})
		}
		f.t = t
		f.mustVerify("acme", 11)

		// A broken part is not pruned: pruning would erase the evidence.
		f.exec("UPDATE audit_events SET action = 'x' WHERE tenant_id = 'acme' AND seq = 12")
		if _, err := f.log.Prune(ctx, bdb, "acme", mid.Add(5*time.Hour)); !apperr.Is(err, apperr.KindPreconditionFailed) || !strings.Contains(err.Error(), "#12") {
			t.Fatalf("pruning a broken log: %v", err)
		}
		if rep := f.verify("acme"); rep.BrokenSeq != 12 || rep.FromCheckpoint != 10 {
			t.Fatalf("after the refused prune: %+v", rep)
		}
	})
}

// Pruning everything keeps the chain head, so the next event continues the chain.
func TestPruneEverythingAndPruneExpired(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		f.recordHourly("acme", 5)
		f.recordHourly("globex", 5)
		f.recordHourly("initech", 5)
		if n, err := f.log.Prune(ctx, bdb, "acme", f.clock.Now()); err != nil || n != 5 {
			t.Fatalf("Prune = %d, %v", n, err)
		}
		if rep := f.mustVerify("acme", 0); rep.FromCheckpoint != 5 {
			t.Fatalf("%+v", rep)
		}
		f.record("acme", 1)
		wantChain(t, f.all("acme"), 6, 6)
		f.mustVerify("acme", 1)

		// globex recorded at +5h..+9h and initech at +10h..+14h. Seen from +32h, one day
		// of retention keeps globex's events from +8h; two days keep all of initech's; 0
		// days keeps acme's forever.
		now := f.clock.Now() // +15h
		n, err := f.log.PruneExpired(ctx, bdb, []audit.RetentionPolicy{
			{TenantID: "acme", Days: 0}, {TenantID: "initech", Days: 2}, {TenantID: "globex", Days: 1},
		}, now.Add(24*time.Hour-7*time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("PruneExpired = %d, %v", n, err)
		}
		wantChain(t, f.all("globex"), 4, 5)
		f.mustVerify("globex", 2)
		wantChain(t, f.all("initech"), 1, 5)
		wantChain(t, f.all("acme"), 6, 6)
	})
}

// A reader resuming after events that a prune deleted is refused with CURSOR_EXPIRED
// instead of being handed a log with a hole; right at the checkpoint, or with nothing
// pruned, it goes on.
func TestCheckResumeAfterPrune(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		start := f.recordHourly("acme", 10)
		for _, seq := range []int64{0, 1, 5, 10} {
			if err := f.log.CheckResume(ctx, bdb, "acme", seq); err != nil {
				t.Fatalf("before any prune, resuming after #%d: %v", seq, err)
			}
		}
		// Past the newest event: no position in this log (another tenant's cursor).
		if err := f.log.CheckResume(ctx, bdb, "acme", 11); !apperr.Is(err, apperr.KindInvalid) || apperr.CodeOf(err) == audit.CursorExpired {
			t.Fatalf("resuming after #11 of a log that ends at #10: %v", err)
		}
		if _, err := f.log.Prune(ctx, bdb, "acme", start.Add(4*time.Hour)); err != nil { // #1..#4 go
			t.Fatal(err)
		}
		for _, seq := range []int64{0, 4, 5, 10} {
			if err := f.log.CheckResume(ctx, bdb, "acme", seq); err != nil {
				t.Fatalf("resuming after #%d, with #5.. kept: %v", seq, err)
			}
		}
		for _, seq := range []int64{1, 3} {
			err := f.log.CheckResume(ctx, bdb, "acme", seq)
			if !apperr.Is(err, apperr.KindInvalid) || apperr.CodeOf(err) != audit.CursorExpired ||
				!strings.Contains(err.Error(), "oldest event kept, #5") {
				t.Fatalf("resuming after #%d, pruned: %v", seq, err)
			}
		}
		// Everything pruned: only the position at the head goes on.
		if _, err := f.log.Prune(ctx, bdb, "acme", f.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if err := f.log.CheckResume(ctx, bdb, "acme", 10); err != nil {
			t.Fatalf("resuming at the head with nothing kept: %v", err)
		}
		if err := f.log.CheckResume(ctx, bdb, "acme", 9); apperr.CodeOf(err) != audit.CursorExpired {
			t.Fatalf("resuming before the head with nothing kept: %v", err)
		}
	})
}

// pruneHook records an event for its tenant (through another connection, committed)
// right after the first query of a prune that looks for the events to keep, i.e. while
// the prune's transaction is choosing what to delete.
type pruneHook struct {
	f      *fx
	tenant string
	armed  atomic.Bool
}

func (h *pruneHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *pruneHook) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.Contains(e.Query, "occurred_at >=") && h.armed.CompareAndSwap(true, false) {
		h.f.record(h.tenant, 1)
	}
}

// An event committed while a prune runs is in the retention window (it is newer than
// the cutoff): the prune must not delete it, even on a tenant whose every older event
// goes. (PostgreSQL only: SQLite transactions are serialised, so nothing commits while
// a prune runs.)
func TestPruneKeepsAnEventCommittedMeanwhile(t *testing.T) {
	bdb := testenv.Postgres(t)
	f := newFx(t, bdb)
	f.recordHourly("acme", 5) // #1..#5, all older than now
	h := &pruneHook{f: f, tenant: "acme"}
	bdb.AddQueryHook(h)
	h.armed.Store(true)
	n, err := f.log.Prune(ctx, bdb, "acme", f.clock.Now()) // #6 is recorded at now, during the prune
	if err != nil {
		t.Fatal(err)
	}
	if h.armed.Load() {
		t.Fatal("the hook did not run")
	}
	if n != 5 {
		t.Fatalf("Prune deleted %d events; want the 5 older than the cutoff", n)
	}
	wantChain(t, f.all("acme"), 6, 6)
	if rep := f.mustVerify("acme", 1); rep.FromCheckpoint != 5 {
		t.Fatalf("%+v", rep)
	}
}

// After a prune of chained events nothing may remain at or before the checkpoint: a
// prune deletes a prefix, older-than-the-chain events first. Events kept there but
// marked as older than the chain ("legacy", which verification skips) are events
// hidden behind a checkpoint moved on, and still shown by every reader of the log.
func TestVerifyFindsEventsHiddenBehindAMovedCheckpoint(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		start := f.recordHourly("acme", 20)
		if _, err := f.log.Prune(ctx, bdb, "acme", start.Add(10*time.Hour)); err != nil {
			t.Fatal(err)
		}
		f.mustVerify("acme", 10)
		f.exec("DELETE FROM audit_outbox")
		f.exec("UPDATE audit_events SET actor_name = 'forged', prev_hash = 'legacy', hash = 'legacy' WHERE tenant_id = 'acme' AND seq IN (11, 12)")
		f.exec("UPDATE audit_checkpoints SET seq = 12, hash = (SELECT prev_hash FROM audit_events WHERE tenant_id = 'acme' AND seq = 13) WHERE tenant_id = 'acme'")
		if n := len(f.all("acme")); n != 10 {
			t.Fatalf("%d events shown; want the 10 kept, the forged ones among them", n)
		}
		rep := f.verify("acme")
		if rep.OK || rep.BrokenSeq != 11 || !strings.Contains(rep.Reason, "checkpoint") {
			t.Fatalf("Verify = %+v; want broken at #11 (the checkpoint was moved)", rep)
		}
	})
}
