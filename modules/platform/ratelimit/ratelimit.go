// Package ratelimit holds request budgets by key (e.g. "scim:{tenant}") with the generic
// cell rate algorithm (GCRA): a rate per second and a burst. The Redis implementation
// shares one budget across every replica; the in-process one serves the embedded
// single-node deployment. Both behave alike: a request either fits or is told how long
// to wait.
package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit is a budget: Rate requests per second on average, up to Burst at once.
type Limit struct {
	Rate  int
	Burst int
}

// Result says whether a request fits and, when not, when one will.
type Result struct {
	Allowed    bool
	RetryAfter time.Duration
}

// Limiter takes one request from the budget of key.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) Result
}

// Redis keeps budgets in Redis (redis_rate's GCRA script), under prefix+"rate:"+key.
// When Redis cannot be reached it lets the request through and logs a warning:
// provisioning that keeps working matters more than a limit held for a moment.
type Redis struct {
	limiter *redis_rate.Limiter
	prefix  string
	log     *slog.Logger
}

// NewRedis returns a limiter on client; prefix is the deployment's Redis key prefix.
func NewRedis(client redis.UniversalClient, prefix string, log *slog.Logger) *Redis {
	return &Redis{limiter: redis_rate.NewLimiter(prefixed{client, prefix}), prefix: prefix, log: log}
}

// prefixed puts the deployment's prefix in front of the keys redis_rate's scripts
// touch: redis_rate itself starts every key with "rate:", which would leave the
// budgets outside the prefix (and outside a Redis ACL granting only it).
type prefixed struct {
	redis.UniversalClient
	prefix string
}

func (p prefixed) keys(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = p.prefix + k
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, p.keys(keys)...)
}

// Prefix is the key prefix the limiter writes under.
func (r *Redis) Prefix() string { return r.prefix }

// Allow takes one request from key's budget.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) Result {
	res, err := r.limiter.Allow(ctx, key, redis_rate.Limit{Rate: l.Rate, Burst: l.Burst, Period: time.Second})
	if err != nil {
		r.log.WarnContext(ctx, "rate limit not enforced: redis unavailable", "key", key, "err", err)
		return Result{Allowed: true}
	}
	if res.Allowed > 0 {
		return Result{Allowed: true}
	}
	return Result{RetryAfter: res.RetryAfter}
}

// Memory keeps budgets in this process, for a single node.
type Memory struct {
	mu  sync.Mutex
	tat map[string]time.Time // theoretical arrival time of the next request, per key
	now func() time.Time
}

// NewMemory returns an in-process limiter.
func NewMemory() *Memory { return &Memory{tat: map[string]time.Time{}, now: time.Now} }

// Allow takes one request from key's budget (GCRA, as the Redis script does).
func (m *Memory) Allow(_ context.Context, key string, l Limit) Result {
	if l.Rate <= 0 {
		return Result{Allowed: true}
	}
	burst := max(l.Burst, 1)
	interval := time.Second / time.Duration(l.Rate)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if allowAt := next.Add(-time.Duration(burst) * interval); now.Before(allowAt) {
		return Result{RetryAfter: allowAt.Sub(now)}
	}
	m.tat[key] = next
	return Result{Allowed: true}
}
