// Package audit records who changed what, when and through which credential, and keeps
// that record trustworthy.
//
// # Guarantees
//
//   - Transactional. Every module writes its events with Record inside the transaction of
//     the change itself, so a rolled-back change leaves no event (and no advance of the
//     tenant's sequence), and a committed one always has it.
//   - Ordered per tenant. Each tenant's events are numbered 1, 2, 3, … (Stored.Seq) with
//     no gaps and no duplicates, in the order their transactions took the tenant's chain
//     head (audit_chains), which Record locks for the rest of the transaction.
//   - Tamper-evident. Each event carries the hash of the one before it (PrevHash) and its
//     own hash over its canonical form (below). Verify walks the chain and reports the
//     first event that was edited, deleted or inserted, including the newest one (the
//     chain head must name the last event). This detects changes made to some rows
//     behind the application's back; someone able to rewrite every row, the chain head
//     and the checkpoint consistently can forge a consistent log, as with any hash chain
//     that is not anchored outside the database.
//   - Prunable. Prune deletes a prefix of a tenant's chain (its oldest events) and leaves
//     a checkpoint (audit_checkpoints) with the seq and hash of the last deleted event;
//     verification starts from it. Prune verifies what it deletes first and refuses to
//     erase a broken part.
//   - Relayed after commit, at least once. Record also writes an outbox row
//     (audit_outbox) in the same transaction. Relay hands committed events to a
//     publisher and deletes their outbox rows only when it succeeds, in one transaction:
//     nothing is published before it commits, nothing committed is lost, and an event may
//     be published again if the relay fails between publishing and committing, so
//     consumers deduplicate by ID (or Seq). Within one Relay call events are ordered by
//     tenant and seq; across concurrent relays a consumer orders by Seq.
//
// # Canonical form and hash
//
// Hash = hex(SHA-256(PrevHash + "\n" + canonical)), where canonical is the line
// "gatehouse-audit-v1\n" followed by every stored field, in this order, each written as
// its length in bytes (decimal), ":", the bytes, "\n":
//
//	tenant_id, seq (decimal), id, occurred_at (RFC 3339 in UTC with exactly six
//	fractional digits, e.g. 2026-11-22T10:00:00.000000Z), actor_type, actor_id,
//	actor_name, action, target_type, target_id, target_display, changes, request_id,
//	remote_ip, user_agent
//
// changes is canonical JSON: the value parsed and encoded again with encoding/json (map
// keys sorted, numbers as float64 in their shortest form, no insignificant space), or
// "null" when the event has no changes. It is stored in that form and re-canonicalised
// from the column at verification, so PostgreSQL jsonb and SQLite text give the same
// bytes. The first event of a tenant has PrevHash "" (or the checkpoint's hash after a
// prune). Text is stored as valid UTF-8 without NUL characters (both databases need
// that), so Record replaces invalid bytes with U+FFFD and drops NULs before hashing.
//
// Events recorded before the chain existed are marked with the hash "legacy" and sit
// before a checkpoint (see the migration 20261122001000_audit_chain); they stay readable
// but are not covered by the chain.
package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
	"github.com/gatehouse-dev/gatehouse/modules/platform/reqmeta"
)

// ActorType says what kind of credential made a change.
type ActorType string

const (
	ActorSCIMToken ActorType = "scim_token"
	ActorUser      ActorType = "user"
	ActorCLI       ActorType = "cli"
	ActorSystem    ActorType = "system"
)

// Actor is whoever made a change: a SCIM token (id and name), a signed-in user, an
// operator at the CLI, or the system itself.
type Actor struct {
	Type ActorType
	ID   string
	Name string
}

type actorKey struct{}

// WithActor returns ctx carrying the actor that events recorded under it name.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or the system actor when none was set.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Type: ActorSystem, Name: "gatehouse"}
}

// Target is what an event is about.
type Target struct {
	Type    string
	ID      string
	Display string
}

// Change is one attribute's value before and after. Secrets are never put here.
type Change struct {
	Before any `json:"before,omitempty"`
	After  any `json:"after,omitempty"`
}

// Event is what a module records. Time, actor and request facts are filled in by Record.
type Event struct {
	TenantID string
	Action   string
	Target   Target
	Changes  map[string]Change
}

