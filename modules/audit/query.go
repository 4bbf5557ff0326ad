package audit

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Filter narrows Page to matching events; zero fields match everything.
type Filter struct {
	// Actions matches any of these actions (e.g. "user.deactivated").
	Actions []string
	ActorID string
	// TargetID matches events about this user, group, token, tenant….
	TargetID string
	// From (inclusive) and To (exclusive) bound occurred_at.
	From, To *time.Time
}

// MaxPage is the most events Page returns at once.
const MaxPage = 500

// Page returns a tenant's events in ascending seq after afterSeq (0 = from the start),
// at most first of them (clamped to 1..MaxPage), and whether more follow. The next page
// starts after the last event's Seq. Each filter has an index in seq order, (tenant_id,
// actor_id, seq), (tenant_id, target_id, seq), (tenant_id, action, seq), so a filtered
// page reads only the rows it returns; From and To narrow it further.
func (l *Log) Page(ctx context.Context, idb bun.IDB, tenantID string, f Filter, afterSeq int64, first int) ([]Stored, bool, error) {
	first = min(max(first, 1), MaxPage)
	out := make([]Stored, 0, first+1)
	q := idb.NewSelect().Model(&out).Where("tenant_id = ? AND seq > ?", tenantID, afterSeq)
	if len(f.Actions) == 1 {
		q = q.Where("action = ?", f.Actions[0])
	} else if len(f.Actions) > 1 {
		q = q.Where("action IN (?)", bun.In(f.Actions))
	}
	if f.ActorID != "" {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.TargetID != "" {
		q = q.Where("target_id = ?", f.TargetID)
	}
	if f.From != nil {
		q = q.Where("occurred_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("occurred_at < ?", f.To.UTC())
	}
	if err := q.OrderExpr("seq").Limit(int64(first + 1)).Scan(ctx); err != nil {
		return nil, false, err
	}
	if len(out) > first {
		return out[:first], true, nil
	}
	return out, false, nil
}

// Latest returns the tenant's newest seq (0 when it has none): the chain head, which
// counts pruned events too.
func (l *Log) Latest(ctx context.Context, idb bun.IDB, tenantID string) (int64, error) {
	var seq int64
	err := idb.NewSelect().Model((*chainRow)(nil)).Column("last_seq").Where("tenant_id = ?", tenantID).Scan(ctx, &seq)
	if db.IsNoRows(err) {
		return 0, nil
	}
	return seq, err
}

// CursorExpired is the error code of a resume refused because retention deleted the
// events right after the reader's position.
const CursorExpired = "CURSOR_EXPIRED"

// CheckResume tells a reader that has processed the tenant's events up to afterSeq
// whether it can go on without a gap: it refuses (Invalid, code CursorExpired) when the
// next event, afterSeq+1, is no longer stored because a prune deleted it. Going on
// silently would hand the reader a log with a hole it cannot see; refused, the reader
// knows it missed events and can start again from the oldest one kept (afterSeq 0). A
// position past the tenant's newest event is no position in its log and is refused
// too (Invalid).
func (l *Log) CheckResume(ctx context.Context, idb bun.IDB, tenantID string, afterSeq int64) error {
	if afterSeq <= 0 {
		return nil
	}
	// The head is read first: an event committed after it is newer than it, so it cannot
	// make a stored log look pruned.
	latest, err := l.Latest(ctx, idb, tenantID)
	if err != nil {
		return err
	}
	var oldest *int64
	if err := idb.NewSelect().Model((*eventRow)(nil)).ColumnExpr("MIN(seq)").Where("tenant_id = ?", tenantID).Scan(ctx, &oldest); err != nil {
		return err
	}
	if afterSeq > latest {
		// No event of this log has had that seq yet: the cursor is another log's (another
		// tenant's, or from before a restore). Taken as a position it would skip the
		// events that come to have those seqs.
		return apperr.Invalid("the cursor is past the newest event of this audit log (#%d): it is not from this log; start again from the oldest event kept (after: \"\")", latest)
	}
	next := afterSeq + 1
	switch {
	case oldest != nil && next < *oldest:
		return apperr.Invalid("the events after this cursor (#%d to #%d) were deleted by the audit retention: start again from the oldest event kept, #%d (after: \"\")", next, *oldest-1, *oldest).WithCode(CursorExpired)
	case oldest == nil && next <= latest:
		return apperr.Invalid("the events after this cursor (#%d to #%d) were deleted by the audit retention and none is kept: start again from the start of the log (after: \"\")", next, latest).WithCode(CursorExpired)
	}
	return nil
}
