// Package cache is the shared key-value cache: Redis (single node, Sentinel or Cluster
// through go-redis' UniversalClient) when configured, otherwise an in-process map for the
// embedded single-node default. It is a cache, never the source of truth: callers must be
// correct when it is empty, stale or down.
package cache

import (
	"context"
	"errors"
	"time"
)

// ErrMiss is returned by Get when the key is absent or expired.
var ErrMiss = errors.New("cache: miss")

// ErrBuried is returned by Get when the key holds a tombstone left by Bury: the value was
// withdrawn on purpose and must not be written back from an older read.
var ErrBuried = errors.New("cache: buried")

// Cache is what the modules need from a cache.
type Cache interface {
	// Get returns the value at key or ErrMiss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores val at key for ttl (ttl > 0).
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val at key for ttl only if key is absent, and reports whether it did.
	// It is the primitive for single-use tokens and replay caches.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Take returns the value at key and deletes it in one atomic step, or ErrMiss; it
	// makes a stored value single use (two concurrent Takes never both get it).
	Take(ctx context.Context, key string) ([]byte, error)
	// Del removes keys; absent keys are not an error. Keys deleted together must share a
	// Redis Cluster hash slot (a common {tag} in the key).
	Del(ctx context.Context, keys ...string) error
	// Bury replaces the values at keys with tombstones for ttl, in one atomic step (keys
	// share a hash slot, as for Del). Get then returns ErrBuried, and SetUnlessBuried
	// writes nothing: a reader that fetched the value from the source of truth just
	// before it was withdrawn cannot put it back.
	Bury(ctx context.Context, ttl time.Duration, keys ...string) error
	// SetUnlessBuried stores val at key for ttl unless key holds a tombstone, and reports
	// whether it did. (Set replaces a tombstone.)
	SetUnlessBuried(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Generation changes whenever the cache may hold other data than before without this
	// process having written it: for Redis, it counts the connections opened, since a
	// server that restarted, failed over or was restored from a snapshot is only reached
	// through a new connection. A value read after Generation changed may be older than
	// anything learnt before. The in-process cache's generation never changes.
	Generation() uint64
	// Ping reports whether the cache answers; /readyz uses it.
	Ping(ctx context.Context) error
	// Kind names the implementation for logs: "redis" or "memory".
	Kind() string
	Close() error
}
