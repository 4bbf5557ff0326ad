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
	"github.com/gatehouse-dev/gatehouse/modules/platform/db"
)

// How ended sessions are kept from coming back through the cache.
//
// Ending a session (logout, revocation, deprovisioning) deletes its row and writes a
// tombstone in the same transaction. After the commit, and before the caller answers,
// the session's cache entry is buried (cache.Bury): replaced by a cache tombstone that a
// request which read the row just before the commit cannot overwrite when it writes the
// entry back. So the next request on any replica finds no entry, asks the database, and
// finds no row.
//
// The database tombstones cover what the cache cannot: a Redis restored from a snapshot
// taken before the burial, a failover that lost it, or a cache the ender could not reach.
// Every replica reads recent tombstones into memory every pollEvery, never trusts a
// cache entry of a tombstoned session, and trusts the cache at all only
//   - within trustFor of the start of its last successful poll, and
//   - while the cache's generation is the one seen when that poll started: a restarted
//     or restored Redis is only reached through a new connection, which moves the
//     generation, so its data is never believed before a poll that began after it came
//     back (and so saw every session ended before).
//
// When the burial cannot reach every replica — Redis did not answer, or the cache is
// this process's own (a CLI command beside an embedded-mode server) — the ender waits
// trustFor before returning: by then every replica has either polled past the commit or
// stopped trusting its cache. Slower, never wrong.
const (
	pollEvery = 500 * time.Millisecond
	trustFor  = 2 * time.Second
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

	wake      chan struct{} // asks the poller for a poll now
	pollEvery time.Duration
	overlap   time.Duration // pollOverlap (shorter in tests)

	mu       sync.Mutex
	recent   map[string]time.Time // session id -> ended at
	cursor   time.Time            // newest ended_at seen
	polledAt time.Time            // start of the last successful poll (this machine's monotonic clock)
	gen      uint64               // the cache's generation when that poll started
	watching bool
}

func newEnded(idb bun.IDB, clk clock.Clock, c cache.Cache, log *slog.Logger) *ended {
	return &ended{db: idb, clock: clk, cache: c, log: log, recent: map[string]time.Time{}, wake: make(chan struct{}, 1), pollEvery: pollEvery, overlap: pollOverlap}
}

// trusted reports whether a cache entry of session id may be believed: the session is
// not known to have ended, and this process's knowledge of ended sessions is fresh and
// at least as new as the cache's data (see the comment at the top). A process that does
// not watch (a CLI command) never trusts the cache.
func (e *ended) trusted(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.watching || time.Since(e.polledAt) > trustFor {
		return false
	}
	if e.cache.Generation() != e.gen {
		e.pollSoon()
		return false
	}
	_, gone := e.recent[id]
	return !gone
}

// known reports whether session id is known here to have ended.
func (e *ended) known(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, gone := e.recent[id]
	return gone
}

func (e *ended) pollSoon() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
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
		t := time.NewTicker(e.pollEvery)
		defer t.Stop()
		lastPrune := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-e.wake:
			}
			e.poll(ctx)
			if time.Since(lastPrune) > 10*time.Minute {
				e.prune(ctx)
				lastPrune = time.Now()
			}
		}
	}()
}

func (e *ended) poll(ctx context.Context) {
	// Taken before the query: what the query returns is at least as new as both.
	started, gen := time.Now(), e.cache.Generation()
	// Which tombstones are recent is judged by the clock that dated them: the
	// database's on PostgreSQL (db.SharedClock), not this replica's, which may be
	// minutes off. A replica ahead would otherwise read none and forget each at once.
	now := e.clock.Now()
	if expr := db.SharedClock(e.db); expr != "" {
		if err := e.db.NewSelect().ColumnExpr(expr).Scan(ctx, &now); err != nil {
			if ctx.Err() == nil {
				e.log.WarnContext(ctx, "cannot read ended sessions; trusting no cached session until the database answers", "err", err)
			}
			return
		}
	}
	e.mu.Lock()
	since := e.cursor.Add(-e.overlap)
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
	e.polledAt, e.gen = started, gen
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
	ins := tx.NewInsert().Model(&stones).On("CONFLICT (session_id) DO NOTHING")
	if db.SharedClock(tx) != "" {
		// Replicas compare these times with each other's: one clock for all of them, the
		// database's (db.SharedClock). Read when the tombstones are written, not at the
		// transaction's start (now()): a transaction that waited long for a lock would
		// commit tombstones older than pollOverlap behind others already polled, and no
		// poll would read them.
		ins = ins.Value("ended_at", "clock_timestamp()")
	}
	if _, err := ins.Exec(ctx); err != nil {
		return nil, err
	}
	return gone, nil
}

// recentlyEndedTx returns the user's sessions ended within keepInMemory (by tx itself
// included), for an answer that says the user is gone (deactivated or deleted). Another
// request may have ended them and still be burying them, or waiting out a burial it
// could not make; purging them again (burying is idempotent) keeps this answer from
// coming first. The window outlasts any purge: a burial's Redis timeouts plus trustFor.
func recentlyEndedTx(ctx context.Context, tx bun.IDB, now time.Time, tenantID, userID string) ([]Session, error) {
	var stones []endedSession
	err := tx.NewSelect().Model(&stones).Where("ended_at > ? AND user_id = ?", now.Add(-keepInMemory), userID).Scan(ctx)
	if err != nil {
		return nil, err
	}
	gone := make([]Session, len(stones))
	for i, st := range stones {
		gone[i] = Session{ID: st.SessionID, UserID: st.UserID, TenantID: tenantID}
	}
	return gone, nil
}

// purge buries the cache entries of ended sessions, one command per user: a user's
// entries share a Redis Cluster hash slot, so each burial is one atomic step. The rows
// and tombstones are committed; when the burial cannot reach every replica, purge waits
// until every replica has re-read the tombstones or stopped trusting its cache, so that
// when it returns no replica accepts these sessions, whatever its cache holds.
func (e *ended) purge(ctx context.Context, gone []Session) {
	if len(gone) == 0 {
		return
	}
	e.remember(gone, e.clock.Now())
	byUser := map[string][]string{}
	for _, g := range gone {
		byUser[g.UserID] = append(byUser[g.UserID], sessionKey(g.UserID, g.ID))
	}
	reached := e.reachesEveryReplica()
	for _, ks := range byUser {
		if err := e.cache.Bury(ctx, cacheFor, ks...); err != nil {
			e.log.WarnContext(ctx, "ended sessions could not be buried in the cache; waiting until every replica has read their tombstones from the database", "sessions", len(ks), "err", err)
			reached = false
		}
	}
	e.announce(ctx, gone)
	if !reached {
		// trustFor after the commit, every replica's trusted view began after it.
		select {
		case <-ctx.Done():
		case <-time.After(trustFor + 100*time.Millisecond):
		}
	}
}

// reachesEveryReplica reports whether this process's cache is the one every server
// reads: a shared Redis, or the in-process cache of the (only) server itself — not the
// private in-process cache of a CLI command.
func (e *ended) reachesEveryReplica() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cache.Kind() != "memory" || e.watching
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
