package identity

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/gatehouse-dev/gatehouse/modules/platform/bus"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/clock"
)

// How ended sessions are kept from coming back through the cache.
//
// Ending a session (logout, revocation, deprovisioning) deletes its row and writes a
// tombstone in the same transaction, then deletes its cache entry. The cache delete is
// what makes the next request on any replica miss the cache and find no row. The
// tombstones cover what a cache delete cannot: a Redis restored from a snapshot taken
// before the delete, a failover that lost it, or a cache that was unreachable when it
// was sent. Every replica reads recent tombstones from the database into memory every
// pollEvery and never trusts a cache entry of a tombstoned session. If it cannot read
// them for staleAfter, it stops trusting the cache at all and asks the database on
// every request (slower, still correct).
const (
	pollEvery  = time.Second
	staleAfter = 5 * time.Second
	// keepInMemory outlives every cache entry: entries live at most cacheFor, and
	// Redis keeps absolute expiry times across a snapshot restore.
	keepInMemory = 2 * cacheFor
	// keepInDatabase is how long tombstones stay in the table.
	keepInDatabase = time.Hour
	// pollOverlap re-reads tombstones this far behind the newest one seen, because
	// transactions commit in a different order than their timestamps.
	pollOverlap = time.Minute
)

// endedSession is a session tombstone.
type endedSession struct {
	bun.BaseModel `bun:"table:ended_sessions"`

	SessionID string    `bun:"session_id,pk"`
	UserID    string    `bun:"user_id"`
	EndedAt   time.Time `bun:"ended_at"`
}

// ended is the process's view of recently ended sessions, shared by the user service
// (deprovisioning) and the session layer (authentication).
type ended struct {
	db    bun.IDB
	clock clock.Clock
	cache cache.Cache
	log   *slog.Logger

	bus bus.Bus // where ended sessions are announced; nil = nowhere

	mu       sync.Mutex
	recent   map[string]time.Time // session id -> ended at
	cursor   time.Time            // newest ended_at seen
	polledAt time.Time            // last successful poll
	watching bool
}

func newEnded(idb bun.IDB, clk clock.Clock, c cache.Cache, log *slog.Logger) *ended {
	return &ended{db: idb, clock: clk, cache: c, log: log, recent: map[string]time.Time{}}
}

// trusted reports whether a cache entry of session id may be believed: the session is
// not known to have ended, and this process's knowledge of ended sessions is fresh.
// A process that does not watch (a CLI command) never trusts the cache.
func (e *ended) trusted(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.watching || e.clock.Now().Sub(e.polledAt) > staleAfter {
		return false
	}
	_, gone := e.recent[id]
	return !gone
}

// remember records sessions this process has just ended, so it does not wait for its
// next poll to distrust their cache entries.
func (e *ended) remember(gone []Session, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range gone {
		e.recent[g.ID] = at
	}
}

// watch polls the tombstones until ctx ends, and prunes old ones from the table now and
// then. It returns after the first poll, successful or not, so a server does not serve
// requests with an empty view; the polling goes on in the background.
func (e *ended) watch(ctx context.Context) {
	e.mu.Lock()
	e.watching = true
	e.mu.Unlock()
	e.poll(ctx)
	go func() {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			e.poll(ctx)
			if n++; n%600 == 0 {
				e.prune(ctx)
			}
		}
	}()
}

func (e *ended) poll(ctx context.Context) {
	now := e.clock.Now()
	e.mu.Lock()
	since := e.cursor.Add(-pollOverlap)
	if e.cursor.IsZero() {
		since = now.Add(-keepInMemory)
	}
	e.mu.Unlock()
	var rows []endedSession
	err := e.db.NewSelect().Model(&rows).Where("ended_at > ?", since).Scan(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.WarnContext(ctx, "cannot read ended sessions; trusting no cached session until the database answers", "err", err)
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range rows {
		e.recent[r.SessionID] = r.EndedAt
		if r.EndedAt.After(e.cursor) {
			e.cursor = r.EndedAt
		}
	}
	for id, at := range e.recent {
		if now.Sub(at) > keepInMemory {
			delete(e.recent, id)
		}
	}
	e.polledAt = now
}

func (e *ended) prune(ctx context.Context) {
	_, err := e.db.NewDelete().Model((*endedSession)(nil)).Where("ended_at < ?", e.clock.Now().Add(-keepInDatabase)).Exec(ctx)
	if err != nil && ctx.Err() == nil {
		e.log.WarnContext(ctx, "cannot prune ended sessions", "err", err)
	}
}

// endTx deletes the sessions matching where inside tx and writes their tombstones. The
// caller purges the cache after commit.
func endTx(ctx context.Context, tx bun.IDB, now time.Time, where string, args ...any) ([]Session, error) {
	var gone []Session
	if err := tx.NewSelect().Model(&gone).Column("id", "user_id", "tenant_id").Where(where, args...).Scan(ctx); err != nil {
		return nil, err
	}
	if len(gone) == 0 {
		return nil, nil
	}
	idList := make([]string, len(gone))
	stones := make([]endedSession, len(gone))
	for i, g := range gone {
		idList[i] = g.ID
		stones[i] = endedSession{SessionID: g.ID, UserID: g.UserID, EndedAt: now}
	}
	if _, err := tx.NewDelete().Model((*Session)(nil)).Where("id IN (?)", bun.In(idList)).Exec(ctx); err != nil {
		return nil, err
	}
	if _, err := tx.NewInsert().Model(&stones).On("CONFLICT (session_id) DO NOTHING").Exec(ctx); err != nil {
		return nil, err
	}
	return gone, nil
}

// purge deletes the cache entries of ended sessions, one command per user: a user's
// entries share a Redis Cluster hash slot, so each delete is one atomic step. A failure
// is logged, not returned: the rows and tombstones are committed, so no replica will
// accept these sessions whatever the cache holds.
func (e *ended) purge(ctx context.Context, gone []Session) {
	if len(gone) == 0 {
		return
	}
	e.remember(gone, e.clock.Now())
	byUser := map[string][]string{}
	for _, g := range gone {
		byUser[g.UserID] = append(byUser[g.UserID], sessionKey(g.UserID, g.ID))
	}
	for _, ks := range byUser {
		if err := e.cache.Del(ctx, ks...); err != nil {
			e.log.WarnContext(ctx, "ended sessions could not be purged from the cache; the database tombstones keep them refused", "sessions", len(ks), "err", err)
		}
	}
	e.announce(ctx, gone)
}

// EndedSessionsTopic is the bus topic on which every ended session is announced, so
// that live connections it authenticated (subscriptions) close at once on every replica.
const EndedSessionsTopic = "sessions.ended"

// EndedSession is what EndedSessionsTopic carries, one JSON array of these a message.
type EndedSession struct {
	SessionID string `json:"sid"`
	UserID    string `json:"uid"`
}

func (e *ended) announce(ctx context.Context, gone []Session) {
	if e.bus == nil {
		return
	}
	msg := make([]EndedSession, len(gone))
	for i, g := range gone {
		msg[i] = EndedSession{SessionID: g.ID, UserID: g.UserID}
	}
	b, _ := json.Marshal(msg)
	if err := e.bus.Publish(ctx, EndedSessionsTopic, b); err != nil {
		// Live connections also re-check their session every few seconds.
		e.log.WarnContext(ctx, "cannot announce ended sessions", "err", err)
	}
}
