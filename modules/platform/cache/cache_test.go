package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// eachCache runs the same contract against the in-process cache and real Redis.
func eachCache(t *testing.T, fn func(t *testing.T, c cache.Cache)) {
	t.Run("memory", func(t *testing.T) {
		c := cache.NewMemory()
		t.Cleanup(func() { c.Close() })
		fn(t, c)
	})
	t.Run("redis", func(t *testing.T) { fn(t, testenv.Redis(t)) })
	t.Run("redis-cluster", func(t *testing.T) {
		c, err := cache.NewRedis(context.Background(), testenv.StartRedisCluster(t), "gh:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fn(t, c)
	})
}

func TestContract(t *testing.T) {
	eachCache(t, func(t *testing.T, c cache.Cache) {
		ctx := context.Background()
		if _, err := c.Get(ctx, "absent"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get absent = %v, want ErrMiss", err)
		}
		if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if b, err := c.Get(ctx, "k"); err != nil || string(b) != "v" {
			t.Fatalf("Get = %q, %v", b, err)
		}
		if ok, err := c.SetNX(ctx, "k", []byte("w"), time.Minute); err != nil || ok {
			t.Fatalf("SetNX on a present key = %v, %v; want false", ok, err)
		}
		if b, err := c.Take(ctx, "k"); err != nil || string(b) != "v" {
			t.Fatalf("Take = %q, %v", b, err)
		}
		if _, err := c.Take(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("second Take = %v, want ErrMiss", err)
		}
		if ok, err := c.SetNX(ctx, "k", []byte("w"), 50*time.Millisecond); err != nil || !ok {
			t.Fatalf("SetNX on an absent key = %v, %v; want true", ok, err)
		}
		time.Sleep(120 * time.Millisecond)
		if _, err := c.Get(ctx, "k"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get after the TTL = %v, want ErrMiss", err)
		}
		if err := c.Set(ctx, "a", []byte("1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// Keys deleted together share a {hash tag}, as Cluster requires.
		if err := c.Set(ctx, "{u1}:a", []byte("1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := c.Del(ctx, "{u1}:a", "{u1}:never-set"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "{u1}:a"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get after a multi-key Del = %v", err)
		}
		if err := c.Del(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "a"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get after Del = %v", err)
		}
	})
}

// Single use is what SAML request binding and replay protection rely on: of many
// concurrent Takes (or SetNX calls) exactly one wins.
func TestSingleUseUnderConcurrency(t *testing.T) {
	eachCache(t, func(t *testing.T, c cache.Cache) {
		ctx := context.Background()
		if err := c.Set(ctx, "once", []byte("x"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var took, set atomic.Int32
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Take(ctx, "once"); err == nil {
					took.Add(1)
				}
				if ok, err := c.SetNX(ctx, "nx", []byte("y"), time.Minute); err == nil && ok {
					set.Add(1)
				}
			}()
		}
		wg.Wait()
		if took.Load() != 1 || set.Load() != 1 {
			t.Fatalf("Take won %d times and SetNX %d times; want exactly 1 each", took.Load(), set.Load())
		}
	})
}

// A buried value stays withdrawn: Get says so and a write-back from an older read does
// not land, while a plain Set (a new value on purpose) replaces the tombstone.
func TestBury(t *testing.T) {
	eachCache(t, func(t *testing.T, c cache.Cache) {
		ctx := context.Background()
		for _, k := range []string{"{u1}:s1", "{u1}:s2"} {
			if err := c.Set(ctx, k, []byte("alive"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Bury(ctx, 100*time.Millisecond, "{u1}:s1", "{u1}:s2", "{u1}:never-set"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"{u1}:s1", "{u1}:s2", "{u1}:never-set"} {
			if _, err := c.Get(ctx, k); !errors.Is(err, cache.ErrBuried) {
				t.Fatalf("Get %s after Bury = %v, want ErrBuried", k, err)
			}
			if ok, err := c.SetUnlessBuried(ctx, k, []byte("alive"), time.Minute); err != nil || ok {
				t.Fatalf("SetUnlessBuried %s over a tombstone = %v, %v; want false", k, ok, err)
			}
		}
		if ok, err := c.SetUnlessBuried(ctx, "{u2}:s", []byte("v"), time.Minute); err != nil || !ok {
			t.Fatalf("SetUnlessBuried on an absent key = %v, %v; want true", ok, err)
		}
		if b, err := c.Get(ctx, "{u2}:s"); err != nil || string(b) != "v" {
			t.Fatalf("Get = %q, %v", b, err)
		}
		time.Sleep(150 * time.Millisecond)
		if _, err := c.Get(ctx, "{u1}:s1"); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get after the tombstone's TTL = %v, want ErrMiss", err)
		}
		if ok, err := c.SetUnlessBuried(ctx, "{u1}:s1", []byte("again"), time.Minute); err != nil || !ok {
			t.Fatalf("SetUnlessBuried after the tombstone's TTL = %v, %v; want true", ok, err)
		}
		if err := c.Bury(ctx, time.Minute, "{u1}:s2"); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(ctx, "{u1}:s2", []byte("new"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if b, err := c.Get(ctx, "{u1}:s2"); err != nil || string(b) != "new" {
			t.Fatalf("Get after Set over a tombstone = %q, %v", b, err)
		}
	})
}

// A Redis that restarts (and so may hold older data, e.g. from a snapshot) can only be
// read through a new connection, and every new connection moves the generation.
func TestGenerationMovesWhenRedisRestarts(t *testing.T) {
	rs := testenv.StartRedis(t)
	c, err := cache.NewRedis(context.Background(), rs.URL(), "gh:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	before := c.Generation()
	if before == 0 {
		t.Fatal("no connection counted")
	}
	for range 10 {
		if _, err := c.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if c.Generation() != before {
		t.Fatalf("generation moved from %d to %d without a new connection", before, c.Generation())
	}
	rs.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no reconnect within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.Generation() == before {
		t.Fatal("the generation did not move across a Redis restart")
	}
}
