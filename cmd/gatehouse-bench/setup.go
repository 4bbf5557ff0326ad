package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gatehouse-dev/gatehouse/internal/samltest"
)

// public is the one address both replicas sit behind, as behind a load balancer.
const public = "https://gatehouse.bench"

// bench is one run's world: the binary, the databases, the replicas and the tenant.
type bench struct {
	o        options
	out      io.Writer
	dir      string
	bin      string
	admin    *bun.DB // the maintenance database, to create and drop ours
	dbName   string  // what the replicas use
	limName  string  // the "database's own limit" runs here, with the same schema
	db       *bun.DB // direct connection to dbName (seeding)
	settings []string
	prefix   string
	a, b     *replica
	started  []*replica
	idp      *samltest.IdP
	token    string // SCIM bearer token
	tenantID string
	http     *http.Client
	notes    []string
	// serverTiming: the replicas send Server-Timing with each request's SQL statements.
	serverTiming bool
}

// replica is one `gatehouse serve` process.
type replica struct {
	name    string
	base    string
	cmd     *exec.Cmd
	logs    *bytes.Buffer
	startup time.Duration // process start to the first /healthz 200
}

// tb lets the crafted IdP of internal/samltest run outside a test: it only calls
// Helper and Fatalf, and a failure there is a bug in this harness.
type tb struct{ testing.TB }

func (tb) Helper()                        {}
func (tb) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (tb) Fatal(a ...any)                 { panic(fmt.Sprint(a...)) }

func pingRedis(ctx context.Context, raw string) error {
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return err
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rc.Ping(ctx).Err()
}

func withDB(raw, name string) string {
	u, _ := url.Parse(raw)
	u.Path = "/" + name
	return u.String()
}

