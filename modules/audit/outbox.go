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
// relay at once without publishing a row twice while it is claimed, and claiming,
// deleting and loading the events is one statement (the delete is undone with the
// transaction if publish fails); on SQLite transactions are serialised. Delivery is at
// least once: if the commit fails after publish returned, the rows are published again by
// a later call. publish runs inside the transaction, so it should be quick (hand the
// events to a bus, not to a slow consumer).
func (l *Log) Relay(ctx context.Context, bdb *bun.DB, limit int, publish func(ctx context.Context, events []Stored) error) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	var published int
	err := db.RunInTx(ctx, bdb, func(ctx context.Context, tx bun.Tx) error {
		events, err := claim(ctx, tx, limit)
		if err != nil || len(events) == 0 {
			return err
		}
		if err := publish(ctx, events); err != nil {
			return fmt.Errorf("publishing audit events: %w", err)
		}
		published = len(events)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return published, nil
}

// claim deletes up to limit of the oldest outbox rows inside tx and returns their events
// in tenant and seq order. (An event deleted meanwhile took its outbox row with it: ON
// DELETE CASCADE.)
func claim(ctx context.Context, tx bun.Tx, limit int) ([]Stored, error) {
	oldest := tx.NewSelect().Model((*outboxRow)(nil)).Column("event_id").
		OrderExpr("created_at, tenant_id, seq").Limit(int64(limit))
	var events []Stored
	if db.DialectOf(tx) == db.Postgres {
		claimed := tx.NewDelete().Model((*outboxRow)(nil)).
			Where("event_id IN (?)", oldest.For("UPDATE SKIP LOCKED")).Returning("event_id")
		err := tx.NewSelect().With("claimed", claimed).Model(&events).
			Where("id IN (SELECT event_id FROM claimed)").OrderExpr("tenant_id, seq").Scan(ctx)
		if err != nil {
			return nil, fmt.Errorf("claiming outbox rows: %w", err)
		}
		return events, nil
	}
	var rows []outboxRow
	if err := oldest.Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("claiming outbox rows: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	idList := make([]string, len(rows))
	for i, r := range rows {
		idList[i] = r.EventID
	}
	if err := tx.NewSelect().Model(&events).Where("id IN (?)", bun.In(idList)).OrderExpr("tenant_id, seq").Scan(ctx); err != nil {
		return nil, fmt.Errorf("loading relayed events: %w", err)
	}
	if _, err := tx.NewDelete().Model((*outboxRow)(nil)).Where("event_id IN (?)", bun.In(idList)).Exec(ctx); err != nil {
		return nil, fmt.Errorf("deleting relayed outbox rows: %w", err)
	}
	return events, nil
}
