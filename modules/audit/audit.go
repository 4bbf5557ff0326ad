// Package audit records who changed what, when and through which credential. Every
// module writes its events with Record inside the transaction of the change itself, so a
// rolled-back change leaves no event and a committed one always has it.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
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

	ID            string            `bun:"id,pk"`
	TenantID      string            `bun:"tenant_id"`
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

// Log writes and reads audit events.
type Log struct {
	clock clock.Clock
}

// New returns a Log that timestamps events with clk.
func New(clk clock.Clock) *Log { return &Log{clock: clk} }

// Record writes e through idb, which must be the transaction of the change.
func (l *Log) Record(ctx context.Context, idb bun.IDB, e Event) error {
	a := ActorFrom(ctx)
	m := reqmeta.From(ctx)
	now := l.clock.Now()
	row := &Stored{
		ID: ids.NewAt(now), TenantID: e.TenantID, OccurredAt: now,
		ActorType: a.Type, ActorID: a.ID, ActorName: a.Name,
		Action:     e.Action,
		TargetType: e.Target.Type, TargetID: e.Target.ID, TargetDisplay: e.Target.Display,
		Changes:   e.Changes,
		RequestID: m.RequestID, RemoteIP: m.RemoteIP, UserAgent: m.UserAgent,
	}
	if _, err := idb.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("recording audit event %s: %w", e.Action, err)
	}
	return nil
}

// List returns a tenant's most recent events, newest first.
func (l *Log) List(ctx context.Context, idb bun.IDB, tenantID string, limit int) ([]Stored, error) {
	var out []Stored
	err := idb.NewSelect().Model(&out).Where("tenant_id = ?", tenantID).
		OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	return out, err
}
