package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Cache on a go-redis UniversalClient, so one URL can name a single node, a
// Sentinel-managed master or a Cluster.
type Redis struct {
	client redis.UniversalClient
	prefix string
	conns  atomic.Uint64 // connections opened: the Generation
}

// ParseRedisURL turns a URL into UniversalOptions:
//
//	redis://[user:password@]host:port[/db]                    single node
//	rediss://…                                                 the same over TLS
//	redis://host1:port?addr=host2:port&addr=host3:port         Cluster (two or more addresses)
//	redis://host:port?cluster=true                             Cluster through one seed address
//	redis://sentinel1:26379?addr=sentinel2:26379&master_name=m Sentinel
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Not err itself: it quotes the URL, password and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis URL does not parse: %w (escape special characters in the password as %%XX, e.g. '#' as %%23)", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New(`redis URL must start with redis:// or rediss://, e.g. "redis://127.0.0.1:6379/0"`)
	}
	if u.Host == "" {
		return nil, errors.New(`redis URL has no host: use e.g. "redis://127.0.0.1:6379/0"`)
	}
	q := u.Query()
	opts := &redis.UniversalOptions{Addrs: append([]string{u.Host}, q["addr"]...)}
	if u.User != nil {
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis URL database %q is not a number", p)
		}
		opts.DB = n
	}
	if u.Scheme == "rediss" {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	}
	opts.MasterName = q.Get("master_name")
	if v := q.Get("cluster"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("redis URL cluster=%q must be true or false", v)
		}
		opts.IsClusterMode = b
	}
	for k := range q {
		switch k {
		case "addr", "master_name", "cluster":
		default:
			return nil, fmt.Errorf("redis URL parameter %q is not supported (supported: addr, master_name, cluster)", k)
		}
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	return opts, nil
}

// NewRedis connects to the Redis named by rawURL. All keys are stored under prefix, so
// several deployments (or test runs) can share one Redis.
func NewRedis(ctx context.Context, rawURL, prefix string) (*Redis, error) {
	opts, err := ParseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	r := &Redis{prefix: prefix}
	// Runs on every new connection before its first command, so a read through a
	// connection to a restarted or restored server always sees the generation move.
	opts.OnConnect = func(context.Context, *redis.Conn) error {
		r.conns.Add(1)
		return nil
	}
	r.client = redis.NewUniversalClient(opts)
	if err := r.Ping(ctx); err != nil {
		_ = r.client.Close()
		return nil, fmt.Errorf("redis does not answer: %w", err)
	}
	return r, nil
}

// Client exposes the underlying client for features beyond the Cache interface
// (pub/sub, scripts).
func (r *Redis) Client() redis.UniversalClient { return r.client }

func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err == nil && string(b) == tombstone {
		return nil, ErrBuried
	}
	return b, err
}

// tombstone is the value Bury leaves; no caller stores it (values are JSON or tokens).
const tombstone = "\x00gatehouse:buried"

func (r *Redis) Bury(ctx context.Context, ttl time.Duration, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	// MULTI/EXEC: every key or none, in one step; Cluster allows it within one slot.
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, r.prefix+k, tombstone, ttl)
		}
		return nil
	})
	return err
}

var setUnlessBuried = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`)

func (r *Redis) SetUnlessBuried(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	n, err := setUnlessBuried.Run(ctx, r.client, []string{r.prefix + key}, val, tombstone, ttl.Milliseconds()).Int()
	return n == 1, err
}

func (r *Redis) Generation() uint64 { return r.conns.Load() }

func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.client.Set(ctx, r.prefix+key, val, ttl).Err()
}

func (r *Redis) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	return r.client.SetNX(ctx, r.prefix+key, val, ttl).Result()
}

func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := r.client.GetDel(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	return b, err
}

// Del removes keys in one command. In a Cluster the keys of one call must share a hash
// slot; callers that delete several keys at once give them a common {hash tag}, which
// also makes the delete one atomic step.
func (r *Redis) Del(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	return r.client.Del(ctx, full...).Err()
}

func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }
func (r *Redis) Kind() string                   { return "redis" }
func (r *Redis) Close() error                   { return r.client.Close() }

// slogPrinter routes go-redis's own messages (dial failures, pool trouble) into the
// server's structured log instead of a bare line on stderr.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.log.WarnContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// LogTo sends go-redis's internal messages to log. It is process-wide (go-redis keeps
// one logger), so only the composition root calls it.
func LogTo(log *slog.Logger) { redis.SetLogger(slogPrinter{log: log}) }
