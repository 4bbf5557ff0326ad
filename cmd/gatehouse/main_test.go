package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// deployments are the two ways Gatehouse runs, as settings: PostgreSQL with Redis (each
// test with its own database and key prefix), and the embedded default.
var deployments = map[string]func(t *testing.T) []string{
	"postgres+redis": func(t *testing.T) []string {
		return []string{"GATEHOUSE_DATABASE_URL", testenv.PostgresDatabaseURL(t), "GATEHOUSE_REDIS_URL", testenv.RedisURL(),
			"GATEHOUSE_REDIS_PREFIX", fmt.Sprintf("gh-%d:", time.Now().UnixNano())}
	},
	"embedded": func(t *testing.T) []string { return []string{"GATEHOUSE_DATABASE_URL", testenv.SQLiteURL(t)} },
}

// dbURLs are the two databases every operator command is tested on.
var dbURLs = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return testenv.SQLiteURL(t) }},
	{"postgres", func(t *testing.T) string { return testenv.PostgresDatabaseURL(t) }},
}

// envOf builds a getenv from pairs, so tests never see the developer's environment.
func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// cli runs one gatehouse command in-process and returns its stdout.
func cli(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, getenv, &out, &errOut)
	return out.String(), err
}

func mustCLI(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	out, err := cli(t, getenv, args...)
	if err != nil {
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// syncBuffer is a log sink the server goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listenRE finds the bound address in a text or JSON log.
var listenRE = regexp.MustCompile(`"?msg"?[=:]"gatehouse is listening",? ?"?addr"?[=:]"?([0-9.:]+)`)

// startServer runs `gatehouse serve` in-process on a free port (or GATEHOUSE_LISTEN) and returns its base URL,
// its log, and a function that stops it (SIGTERM's path: context cancellation) and
// returns serve's error.
func startServer(t *testing.T, getenv func(string) string) (string, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	if getenv("GATEHOUSE_LISTEN") != "" {
		args = args[:1] // the test chose the port (its public URL names it)
	}
	go func() {
		done <- run(ctx, args, getenv, io.Discard, logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(logs.String()); m != nil {
			stop := func() error {
				cancel()
				select {
				case err := <-done:
					return err
				case <-time.After(20 * time.Second):
					t.Fatal("server did not stop within 20s")
					return nil
				}
			}
			t.Cleanup(func() { cancel() })
			return "http://" + m[1], logs, stop
		}
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeEmbeddedDefault(t *testing.T) {
	getenv := envOf("GATEHOUSE_DATABASE_URL", testenv.SQLiteURL(t))
	base, logs, stop := startServer(t, getenv)
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	code, body := get(t, base+"/readyz")
	var ready struct {
		Ready  bool
		Checks map[string]string
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || !ready.Ready || ready.Checks["cache"] != "ok" {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	resp, _ := http.Get(base + "/healthz")
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("no request id on the response")
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	log := logs.String()
	for _, want := range []string{"database=sqlite cache=memory", "gatehouse tenant create", "scim_base_url=http://127.0.0.1:", "/scim/v2", "graphql=http://127.0.0.1:", "shutting down: draining requests", "http server stopped", "database closed", "set GATEHOUSE_SECRET_KEY"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestServeOnPostgresAndRedis(t *testing.T) {
	redis := testenv.StartRedis(t)
	getenv := envOf("GATEHOUSE_DATABASE_URL", testenv.PostgresDatabaseURL(t), "GATEHOUSE_REDIS_URL", redis.URL(),
		"GATEHOUSE_LOG_FORMAT", "json")
	base, logs, stop := startServer(t, getenv)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	// Redis gone: not ready, and it says which dependency is down.
	redis.Stop()
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"cache":"unreachable"`) || !strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("/readyz with Redis down = %d %s", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz with Redis down = %d; the process is up", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// JSON logs, one object a line, and the Redis URL is not in them.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
	}
	if !strings.Contains(logs.String(), `"database":"postgres","cache":"redis"`) {
		t.Fatalf("log does not say what it runs on:\n%s", logs.String())
	}
}

func TestConfigValidationAndMasking(t *testing.T) {
	_, err := cli(t, envOf("GATEHOUSE_LOG_LEVEL", "loud", "GATEHOUSE_DATABASE_URL", "mysql://x"), "config", "--listen", "nope")
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, want := range []string{`GATEHOUSE_LOG_LEVEL="loud": must be debug, info, warn or error`, `--listen="nope": must be host:port`, `GATEHOUSE_DATABASE_URL="mysql://x": unsupported database URL`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, bad := range [][]string{
		{"GATEHOUSE_PUBLIC_URL", "ftp://x"}, {"GATEHOUSE_REDIS_URL", "http://x"}, {"GATEHOUSE_SHUTDOWN_TIMEOUT", "-1s"},
		{"GATEHOUSE_AUTO_MIGRATE", "maybe"}, {"GATEHOUSE_SCIM_MAX_BODY_BYTES", "12"}, {"GATEHOUSE_LOG_FORMAT", "xml"},
		{"GATEHOUSE_REDIS_URL", "redis://h:1?bogus=1"},
	} {
		if _, err := cli(t, envOf(bad...), "config"); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s=%s: error %v does not name the variable", bad[0], bad[1], err)
		}
	}
	out := mustCLI(t, envOf("GATEHOUSE_DATABASE_URL", "postgres://app:s3cret@db:5432/gh?sslmode=disable",
		"GATEHOUSE_REDIS_URL", "redis://:hunter2@cache:6379/0", "GATEHOUSE_PUBLIC_URL", "https://id.example.com/"), "config")
	if strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
		t.Fatalf("config prints a secret:\n%s", out)
	}
	for _, want := range []string{"postgres://app:***@db:5432/gh", "redis://:***@cache:6379/0", "https://id.example.com\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
}

func TestOperatorCommands(t *testing.T) {
	for _, dbCase := range dbURLs {
		t.Run(dbCase.name, func(t *testing.T) {
			getenv := envOf("GATEHOUSE_DATABASE_URL", dbCase.url(t), "GATEHOUSE_PUBLIC_URL", "https://id.example.com")
			out := mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--name", "Acme Inc", "--features", "user_groups")
			if !strings.Contains(out, "SCIM base URL      https://id.example.com/scim/v2") || !strings.Contains(out, "user_groups") {
				t.Fatalf("tenant create printed:\n%s", out)
			}
			wantErr := func(contains string, args ...string) {
				t.Helper()
				_, err := cli(t, getenv, args...)
				if err == nil || !strings.Contains(err.Error(), contains) {
					t.Fatalf("gatehouse %s: want error containing %q, got %v", strings.Join(args, " "), contains, err)
				}
			}
			wantErr(`slug "acme" already exists`, "tenant", "create", "--slug", "acme")
			wantErr(`slug "Bad Slug" is not valid`, "tenant", "create", "--slug", "Bad Slug")
			wantErr(`no tenant with slug "nobody"`, "tenant", "show", "nobody")
			wantErr(`no tenant with slug "nobody"`, "scim-token", "issue", "--tenant", "nobody", "--name", "x")
			wantErr("--tenant is required", "domain", "list")
			wantErr(`domain "https://acme.com" is not valid`, "domain", "add", "--tenant", "acme", "https://acme.com")
			wantErr(`unknown tenant action "explode"`, "tenant", "explode")
			wantErr(`unknown command "frobnicate"`, "frobnicate")

			if out := mustCLI(t, getenv, "tenant", "list"); !strings.Contains(out, "acme  Acme Inc  scim") {
				t.Fatalf("tenant list:\n%s", out)
			}
			out = mustCLI(t, getenv, "tenant", "update", "acme", "--provisioning-mode", "manual", "--features", "none")
			if !strings.Contains(out, "provisioning mode  manual") || !strings.Contains(out, "features           (none)") {
				t.Fatalf("tenant update:\n%s", out)
			}

			out = mustCLI(t, getenv, "domain", "add", "--tenant", "acme", "acme.com")
			if !strings.Contains(out, "_gatehouse-challenge.acme.com") {
				t.Fatalf("domain add:\n%s", out)
			}
			mustCLI(t, getenv, "domain", "verify", "--tenant", "acme", "--manual", "acme.com")
			if out := mustCLI(t, getenv, "domain", "list", "--tenant", "acme"); !strings.Contains(out, "acme.com  20") {
				t.Fatalf("domain list:\n%s", out)
			}

			out = mustCLI(t, getenv, "scim-token", "issue", "--tenant", "acme", "--name", "Okta", "--expires-in", "720h")
			secret := regexp.MustCompile(`gatehouse_scim_\w+`).FindString(out)
			if secret == "" || !strings.Contains(out, "shown only this once") {
				t.Fatalf("scim-token issue:\n%s", out)
			}
			list := mustCLI(t, getenv, "scim-token", "list", "--tenant", "acme")
			if strings.Contains(list, secret) || !strings.Contains(list, "…"+secret[len(secret)-4:]) || !strings.Contains(list, "active") {
				t.Fatalf("scim-token list:\n%s", list)
			}
			id := regexp.MustCompile(`\(id (\w+)\)`).FindStringSubmatch(out)[1]
			wantErr("no SCIM token", "scim-token", "revoke", "--tenant", "acme", "01nosuchtoken")
			mustCLI(t, getenv, "scim-token", "revoke", "--tenant", "acme", id)
			if list := mustCLI(t, getenv, "scim-token", "list", "--tenant", "acme"); !strings.Contains(list, "revoked") {
				t.Fatalf("after revoke:\n%s", list)
			}
			if out := mustCLI(t, getenv, "migrate", "status"); !strings.Contains(out, "_tenancy") || strings.Contains(out, "pending") {
				t.Fatalf("migrate status:\n%s", out)
			}
		})
	}
}

// A SCIM token revoked with the CLI is refused by a running server: as soon as the
// announcement arrives over Redis, or within a second on the embedded default (the CLI
// cannot reach the server's memory), though the server remembers recent token lookups.
func TestSCIMTokenRevocationReachesTheServer(t *testing.T) {
	for name, stores := range deployments {
		t.Run(name, func(t *testing.T) {
			getenv := envOf(stores(t)...)
			mustCLI(t, getenv, "tenant", "create", "--slug", "acme")
			out := mustCLI(t, getenv, "scim-token", "issue", "--tenant", "acme", "--name", "Okta")
			token, id := between(out, "Bearer token:", "\n"), between(out, "(id ", ")")
			base, _, stop := startServer(t, getenv)
			defer stop()
			status := func() int {
				req, _ := http.NewRequest(http.MethodGet, base+"/scim/v2/Users?count=1", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := status(); got != http.StatusOK {
				t.Fatalf("before the revocation: %d", got)
			}
			mustCLI(t, getenv, "scim-token", "revoke", "--tenant", "acme", id)
			within := 500 * time.Millisecond // well under the second a remembered lookup lasts
			if name == "embedded" {
				within = 1500 * time.Millisecond
			}
			for deadline := time.Now().Add(within); status() != http.StatusUnauthorized; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the revoked token is still accepted %s after the CLI revoked it", within)
				}
			}
		})
	}
}

// Listening on every interface (0.0.0.0, ::, or just ":port") without a public URL, the
// URLs the server emits name localhost and the bound port, as `gatehouse config` says,
// not the unspecified address, which no client can use.
func TestDerivedPublicURLOnEveryInterface(t *testing.T) {
	getenv := envOf("GATEHOUSE_DATABASE_URL", testenv.SQLiteURL(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--listen", "0.0.0.0:0"}, getenv, io.Discard, logs) }()
	bound := regexp.MustCompile(`msg="gatehouse is listening" addr=\S*:(\d+) `)
	var port string
	for deadline := time.Now().Add(20 * time.Second); port == "" || !strings.Contains(logs.String(), "msg=endpoints"); time.Sleep(20 * time.Millisecond) {
		if m := bound.FindStringSubmatch(logs.String()); m != nil {
			port = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if want := "scim_base_url=http://localhost:" + port + "/scim/v2"; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
	out := mustCLI(t, envOf("GATEHOUSE_LISTEN", "[::]:8080"), "config")
	if !strings.Contains(out, "http://localhost:8080\n") {
		t.Errorf("config with GATEHOUSE_LISTEN=[::]:8080:\n%s", out)
	}
}

// With GATEHOUSE_AUTO_MIGRATE=false on a database whose schema is behind the binary, the
// server and the commands stop at once and say to run `gatehouse migrate up`, instead of
// failing later with "no such table".
func TestAutoMigrateOffOnAnUnmigratedDatabase(t *testing.T) {
	getenv := envOf("GATEHOUSE_DATABASE_URL", testenv.SQLiteURL(t), "GATEHOUSE_AUTO_MIGRATE", "false")
	for _, args := range [][]string{{"tenant", "list"}, {"serve", "--listen", "127.0.0.1:0"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, args, getenv, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "gatehouse migrate up") {
			t.Errorf("gatehouse %s: %v; want an error saying to run `gatehouse migrate up`", strings.Join(args, " "), err)
		}
	}
	mustCLI(t, getenv, "migrate", "up")
	mustCLI(t, getenv, "tenant", "list")
}

// migrate down undoes the last group `up` applied — after a fresh install, everything —
// so it asks for --yes and, without it, says what it would drop and changes nothing.
func TestMigrateDownAsksFirst(t *testing.T) {
	getenv := envOf("GATEHOUSE_DATABASE_URL", testenv.SQLiteURL(t))
	mustCLI(t, getenv, "migrate", "up")
	mustCLI(t, getenv, "tenant", "create", "--slug", "acme", "--name", "Acme")
	_, err := cli(t, getenv, "migrate", "down")
	if err == nil || !strings.Contains(err.Error(), "_tenancy") || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("migrate down without --yes: %v", err)
	}
	if out := mustCLI(t, getenv, "tenant", "list"); !strings.Contains(out, "acme") {
		t.Fatalf("migrate down without --yes changed the database: %s", out)
	}
	if out := mustCLI(t, getenv, "migrate", "down", "--yes"); !strings.Contains(out, "rolled back") {
		t.Fatalf("migrate down --yes: %s", out)
	}
	if out := mustCLI(t, getenv, "migrate", "status"); strings.Contains(out, "applied") {
		t.Fatalf("after migrate down --yes:\n%s", out)
	}
}
