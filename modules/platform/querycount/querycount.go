// Package querycount counts the SQL statements run on behalf of one request, for the
// opt-in Server-Timing response header (GATEHOUSE_SERVER_TIMING). A Counter rides in the
// request's context; Hook, added to the database, adds every statement that runs under a
// context carrying one. Statements of background work (the audit relay, the
// ended-sessions poll) run under contexts of their own and are not counted.
package querycount

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
)

// Counter holds one request's statements. Dataloaders run a request's queries on other
// goroutines, so it is safe for concurrent use.
type Counter struct {
	n     atomic.Int64
	nanos atomic.Int64
}

// Queries is how many statements have run so far, BEGIN, COMMIT and ROLLBACK included:
// each is a round trip to the database.
func (c *Counter) Queries() int64 { return c.n.Load() }

// Time is the summed duration of those statements. Statements run concurrently (the
// batches of several dataloaders) each add their own, so it can exceed the wall time.
func (c *Counter) Time() time.Duration { return time.Duration(c.nanos.Load()) }

type counterKey struct{}

// With returns ctx carrying a new Counter, and the Counter.
func With(ctx context.Context) (context.Context, *Counter) {
	c := &Counter{}
	return context.WithValue(ctx, counterKey{}, c), c
}

// Hook is the bun.QueryHook that feeds the Counter of each statement's context. Bun
// calls it for its query builders, for raw Exec/Query on a DB or Tx, and for the
// transaction brackets.
type Hook struct{}

var _ bun.QueryHook = Hook{}

// BeforeQuery does nothing: the event carries the statement's start time.
func (Hook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

// AfterQuery counts the statement if its context belongs to a counted request.
func (Hook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	if c, ok := ctx.Value(counterKey{}).(*Counter); ok {
		c.n.Add(1)
		c.nanos.Add(int64(time.Since(e.StartTime)))
	}
}
