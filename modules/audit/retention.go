package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/apperr"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Prune deletes the tenant's events that occurred before before, and records a
// checkpoint with the seq and hash of the last one deleted, in one transaction; Verify
// then starts from the checkpoint. It returns how many events were deleted.
//
// What goes is always a prefix of the chain: the events before the first one (in seq
// order) that is not older than before. An event recorded a little out of time order
// (replica clocks disagreeing) may so outlive the cutoff until the next prune. Prune
// first verifies the part it deletes and refuses, with a precondition-failed error,
// when it is broken: pruning must not erase the evidence. Prunes of one tenant run one
// at a time; recording goes on meanwhile.
func (l *Log) Prune(ctx context.Context, bdb *bun.DB, tenantID string, before time.Time) (int, error) {
	var deleted int
	err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
		if db.DialectOf(tx) == db.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", pruneLockKey(tenantID)); err != nil {
				return err
			}
		}
		cp, err := loadCheckpoint(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		// The last event to delete: the one before the first kept, or the newest when
		// none is kept. One statement, so one snapshot: an event committed meanwhile
		// (newer than before) can neither be missed as the first kept nor be counted as
		// the newest of the old ones.
		var last int64
		if err := tx.NewRaw(`SELECT COALESCE(
				(SELECT MIN(seq) FROM audit_events WHERE tenant_id = ? AND occurred_at >= ?) - 1,
				(SELECT MAX(seq) FROM audit_events WHERE tenant_id = ?),
				0)`, tenantID, before.UTC(), tenantID).Scan(ctx, &last); err != nil {
			return err
		}
		if last <= 0 {
			return nil
		}
		var lastHash string
		if last > cp.Seq {
			w := walker{tenantID: tenantID, seq: cp.Seq, hash: cp.Hash}
			b, err := w.walk(ctx, tx, last)
			if err != nil {
				return err
			}
			if b == nil && w.seq != last {
				b = &breakage{seq: w.seq + 1, reason: fmt.Sprintf("event #%d is missing", w.seq+1)}
			}
			if b != nil {
				return apperr.PreconditionFailed("the audit log is broken at event #%d (%s), so it is not pruned: keep the evidence and investigate with `gatehouse audit verify`", b.seq, b.reason)
			}
			lastHash = w.hash
		}
		res, err := tx.NewDelete().Model((*eventRow)(nil)).Where("tenant_id = ? AND seq <= ?", tenantID, last).Exec(ctx)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		deleted = int(n)
		if last <= cp.Seq {
			return nil // only events older than the chain (legacy) went; the checkpoint stays
		}
		_, err = tx.NewInsert().Model(&checkpointRow{TenantID: tenantID, Seq: last, Hash: lastHash, PrunedAt: l.clock.Now().UTC()}).
			On("CONFLICT (tenant_id) DO UPDATE").
			Set("seq = EXCLUDED.seq, hash = EXCLUDED.hash, pruned_at = EXCLUDED.pruned_at").Exec(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pruning the audit log of tenant %s: %w", tenantID, err)
	}
	return deleted, nil
}

// pruneLockKey is the PostgreSQL advisory lock that serialises prunes of one tenant.
func pruneLockKey(tenantID string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("gatehouse/audit-prune/" + tenantID))
	return int64(h.Sum64() >> 1)
}

// RetentionPolicy says how many days of a tenant's audit events to keep (0 = forever).
type RetentionPolicy struct {
	TenantID string
	Days     int
}

// PruneExpired prunes each tenant's events older than its policy's days before now and
// returns how many were deleted in all. A tenant that fails does not stop the others;
// their errors are joined.
func (l *Log) PruneExpired(ctx context.Context, bdb *bun.DB, policies []RetentionPolicy, now time.Time) (int, error) {
	var total int
	var errs []error
	for _, p := range policies {
		if p.Days <= 0 {
			continue
		}
		n, err := l.Prune(ctx, bdb, p.TenantID, now.AddDate(0, 0, -p.Days))
		total += n
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return total, errors.Join(errs...)
}