func openPG(dsn string, pool int) *bun.DB {
	sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	sqldb.SetMaxOpenConns(pool)
	sqldb.SetMaxIdleConns(pool)
	return bun.NewDB(sqldb, pgdialect.New())
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func setUp(ctx context.Context, o options, out io.Writer) (*bench, error) {
	b := &bench{o: o, out: out, http: &http.Client{Timeout: 60 * time.Second,
		Transport:     &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	// The services first: a missing one should stop the run now, not after the build.
	b.admin = openPG(o.pgURL, 2)
	if err := b.admin.PingContext(ctx); err != nil {
		return b, fmt.Errorf("PostgreSQL at %s does not answer: %w", o.pgURL, err)
	}
	if err := pingRedis(ctx, o.redis); err != nil {
		return b, fmt.Errorf("Redis at %s does not answer: %w", o.redis, err)
	}
	var err error
	if b.dir, err = os.MkdirTemp("", "gatehouse-bench-"); err != nil {
		return b, err
	}
	b.bin = filepath.Join(b.dir, "gatehouse")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/gatehouse")
	if o.rev != "" {
		// A committed revision, exported next to the binary: the working tree may be
		// half-way through someone's change.
		src := filepath.Join(b.dir, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			return b, err
		}
		if out, err := exec.CommandContext(ctx, "sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", o.rev, src).CombinedOutput(); err != nil {
			return b, fmt.Errorf("exporting %s with git archive: %v\n%s", o.rev, err, out)
		}
		build.Dir = src
	}
	b.logf("building the server binary (%s)", or(o.rev, "working tree"))
	if out, err := build.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build ./cmd/gatehouse (run from the repository root): %v\n%s", err, out)
	}

	stamp := time.Now().UnixNano()
	b.dbName = fmt.Sprintf("gatehouse_bench_%d", stamp)
	b.limName = b.dbName + "_limit"
	for _, n := range []string{b.dbName, b.limName} {
		if _, err := b.admin.ExecContext(ctx, "CREATE DATABASE "+n); err != nil {
			return b, err
		}
	}
	b.db = openPG(withDB(o.pgURL, b.dbName), 4)
	b.prefix = fmt.Sprintf("gh-bench-%d:", stamp)
	key := make([]byte, 32)
	rand.Read(key)
	b.settings = []string{
		"GATEHOUSE_DATABASE_URL=" + withDB(o.pgURL, b.dbName),
		"GATEHOUSE_REDIS_URL=" + o.redis,
		"GATEHOUSE_REDIS_PREFIX=" + b.prefix,
		"GATEHOUSE_PUBLIC_URL=" + public,
		"GATEHOUSE_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key),
		"GATEHOUSE_LOG_LEVEL=warn",
	}

	// A per-tenant SCIM rate limit (when this build has one) would measure the policy, not
	// the server: raise it out of the way and say so.
	help, _ := exec.CommandContext(ctx, b.bin, "serve", "-h").CombinedOutput()
	if strings.Contains(string(help), "GATEHOUSE_SCIM_RATE_LIMIT") {
		b.settings = append(b.settings, "GATEHOUSE_SCIM_RATE_LIMIT=10000")
		b.notes = append(b.notes, "this build has a per-tenant SCIM rate limit; the replicas run with GATEHOUSE_SCIM_RATE_LIMIT=10000 so that the server's capacity, not the policy, is measured")
	}
	// The SQL statement counts come from the Server-Timing header (builds that have it).
	if b.serverTiming = strings.Contains(string(help), "GATEHOUSE_SERVER_TIMING"); b.serverTiming {
		b.settings = append(b.settings, "GATEHOUSE_SERVER_TIMING=true")
	}

	// The tenant, with the binary's own commands.
	b.idp = samltest.NewIdP(tb{}, "https://idp.acme.bench/entity")
	md := filepath.Join(b.dir, "idp.xml")
	if err := os.WriteFile(md, b.idp.MetadataXML(), 0o600); err != nil {
		return b, err
	}
	b.logf("setting up the tenant with the CLI (database %s)", b.dbName)
	steps := [][]string{
		{"migrate", "up"},
		{"tenant", "create", "--slug", "acme", "--name", "Acme Bench", "--features", "user_groups"},
		{"tenant", "update", "--tenant", "acme", "--idp-initiated-sso=true"},
		{"saml", "configure", "--tenant", "acme", "--metadata-file", md},
	}
	for _, s := range steps {
		if _, err := b.cli(ctx, nil, s...); err != nil {
			return b, err
		}
	}
	issued, err := b.cli(ctx, nil, "scim-token", "issue", "--tenant", "acme", "--name", "bench IdP")
	if err != nil {
		return b, err
	}
	b.token = between(issued, "Bearer token:", "\n")
	if err := b.db.NewSelect().Table("tenants").Column("id").Where("slug = 'acme'").Scan(ctx, &b.tenantID); err != nil {
		return b, err
	}
	// The same schema and tenant in a second database for the plain-client baseline.
	lim := []string{"GATEHOUSE_DATABASE_URL=" + withDB(o.pgURL, b.limName)}
	for _, s := range [][]string{{"migrate", "up"}, {"tenant", "create", "--slug", "acme", "--name", "Acme Limit"}} {
		if _, err := b.cli(ctx, lim, s...); err != nil {
			return b, err
		}
	}

	b.logf("starting two replicas")
	if b.a, err = b.startReplica(ctx, "A"); err != nil {
		return b, err
	}
	if b.b, err = b.startReplica(ctx, "B"); err != nil {
		return b, err
	}
	return b, nil
}

// cli runs the server binary's CLI with the run's settings (overridden by extra).
func (b *bench) cli(ctx context.Context, extra []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(append(os.Environ(), b.settings...), extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func between(s, from, to string) string {
	_, after, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(after, to)
	return strings.TrimSpace(v)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startReplica starts `gatehouse serve` with the run's settings (overridden by extra)
// and measures process start → /healthz 200.
func (b *bench) startReplica(ctx context.Context, name string, extra ...string) (*replica, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &bytes.Buffer{}}
	r.cmd = exec.Command(b.bin, "serve")
	r.cmd.Env = append(append(append(os.Environ(), b.settings...), extra...), fmt.Sprintf("GATEHOUSE_LISTEN=127.0.0.1:%d", port))
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, r.logs
	t0 := time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	b.started = append(b.started, r)
	probe := &http.Client{Timeout: time.Second}
	for time.Since(t0) < 60*time.Second {
		resp, err := probe.Get(r.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.startup = time.Since(t0)
				return r, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil, fmt.Errorf("replica %s did not answer /healthz within 60s:\n%s", name, r.logs.String())
}

// rssKB is the process's resident set (VmRSS) in KiB.
func (r *replica) rssKB() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb
		}
	}
	return 0
}

// stop ends a replica as an orchestrator would (SIGTERM, then SIGKILL after 20 s).
func (b *bench) stop(r *replica) {
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
	b.started = slices.DeleteFunc(b.started, func(s *replica) bool { return s == r })
}

func (b *bench) tearDown() {
	for len(b.started) > 0 {
		b.stop(b.started[0])
	}
	if b.db != nil {
		b.db.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.admin != nil {
		for _, n := range []string{b.dbName, b.limName} {
			if n != "" {
				if _, err := b.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)"); err != nil {
					b.logf("dropping %s: %v", n, err)
				}
			}
		}
		b.admin.Close()
	}
	if b.prefix != "" {
		if opt, err := redis.ParseURL(b.o.redis); err == nil {
			rc := redis.NewClient(opt)
			iter := rc.Scan(ctx, 0, b.prefix+"*", 1000).Iterator()
			var keys []string
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			for len(keys) > 0 {
				n := min(len(keys), 500)
				rc.Del(ctx, keys[:n]...)
				keys = keys[n:]
			}
			rc.Close()
		}
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
