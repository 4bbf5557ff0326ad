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
	// Ping reports whether the cache answers; /readyz uses it.
	Ping(ctx context.Context) error
	// Kind names the implementation for logs: "redis" or "memory".
	Kind() string
	Close() error
}
