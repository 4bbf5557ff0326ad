package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// Topic is the bus topic on which a tenant's committed events are relayed, a JSON
// array of Stored per message, in seq order.
func Topic(tenantID string) string { return "audit." + tenantID }

// RunRelay moves committed audit events from the outbox to the bus until ctx ends:
// the relay reads only committed rows (never publishes before commit) and deletes them
// once published. Several replicas may run it at once.
func (l *Log) RunRelay(ctx context.Context, log *slog.Logger, db *bun.DB, b bus.Bus, every time.Duration) {
	publish := func(ctx context.Context, events []Stored) error {
		byTenant := map[string][]Stored{}
		var order []string
		for _, e := range events {
			if _, ok := byTenant[e.TenantID]; !ok {
				order = append(order, e.TenantID)
			}
			byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
		}
		for _, t := range order {
			msg, err := json.Marshal(byTenant[t])
			if err != nil {
				return err
			}
			if err := b.Publish(ctx, Topic(t), msg); err != nil {
				return err
			}
		}
		return nil
	}
	wake := l.commits(ctx, log, db)
	if wake != nil && every < time.Second {
		// Woken on every commit, the poll only covers a lost notification.
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := l.Relay(ctx, db, 500, publish)
			if err != nil {
				if ctx.Err() == nil {
					log.WarnContext(ctx, "audit relay: events stay in the outbox until the bus answers", "err", err)
				}
				break
			}
			if n < 500 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
			// Let the commits of the next moment join this run: one relay transaction
			// for a burst of events instead of one each, at a cost of a few
			// milliseconds of fan-out latency.
			select {
			case <-ctx.Done():
				return
			case <-time.After(relayCoalesce):
			}
			for len(wake) > 0 {
				<-wake
			}
		}
	}
}

// relayCoalesce is how long a woken relay waits for more commits before it runs.
const relayCoalesce = 5 * time.Millisecond

// relayChannel is the PostgreSQL notification channel Record notifies in the
// transaction of every event.
const relayChannel = "gatehouse_audit_outbox"

// commits returns a channel that receives when an audit event has been committed on
// PostgreSQL (LISTEN relayChannel), so the relay publishes within milliseconds rather
// than at its next poll; nil (never ready) on SQLite, where the poll alone serves the
// single node. A lost notification costs at most one poll interval.
func (l *Log) commits(ctx context.Context, log *slog.Logger, bdb *bun.DB) <-chan pgdriver.Notification {
	if db.DialectOf(bdb) != db.Postgres {
		return nil
	}
	ln := pgdriver.NewListener(bdb)
	if err := ln.Listen(ctx, relayChannel); err != nil {
		log.WarnContext(ctx, "audit relay: cannot LISTEN for commits; relying on the poll", "err", err)
		ln.Close()
		return nil
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	return ln.Channel()
}
