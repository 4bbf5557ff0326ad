package access_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/audit"
	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/tenancy"
)

// pruneAfterFirstRead runs a prune right after the next statement that reads the audit
// log, as retention would if it ran between two statements of a reader.
type pruneAfterFirstRead struct {
	armed atomic.Bool
	prune func()
}

func (h *pruneAfterFirstRead) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (h *pruneAfterFirstRead) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.Contains(e.Query, "audit_events") && h.armed.CompareAndSwap(true, false) {
		h.prune()
	}
}

// A page of the audit log after a cursor whose next events retention deletes while the
// page is being read is refused (CURSOR_EXPIRED), never answered with the hole hidden.
func TestAuditPageRacingRetention(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, bdb *bun.DB) {
		f := newFx(t, bdb)
		tid := f.tenant(tenancy.ProvisioningManual).ID
		for range 8 {
			f.space(tid, f.name("Space"))
		}
		all, _, err := f.audit.Page(ctx, bdb, tid, audit.Filter{}, 0, audit.MaxPage)
		must(t, err)
		k := len(all) - 7
		h := &pruneAfterFirstRead{prune: func() {
			if _, err := f.audit.Prune(context.Background(), bdb, tid, all[k+4].OccurredAt); err != nil {
				t.Error(err)
			}
		}}
		h.armed.Store(true)
		bdb.AddQueryHook(h)
		events, _, err := f.acc.AuditEvents(ctx, f.op(tid), audit.Filter{}, all[k].Seq, 3)
		if h.armed.Load() {
			t.Fatal("no prune ran")
		}
		if apperr.CodeOf(err) != audit.CursorExpired {
			t.Fatalf("after #%d while #%d–#%d were pruned: %d events, %v; want %s", all[k].Seq, all[k+1].Seq, all[k+3].Seq, len(events), err, audit.CursorExpired)
		}
	})
}
