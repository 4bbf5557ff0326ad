package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
	"github.com/gatehouse-dev/gatehouse/modules/platform/cache"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ids"
	"github.com/gatehouse-dev/gatehouse/modules/platform/ratelimit"
)

// budget takes requests from key until one is refused and returns how many fitted.
func budget(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limit) int {
	t.Helper()
	for n := 0; n < 1000; n++ {
		if r := l.Allow(context.Background(), key, lim); !r.Allowed {
			if r.RetryAfter <= 0 || r.RetryAfter > time.Second {
				t.Fatalf("RetryAfter %v", r.RetryAfter)
			}
			return n
		}
	}
	t.Fatal("never refused")
	return 0
}

func TestLimiters(t *testing.T) {
	rc, err := cache.NewRedis(context.Background(), testenv.RedisURL(), "test:")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	prefix := "test:" + ids.New() + ":"
	for name, l := range map[string]ratelimit.Limiter{"memory": ratelimit.NewMemory(), "redis": ratelimit.NewRedis(rc.Client(), prefix, log)} {
		t.Run(name, func(t *testing.T) {
			lim := ratelimit.Limit{Rate: 5, Burst: 10}
			// The burst fits (a request or so may have been refilled meanwhile), then no more.
			if n := budget(t, l, "scim:a", lim); n < 10 || n > 11 {
				t.Fatalf("burst: %d requests fitted, want 10", n)
			}
			// Another key has its own budget.
			if n := budget(t, l, "scim:b", lim); n < 10 {
				t.Fatalf("other key: %d", n)
			}
			time.Sleep(450 * time.Millisecond) // about two requests' worth at 5/s
			if n := budget(t, l, "scim:a", lim); n < 1 || n > 3 {
				t.Fatalf("after refill: %d", n)
			}
		})
	}
	// Two limiters on one Redis share the budget.
	a, b := ratelimit.NewRedis(rc.Client(), prefix, log), ratelimit.NewRedis(rc.Client(), prefix, log)
	lim := ratelimit.Limit{Rate: 1, Burst: 2}
	if !a.Allow(context.Background(), "scim:c", lim).Allowed || !b.Allow(context.Background(), "scim:c", lim).Allowed ||
		a.Allow(context.Background(), "scim:c", lim).Allowed || b.Allow(context.Background(), "scim:c", lim).Allowed {
		t.Fatal("replicas do not share the budget")
	}
}

// TestRedisDown: with Redis unreachable, requests are let through.
func TestRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	rc, err := cache.NewRedis(context.Background(), srv.URL(), "test:")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	l := ratelimit.NewRedis(rc.Client(), "test:", slog.New(slog.NewTextHandler(io.Discard, nil)))
	lim := ratelimit.Limit{Rate: 1, Burst: 1}
	l.Allow(context.Background(), "scim:x", lim)
	if l.Allow(context.Background(), "scim:x", lim).Allowed {
		t.Fatal("not limited while Redis is up")
	}
	srv.Stop()
	for range 3 {
		if !l.Allow(context.Background(), "scim:x", lim).Allowed {
			t.Fatal("refused while Redis is down")
		}
	}
}

// Every key the limiter writes starts with the deployment's prefix
// (GATEHOUSE_REDIS_PREFIX: "prefix of every Redis key"), so deployments sharing a Redis,
// and Redis ACLs granting a deployment its prefix (~gatehouse:*), hold its budgets too.
func TestRedisKeysCarryThePrefix(t *testing.T) {
	rc, err := cache.NewRedis(context.Background(), testenv.RedisURL(), "test:")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx := context.Background()
	prefix := "test:" + ids.New() + ":"
	l := ratelimit.NewRedis(rc.Client(), prefix, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Allow(ctx, "scim:k", ratelimit.Limit{Rate: 1, Burst: 1})
	defer rc.Client().Del(ctx, prefix+"rate:scim:k", "rate:"+prefix+"scim:k")
	if n, err := rc.Client().Exists(ctx, prefix+"rate:scim:k").Result(); err != nil || n != 1 {
		outside, _ := rc.Client().Exists(ctx, "rate:"+prefix+"scim:k").Result()
		t.Fatalf("no budget under %q (%v); under %q outside the prefix: %d", prefix+"rate:scim:k", err, "rate:"+prefix+"scim:k", outside)
	}
}