// Stored is an event as it is kept.
type Stored struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID       string `bun:"id,pk"`
	TenantID string `bun:"tenant_id"`
	// Seq numbers the tenant's events 1, 2, 3, … without gaps.
	Seq int64 `bun:"seq"`
	// PrevHash is the Hash of event Seq-1 ("" for the first, "legacy" for events older
	// than the chain); Hash covers PrevHash and the event's canonical form.
	PrevHash      string            `bun:"prev_hash"`
	Hash          string            `bun:"hash"`
	OccurredAt    time.Time         `bun:"occurred_at"`
	ActorType     ActorType         `bun:"actor_type"`
	ActorID       string            `bun:"actor_id"`
	ActorName     string            `bun:"actor_name"`
	Action        string            `bun:"action"`
	TargetType    string            `bun:"target_type"`
	TargetID      string            `bun:"target_id"`
	TargetDisplay string            `bun:"target_display"`
	Changes       map[string]Change `bun:"changes,type:jsonb"`
	RequestID     string            `bun:"request_id"`
	RemoteIP      string            `bun:"remote_ip"`
	UserAgent     string            `bun:"user_agent"`
}

// eventRow is an event as written and as verified: changes stay the exact text of the
// column (nil for NULL) instead of being decoded.
type eventRow struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID            string    `bun:"id,pk"`
	TenantID      string    `bun:"tenant_id"`
	Seq           int64     `bun:"seq"`
	PrevHash      string    `bun:"prev_hash"`
	Hash          string    `bun:"hash"`
	OccurredAt    time.Time `bun:"occurred_at"`
	ActorType     string    `bun:"actor_type"`
	ActorID       string    `bun:"actor_id"`
	ActorName     string    `bun:"actor_name"`
	Action        string    `bun:"action"`
	TargetType    string    `bun:"target_type"`
	TargetID      string    `bun:"target_id"`
	TargetDisplay string    `bun:"target_display"`
	Changes       *string   `bun:"changes"`
	RequestID     string    `bun:"request_id"`
	RemoteIP      string    `bun:"remote_ip"`
	UserAgent     string    `bun:"user_agent"`
}

// chainRow is the head of a tenant's chain.
type chainRow struct {
	bun.BaseModel `bun:"table:audit_chains"`

	TenantID string `bun:"tenant_id,pk"`
	LastSeq  int64  `bun:"last_seq"`
	LastHash string `bun:"last_hash"`
}

// outboxRow marks a committed event that has not been relayed yet.
type outboxRow struct {
	bun.BaseModel `bun:"table:audit_outbox"`

	EventID   string    `bun:"event_id,pk"`
	TenantID  string    `bun:"tenant_id"`
	Seq       int64     `bun:"seq"`
	CreatedAt time.Time `bun:"created_at"`
}

// Log writes and reads audit events.
type Log struct {
	clock clock.Clock
}

// New returns a Log that timestamps events with clk.
func New(clk clock.Clock) *Log { return &Log{clock: clk} }

// Record writes e through idb, which must be the transaction of the change (given a
// *bun.DB, it opens a transaction of its own). It takes the tenant's chain head for the
// rest of the transaction: the tenant's next event waits until this one commits or
// rolls back.
func (l *Log) Record(ctx context.Context, idb bun.IDB, e Event) error {
	if err := l.RecordAll(ctx, idb, []Event{e}); err != nil {
		return fmt.Errorf("recording audit event %s: %w", e.Action, err)
	}
	return nil
}

// RecordAll records events of one tenant in order, as Record records each, with one
// statement per table for all of them (for a change made of many, such as a SCIM Bulk
// request's creates).
func (l *Log) RecordAll(ctx context.Context, idb bun.IDB, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	a := ActorFrom(ctx)
	m := reqmeta.From(ctx)
	rows := make([]*eventRow, len(events))
	for i, e := range events {
		if e.TenantID != events[0].TenantID {
			return fmt.Errorf("audit: events of tenants %s and %s recorded together", events[0].TenantID, e.TenantID)
		}
		changes, err := encodeChanges(e.Changes)
		if err != nil {
			return fmt.Errorf("encoding the changes of %s: %w", e.Action, err)
		}
		rows[i] = &eventRow{
			TenantID:  storable(e.TenantID),
			ActorType: storable(string(a.Type)), ActorID: storable(a.ID), ActorName: storable(a.Name),
			Action:     storable(e.Action),
			TargetType: storable(e.Target.Type), TargetID: storable(e.Target.ID), TargetDisplay: storable(e.Target.Display),
			Changes:   changes,
			RequestID: storable(m.RequestID), RemoteIP: storable(m.RemoteIP), UserAgent: storable(m.UserAgent),
		}
	}
	if inTx(idb) {
		return l.appendEvents(ctx, idb, rows)
	}
	return db.RunInTx(ctx, idb, func(ctx context.Context, tx bun.Tx) error { return l.appendEvents(ctx, tx, rows) })
}

