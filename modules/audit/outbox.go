package audit

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Relay claims up to limit outbox rows (oldest first), loads their events, calls publish
// with them ordered by tenant and seq, and deletes the rows only if publish returns nil,
// all in one transaction: a row is never published before the change that wrote it
// committed, and never lost. It returns how many events were published.
//
// On PostgreSQL the rows are claimed with FOR UPDATE SKIP LOCKED, so several replicas
// relay at once without publishing a row twice while it is claimed; on SQLite
// transactions are serialised. Delivery is at least once: if the commit fails after
// publish returned, the rows are published again by a later call. publish runs inside
// the transaction, so it should be quick (hand the events to a bus, not to a slow
// consumer).
func (l *Log) Relay(ctx context.Context, bdb *bun.DB, limit int, publish func(ctx context.Context, events []Stored) error) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	var published int
	err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
		var claimed []outboxRow
		q := tx.NewSelect().Model(&claimed).Column("event_id").OrderExpr("created_at, tenant_id, seq").Limit(int64(limit))
		if db.DialectOf(tx) == db.Postgres {
			q = q.For("UPDATE SKIP LOCKED")
			// The relay's commit need not wait for its WAL flush: were it lost in a crash,
			// the rows would be relayed again, which at-least-once delivery allows; and
			// not waiting keeps the relay's flush from queueing beside the commits of the
			// changes themselves.
			if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit TO off"); err != nil {
				return err
			}
		}
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("claiming outbox rows: %w", err)
		}
		if len(claimed) == 0 {
			return nil
		}
		idList := make([]string, len(claimed))
		for i, c := range claimed {
			idList[i] = c.EventID
		}
		var events []Stored
		if err := tx.NewSelect().Model(&events).Where("id IN (?)", bun.In(idList)).
			OrderExpr("tenant_id, seq").Scan(ctx); err != nil {
			return fmt.Errorf("loading relayed events: %w", err)
		}
		// An event deleted meanwhile takes its outbox row with it (ON DELETE CASCADE);
		// the rows claimed are removed either way.
		if len(events) > 0 {
			if err := publish(ctx, events); err != nil {
				return fmt.Errorf("publishing audit events: %w", err)
			}
		}
		if _, err := tx.NewDelete().Model((*outboxRow)(nil)).Where("event_id IN (?)", bun.In(idList)).Exec(ctx); err != nil {
			return fmt.Errorf("deleting relayed outbox rows: %w", err)
		}
		published = len(events)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return published, nil
}
