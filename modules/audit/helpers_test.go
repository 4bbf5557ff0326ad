package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

type fx struct {
	t     *testing.T
	db    *bun.DB
	clock *clock.Manual
	log   *audit.Log
}

func newFx(t *testing.T, bdb *bun.DB) *fx {
	clk := clock.NewManual(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	return &fx{t: t, db: bdb, clock: clk, log: audit.New(clk)}
}

// record commits one event per call, each in its own transaction.
func (f *fx) record(tenantID string, n int) {
	f.t.Helper()
	for i := range n {
		err := db.RunInTx(ctx, f.db, func(ctx context.Context, tx bun.Tx) error {
			return f.log.Record(ctx, tx, audit.Event{TenantID: tenantID, Action: "user.updated",
				Target:  audit.Target{Type: "user", ID: fmt.Sprintf("u%d", i), Display: fmt.Sprintf("user %d", i)},
				Changes: map[string]audit.Change{"n": {Before: i, After: i + 1}}})
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
}

// all returns every event of the tenant in seq order.
func (f *fx) all(tenantID string) []audit.Stored {
	f.t.Helper()
	var out []audit.Stored
	var after int64
	for {
		page, more, err := f.log.Page(ctx, f.db, tenantID, audit.Filter{}, after, audit.MaxPage)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, page...)
		if !more {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

func (f *fx) verify(tenantID string) audit.VerifyReport {
	f.t.Helper()
	rep, err := f.log.Verify(ctx, f.db, tenantID)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

func (f *fx) mustVerify(tenantID string, checked int64) audit.VerifyReport {
	f.t.Helper()
	rep := f.verify(tenantID)
	if !rep.OK || rep.Checked != checked || rep.BrokenSeq != 0 || rep.Reason != "" {
		f.t.Fatalf("Verify(%s) = %+v, want OK with %d events checked", tenantID, rep, checked)
	}
	return rep
}

func (f *fx) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.db.ExecContext(ctx, query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
}

// wantSeqs checks that events are numbered 1..n (or from..n) without gaps and linked.
func wantChain(t *testing.T, events []audit.Stored, from, to int64) {
	t.Helper()
	if int64(len(events)) != to-from+1 {
		t.Fatalf("%d events, want #%d..#%d", len(events), from, to)
	}
	for i, e := range events {
		if e.Seq != from+int64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, from+int64(i))
		}
		if len(e.Hash) != 64 {
			t.Fatalf("event #%d hash %q", e.Seq, e.Hash)
		}
		if i > 0 && e.PrevHash != events[i-1].Hash {
			t.Fatalf("event #%d prev_hash %q, want %q", e.Seq, e.PrevHash, events[i-1].Hash)
		}
	}
}