func inTx(idb bun.IDB) bool {
	switch idb.(type) {
	case bun.Tx, *bun.Tx:
		return true
	}
	return false
}

// appendEvents numbers, hashes and writes rows (of one tenant, in order), their outbox
// rows and the new chain head.
func (l *Log) appendEvents(ctx context.Context, tx bun.IDB, rows []*eventRow) error {
	head, err := lockChain(ctx, tx, rows[0].TenantID)
	if err != nil {
		return fmt.Errorf("taking the chain head: %w", err)
	}
	// The time is read after the head is taken, so a tenant's events are in time order
	// as well as seq order (as far as the clocks of the replicas agree).
	now := l.clock.Now().UTC().Truncate(time.Microsecond)
	outbox := make([]outboxRow, len(rows))
	for i, r := range rows {
		r.ID, r.OccurredAt = ids.NewAt(now), now
		r.Seq, r.PrevHash = head.LastSeq+1, head.LastHash
		r.Hash = chainHash(r.PrevHash, canonical(r, canonicalChangesOrNull(r.Changes)))
		outbox[i] = outboxRow{EventID: r.ID, TenantID: r.TenantID, Seq: r.Seq, CreatedAt: now}
		head.LastSeq, head.LastHash = r.Seq, r.Hash
	}
	events := tx.NewInsert().Model(&rows)
	relay := tx.NewInsert().Model(&outbox)
	newHead := tx.NewUpdate().Model(&head).WherePK()
	if db.DialectOf(tx) == db.Postgres {
		// One round trip for the events, their outbox rows, the new head and the relays'
		// wake-up, which PostgreSQL delivers when (and only if) the transaction commits,
		// so the relays move at once instead of at their next poll. (Data-modifying WITH
		// clauses always run; SQLite has none, and no round trips to save.)
		_, err := tx.NewSelect().With("events", events).With("outbox", relay).With("head", newHead).
			ColumnExpr("pg_notify(?, '')", relayChannel).Exec(ctx)
		return err
	}
	for _, q := range []interface {
		Exec(context.Context, ...any) (sql.Result, error)
	}{events, relay, newHead} {
		if _, err := q.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// lockChain returns the tenant's chain head, creating it at (0, "") for a tenant's first
// event. On PostgreSQL the row stays locked (SELECT … FOR UPDATE) until the transaction
// ends; two transactions creating the same head meet on its primary key, the second
// waits for the first to commit and then does nothing, and both go on to the locking
// read. SQLite transactions hold the database's write lock from BEGIN (_txlock=immediate)
// so they are serialised already.
func lockChain(ctx context.Context, tx bun.IDB, tenantID string) (chainRow, error) {
	pg := db.DialectOf(tx) == db.Postgres
	read := func() (chainRow, error) {
		var c chainRow
		q := tx.NewSelect().Model(&c).Where("tenant_id = ?", tenantID)
		if pg {
			q = q.For("UPDATE")
		}
		err := q.Scan(ctx)
		return c, err
	}
	c, err := read()
	if err == nil || !db.IsNoRows(err) {
		return c, err
	}
	if _, err := tx.NewInsert().Model(&chainRow{TenantID: tenantID}).On("CONFLICT (tenant_id) DO NOTHING").Exec(ctx); err != nil {
		return chainRow{}, err
	}
	return read()
}

// storable returns s as both databases keep it: PostgreSQL refuses NUL characters and
// invalid UTF-8 (Bun would write each invalid byte as U+FFFD), so the hash is computed
// over exactly what is stored.
func storable(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s)) // one U+FFFD per invalid byte, as Bun writes it
}
