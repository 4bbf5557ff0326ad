package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/gqlws"
)

// Report is what a run writes.
type Report struct {
	Command   string            `json:"command"`
	StartedAt time.Time         `json:"started_at"`
	Seconds   float64           `json:"duration_seconds"`
	Machine   map[string]string `json:"machine"`
	Load      []string          `json:"load"` // /proc/loadavg and other test processes at phase boundaries
	Seeding   string            `json:"seeding"`
	Metrics   []Metric          `json:"metrics"`
	Targets   []Target          `json:"targets"`
	Notes     []string          `json:"notes,omitempty"`
}

// sizes are the run's sample counts; --small shrinks them.
type sizes struct {
	phase                       time.Duration // per throughput level
	users, bigGroup             int
	lookups, pages, groupOps    int
	puts, authN, gqlN, fanout   int
	deprov1, deprov10, deprov1h int
	bulkRounds                  int // each: one Bulk of bulkUsers creates and bulkUsers single creates
}

func (b *bench) sizes() sizes {
	if b.o.small {
		return sizes{phase: 2 * time.Second, users: 10000, bigGroup: 10000, lookups: 500, pages: 30, groupOps: 50,
			puts: 10, authN: 500, gqlN: 30, fanout: 40, deprov1: 8, deprov10: 8, deprov1h: 2, bulkRounds: 2}
	}
	return sizes{phase: 8 * time.Second, users: 100000, bigGroup: 100000, lookups: 500, pages: 100, groupOps: 200,
		puts: 40, authN: 2000, gqlN: 200, fanout: 200, deprov1: 40, deprov10: 40, deprov1h: 8, bulkRounds: 4}
}

func (b *bench) loadMark(rep *Report, phase string) {
	la, _ := os.ReadFile("/proc/loadavg")
	tests := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if c, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.HasSuffix(strings.TrimSpace(string(c)), ".test") {
			tests++
		}
	}
	rep.Load = append(rep.Load, fmt.Sprintf("%s: loadavg %s; other *.test processes running: %d", phase, strings.TrimSpace(string(la)), tests))
}

func machine(ctx context.Context, b *bench) map[string]string {
	m := map[string]string{}
	if b.o.rev != "" {
		if out, err := exec.CommandContext(ctx, "git", "rev-parse", b.o.rev).Output(); err == nil {
			m["source"] = "git " + strings.TrimSpace(string(out)) + " (--rev " + b.o.rev + ")"
		}
	} else if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		m["source"] = strings.TrimSpace(string(out)) + " (the working tree as it was at run time)"
	}
	m["cores"] = fmt.Sprint(runtime.NumCPU())
	m["go"] = runtime.Version()
	m["os"] = runtime.GOOS + "/" + runtime.GOARCH
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m["memory"] = strings.Join(strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1:], " ")
	}
	var v string
	if err := b.admin.QueryRowContext(ctx, "SELECT version()").Scan(&v); err == nil {
		m["postgresql"] = v
	}
	// What the create ratio depends on: a throwaway server started by
	// scripts/test-services.sh runs with fsync=off (its data_directory is under the temp
	// dir), which flatters both sides but the baseline more.
	for _, s := range []string{"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers", "max_connections", "data_directory"} {
		if err := b.admin.QueryRowContext(ctx, "SHOW "+s).Scan(&v); err == nil {
			m["postgresql_"+s] = v
		}
	}
	if out, err := exec.CommandContext(ctx, "redis-cli", "-u", b.o.redis, "INFO", "server").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				m["redis"] = v
			}
		}
	}
	if _, ok := m["redis"]; !ok {
		m["redis"] = "unknown (redis-cli not found)"
	}
	return m
}

func (b *bench) measure(ctx context.Context) (*Report, error) {
	t0 := time.Now()
	sz := b.sizes()
	cmd := "go run ./cmd/gatehouse-bench"
	if b.o.small {
		cmd += " --small"
	}
	if b.o.million {
		cmd += " --million"
	}
	if b.o.rev != "" {
		cmd += " --rev " + b.o.rev
	}
	rep := &Report{Command: cmd, StartedAt: t0.UTC(), Machine: machine(ctx, b),
		Seeding: "SCIM-throughput users are created through POST /Users; the 10k/100k(/1M) tenant and the big group are seeded directly in PostgreSQL with set-based INSERTs writing the rows a create writes (users, user_values, audit_events + chain head; group_members), because SCIM seeding at the measured create rate would take most of the time budget; the spaces and grants of the GraphQL measurement are made through the GraphQL API"}
	add := func(m Metric) {
		rep.Metrics = append(rep.Metrics, m)
		fmt.Fprintln(b.out, "   ", m)
	}
	// statements adds the SQL statement count of one request, from its Server-Timing.
	statements := func(id, name string, t sqlTiming) {
		if t.ok {
			add(value(id, name, "statements", float64(t.queries), ""))
		}
	}
	if !b.serverTiming {
		b.notes = append(b.notes, "this build has no GATEHOUSE_SERVER_TIMING: SQL statement counts are not measured")
	}
	b.loadMark(rep, "start")

	// 9a. Startup (measured when the replicas started).
	add(latency("startup_replica_a_ms", "startup: process start → /healthz 200, replica A (migrations already applied)", []time.Duration{b.a.startup}, ""))
	add(latency("startup_replica_b_ms", "startup: process start → /healthz 200, replica B", []time.Duration{b.b.startup}, ""))

	// 1. SCIM create throughput vs the database's own limit.
	b.logf("1. SCIM create throughput vs a plain client on the same PostgreSQL (%s per level)", sz.phase)
	lim := openPG(withDB(b.o.pgURL, b.limName), 64)
	defer lim.Close()
	var limTenant string
	if err := lim.QueryRowContext(ctx, "SELECT id FROM tenants WHERE slug = 'acme'").Scan(&limTenant); err != nil {
		return nil, err
	}
	if err := ensureChain(ctx, lim, limTenant); err != nil {
		return nil, err
	}
	var seq atomic.Int64
	create := func(ctx context.Context, _ int64) error {
		n := seq.Add(1)
		_, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users",
			userJSON(fmt.Sprintf("scim%d@acme.bench", n), fmt.Sprintf("ext-scim-%d", n), fmt.Sprintf("scim%d@mail.acme.bench", n)))
		return err
	}
	// Warm both paths (connections, caches, JIT of nothing — Go — but TCP and pools).
	if _, _, err := throughput(ctx, 4, 500*time.Millisecond, create); err != nil {
		return nil, err
	}
	if _, _, err := throughput(ctx, 4, 500*time.Millisecond, func(ctx context.Context, n int64) error { return limitCreate(ctx, lim, limTenant, 1_000_000_000+n) }); err != nil {
		return nil, err
	}
	var ratios, ghs, limits []float64
	var limN atomic.Int64
	for _, conc := range []int{1, 16, 64} {
		gh, ghN, err := throughput(ctx, conc, sz.phase, create)
		if err != nil {
			return nil, fmt.Errorf("SCIM create at %d clients: %w", conc, err)
		}
		db, dbN, err := throughput(ctx, conc, sz.phase, func(ctx context.Context, _ int64) error { return limitCreate(ctx, lim, limTenant, limN.Add(1)) })
		if err != nil {
			return nil, fmt.Errorf("plain-client creates at %d: %w", conc, err)
		}
		add(value(fmt.Sprintf("scim_create_c%d_users_per_s", conc), fmt.Sprintf("SCIM POST /Users, %d concurrent clients", conc), "users/s", gh, fmt.Sprintf("(%d users)", ghN)))
		add(value(fmt.Sprintf("db_limit_c%d_users_per_s", conc), fmt.Sprintf("database limit (plain Go client, same rows), %d concurrent", conc), "users/s", db, fmt.Sprintf("(%d users, pool %d)", dbN, min(conc, 64))))
		add(value(fmt.Sprintf("scim_create_vs_limit_c%d_ratio", conc), fmt.Sprintf("SCIM create / database limit, %d concurrent", conc), "ratio", gh/db, ""))
		ratios = append(ratios, gh/db)
		ghs, limits = append(ghs, gh), append(limits, db)
	}
	best := 0.0
	for _, v := range limits {
		best = max(best, v)
	}
	add(value("db_limit_best_users_per_s", "database limit, best of 1/16/64 concurrent", "users/s", best, ""))
	for i, conc := range []int{1, 16, 64} {
		add(value(fmt.Sprintf("scim_create_vs_best_limit_c%d_ratio", conc), fmt.Sprintf("SCIM create / best database limit, %d concurrent", conc), "ratio", ghs[i]/best, ""))
	}
	drift, err := checkMirror(ctx, b.db, lim, b.tenantID, limTenant)
	if err != nil {
		return nil, err
	}
	for _, n := range drift {
		b.logf("!!! %s", n)
	}
	b.notes = append(b.notes, drift...)
	b.loadMark(rep, "after SCIM throughput")

	// 1b. Bulk against single creates.
	b.logf("1b. SCIM Bulk: %d creates per POST /Bulk vs the same users as %d single POST /Users (%d rounds)", bulkUsers, bulkUsers, sz.bulkRounds)
	bk, err := b.bulkVsSingles(ctx, sz.bulkRounds)
	if err != nil {
		return nil, err
	}
	perUser := func(ds []time.Duration) []time.Duration {
		out := make([]time.Duration, len(ds))
		for i, d := range ds {
			out[i] = d / bulkUsers
		}
		return out
	}
	add(latency("bulk_request_1000_creates_ms", fmt.Sprintf("POST /Bulk with %d user creates (one request)", bulkUsers), bk.bulk, ""))
	add(latency("singles_1000_creates_ms", fmt.Sprintf("%d single POST /Users, one after another", bulkUsers), bk.singles, "same user shapes, other userNames"))
	bulkPer, singlePer := latency("bulk_per_user_ms", "cost per user, by Bulk", perUser(bk.bulk), ""), latency("singles_per_user_ms", "cost per user, by single POST /Users", perUser(bk.singles), "")
	add(bulkPer)
	add(singlePer)
	add(value("bulk_users_per_s", "Bulk: users/s (p50 round)", "users/s", 1000 / *bulkPer.P50, ""))
	add(value("singles_users_per_s", "single POST /Users, 1 client: users/s (p50 round)", "users/s", 1000 / *singlePer.P50, ""))
	add(value("bulk_vs_singles_ratio", "Bulk users/s ÷ single-request users/s", "ratio", *singlePer.P50 / *bulkPer.P50, ""))
	if bk.bulkSQL.ok {
		add(value("bulk_sql_statements_per_user", "SQL statements per user, by Bulk", "statements", float64(bk.bulkSQL.queries)/bulkUsers, ""))
	}
	statements("sql_statements_scim_create", "SQL statements of one POST /Users", bk.singleSQL)
	b.loadMark(rep, "after Bulk")

	// 2. Lookups at 10k and 100k users (1M with --million).
	pick := func(n int) int { return rand.IntN(n) }
	lookups := func(n int) error {
		type q struct {
			id, name string
			filter   func(i int) string
		}
		qs := []q{
			{"username_eq", "userName eq", func(i int) string { return fmt.Sprintf(`userName eq "seed%d@acme.bench"`, i) }},
			{"externalid_eq", "externalId eq", func(i int) string { return fmt.Sprintf(`externalId eq "ext-seed-%d"`, i) }},
			{"email_work_eq", `emails[type eq "work"].value eq`, func(i int) string { return fmt.Sprintf(`emails[type eq "work"].value eq "seed%d@mail.acme.bench"`, i) }},
		}
		for _, q := range qs {
			var sql sqlTiming
			ds, err := sample(sz.lookups, 60*time.Second, func(int) error {
				i := pick(n)
				data, t, err := b.scimSQL(ctx, b.a, http.StatusOK, http.MethodGet, "/Users?filter="+url.QueryEscape(q.filter(i)), nil)
				if err == nil && !strings.Contains(string(data), `"totalResults":1`) {
					err = fmt.Errorf("lookup %s of user %d: %.200s", q.name, i, data)
				}
				sql = t
				return err
			})
			if err != nil {
				return err
			}
			add(latency(fmt.Sprintf("lookup_%s_%s_ms", q.id, strings.ToLower(human(n))), fmt.Sprintf("GET /Users?filter=%s at %s users", q.name, human(n)), ds, ""))
			if q.id == "username_eq" && n == 10000 {
				statements("sql_statements_scim_lookup", "SQL statements of one GET /Users?filter=userName eq", sql)
			}
		}
		return nil
	}
	b.logf("2. seeding %s users directly in PostgreSQL", human(10000))
	ts := time.Now()
	if err := b.seedUsers(ctx, 0, 10000); err != nil {
		return nil, err
	}
	add(latency("seed_users_10k_ms", "seeding 10k users directly in PostgreSQL (harness, not the server)", []time.Duration{time.Since(ts)}, ""))
	if err := lookups(10000); err != nil {
		return nil, err
	}
	if sz.users > 10000 {
		b.logf("   seeding up to %s users", human(sz.users))
		ts = time.Now()
		if err := b.seedUsers(ctx, 10000, sz.users); err != nil {
			return nil, err
		}
		add(latency("seed_users_100k_ms", "seeding 10k→100k users directly in PostgreSQL (harness)", []time.Duration{time.Since(ts)}, ""))
		if err := lookups(sz.users); err != nil {
			return nil, err
		}
	}
	b.loadMark(rep, "after lookups")

	// 4. Paging.
	b.logf("4. paging at %s users", human(sz.users))
	deep := sz.users*9/10 + 1
	var spc map[string]any
	if data, err := b.scimOK(ctx, b.a, http.StatusOK, http.MethodGet, "/ServiceProviderConfig", nil); err == nil {
		json.Unmarshal(data, &spc)
	}
	cursor := false
	if p, ok := spc["pagination"].(map[string]any); ok {
		cursor, _ = p["cursor"].(bool)
	}
	for _, pg := range []struct {
		id    string
		start int
	}{{"page_offset_first_ms", 1}, {"page_offset_deep_ms", deep}} {
		ds, err := sample(sz.pages, 60*time.Second, func(int) error {
			_, err := b.scimOK(ctx, b.a, http.StatusOK, http.MethodGet, fmt.Sprintf("/Users?startIndex=%d&count=100", pg.start), nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		add(latency(pg.id, fmt.Sprintf("GET /Users?startIndex=%d&count=100 at %s users", pg.start, human(sz.users)), ds, ""))
	}
	if cursor {
		shallow, deepC, walked, err := b.cursorPaging(ctx, sz.users, sz.pages)
		if err != nil {
			return nil, err
		}
		add(latency("page_cursor_first_ms", fmt.Sprintf("GET /Users?cursor=…&count=100, first page (cursor=\"\") at %s users", human(sz.users)), shallow, ""))
		add(latency("page_cursor_deep_ms", fmt.Sprintf("GET /Users?cursor=…&count=100, the page at %s at %s users", human(deep-1), human(sz.users)), deepC, "same cursor repeated"))
		add(latency("page_cursor_walk_ms", fmt.Sprintf("cursor walk over all %s users, 100 per page (every page)", human(sz.users)), walked, ""))
	} else {
		add(Metric{ID: "page_cursor", Name: "cursor paging", Note: "not measured: /ServiceProviderConfig has no pagination.cursor=true on this server build"})
	}

	// 3. Group membership.
	b.logf("3. group of %s members: PATCH add/remove one member; PUT of a 1,000-member group", human(sz.bigGroup))
	gid, err := b.seedGroup(ctx, "Everyone", sz.bigGroup)
	if err != nil {
		return nil, err
	}
	outsider := ""
	if data, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users", userJSON("outsider@acme.bench", "ext-outsider", "outsider@mail.acme.bench")); err != nil {
		return nil, err
	} else {
		outsider = idOf(data)
	}
	addOp := []byte(fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":%q}]}]}`, outsider))
	removeOp := []byte(fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}`, outsider))
	var adds, removes []time.Duration
	var addSQL sqlTiming
	for i := 0; i < sz.groupOps; i++ {
		for _, op := range []struct {
			body []byte
			ds   *[]time.Duration
		}{{addOp, &adds}, {removeOp, &removes}} {
			t := time.Now()
			_, sql, err := b.scimSQL(ctx, b.a, http.StatusNoContent, http.MethodPatch, "/Groups/"+gid, op.body)
			if err != nil {
				return nil, err
			}
			*op.ds = append(*op.ds, time.Since(t))
			if op.ds == &adds {
				addSQL = sql
			}
		}
		if len(adds) > 20 && sum(adds)+sum(removes) > 60*time.Second {
			break
		}
	}
	add(latency("group_patch_add_member_ms", fmt.Sprintf("PATCH add 1 member, group of %s", human(sz.bigGroup)), adds, ""))
	add(latency("group_patch_remove_member_ms", fmt.Sprintf("PATCH remove 1 member, group of %s", human(sz.bigGroup)), removes, ""))
	statements("sql_statements_group_patch_add", "SQL statements of one PATCH adding a member", addSQL)
	members := func(from int) []map[string]string {
		ms := make([]map[string]string, 1000)
		for i := range ms {
			ms[i] = map[string]string{"value": seedID(from + i)}
		}
		return ms
	}
	groupBody := func(from int) []byte {
		data, _ := json.Marshal(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Thousand", "members": members(from)})
		return data
	}
	data, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Groups", groupBody(0))
	if err != nil {
		return nil, err
	}
	thousand := idOf(data)
	ds, err := sample(sz.puts, 60*time.Second, func(i int) error {
		_, err := b.scimOK(ctx, b.a, http.StatusOK, http.MethodPut, "/Groups/"+thousand, groupBody(500*((i+1)%2)))
		return err
	})
	if err != nil {
		return nil, err
	}
	add(latency("group_put_1000_members_ms", "PUT of a 1,000-member group (500 members swapped each time)", ds, "response includes the 1,000 members"))
	b.loadMark(rep, "after groups")

	// Footprint after the 100k tenant is in place and has been read.
	add(value("rss_replica_a_mib", fmt.Sprintf("RSS replica A (served everything so far) at %s users", human(sz.users)), "MiB", b.a.rssKB()/1024, ""))
	add(value("rss_replica_b_mib", "RSS replica B (mostly idle so far)", "MiB", b.b.rssKB()/1024, ""))

	// A signed-in owner for GraphQL.
	if _, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users", userJSON("owner@acme.bench", "ext-owner", "owner@mail.acme.bench")); err != nil {
		return nil, err
	}
	if _, err := b.cli(ctx, nil, "role", "set", "--tenant", "acme", "--user", "owner@acme.bench", "--role", "owner"); err != nil {
		return nil, err
	}
	owner, err := b.signIn(ctx, b.a, "owner@acme.bench")
	if err != nil {
		return nil, err
	}

	// 5. Auth overhead on Redis (A) and on the in-process cache (C, started for this
	// and stopped after it: its relay and bus are its own, and it must not take part in
	// the cross-replica measurements), interleaved so that all see the same machine.
	b.logf("5. session check cost: /healthz vs an authenticated trivial GraphQL query, on Redis (A) and the in-process cache (C)")
	c, err := b.startReplica(ctx, "C", "GATEHOUSE_REDIS_URL=")
	if err != nil {
		return nil, err
	}
	add(latency("startup_replica_c_ms", "startup: process start → /healthz 200, replica C (in-process cache)", []time.Duration{c.startup}, ""))
	ownerC, err := b.signIn(ctx, c, "owner@acme.bench")
	if err != nil {
		return nil, err
	}
	type authSamples struct{ hz, vq, tn, ta []time.Duration }
	var onA, onC authSamples
	var anon []time.Duration
	var typenameSQL, typenameSQLC sqlTiming
	timed := func(ds *[]time.Duration, fn func() error) error {
		t := time.Now()
		if err := fn(); err != nil {
			return err
		}
		*ds = append(*ds, time.Since(t))
		return nil
	}
	round := func(r *replica, token string, s *authSamples, sql *sqlTiming) error {
		if err := timed(&s.ta, func() (err error) { _, *sql, err = b.gqlSQL(ctx, r, token, `{ __typename }`); return err }); err != nil {
			return err
		}
		if err := timed(&s.tn, func() error {
			if st, _, data, err := b.gql(ctx, r, "", `{ __typename }`); err != nil || st != http.StatusOK {
				return fmt.Errorf("anonymous { __typename } on %s: %d %s %v", r.name, st, data, err)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := timed(&s.hz, func() error {
			if st, _, err := b.do(ctx, http.MethodGet, r.base+"/healthz", nil, nil); err != nil || st != http.StatusOK {
				return fmt.Errorf("healthz on %s: %d %v", r.name, st, err)
			}
			return nil
		}); err != nil {
			return err
		}
		return timed(&s.vq, func() error { _, err := b.gqlOK(ctx, r, token, `{ viewer { user { id } } }`); return err })
	}
	for range sz.authN {
		if err := round(b.a, owner, &onA, &typenameSQL); err != nil {
			return nil, err
		}
		if err := timed(&anon, func() error { _, _, _, err := b.gql(ctx, b.a, "", `{ viewer { user { id } } }`); return err }); err != nil {
			return nil, err
		}
		if err := round(c, ownerC, &onC, &typenameSQLC); err != nil {
			return nil, err
		}
	}
	add(value("rss_replica_c_mib", "RSS replica C (in-process cache) after the session-check loop", "MiB", c.rssKB()/1024, ""))
	b.stop(c)
	var sessionSQL sqlTiming
	sq, err := sample(sz.authN, 60*time.Second, func(int) error {
		st, h, _, err := b.send(ctx, http.MethodGet, b.a.base+"/auth/session", map[string]string{"Authorization": "Bearer " + owner}, nil)
		if err == nil && st != http.StatusOK {
			err = fmt.Errorf("GET /auth/session: %d", st)
		}
		sessionSQL = parseServerTiming(h.Get("Server-Timing"))
		return err
	})
	if err != nil {
		return nil, err
	}
	vp, err := sample(sz.authN/4, 60*time.Second, func(int) error {
		_, err := b.gqlOK(ctx, b.a, owner, `{ viewer { permissions } }`)
		return err
	})
	if err != nil {
		return nil, err
	}
	add(latency("graphql_viewer_permissions_ms", "POST /graphql { viewer { permissions } } with session Bearer (viewer, no dataloader)", vp, ""))
	add(latency("auth_session_ms", "GET /auth/session with session Bearer (session check + user and tenant reads)", sq, "measured after the interleaved loop"))
	statements("sql_statements_auth_session", "SQL statements of one GET /auth/session", sessionSQL)
	add(latency("graphql_viewer_user_anon_ms", "POST /graphql { viewer { user { id } } }, no token (refused before any resolver)", anon, ""))
	for _, side := range []struct {
		suffix, label string
		s             authSamples
		sql           sqlTiming
	}{{"", "Redis, replica A", onA, typenameSQL}, {"_embedded", "in-process cache, replica C", onC, typenameSQLC}} {
		hz := latency("healthz"+side.suffix+"_ms", "GET /healthz (no auth), "+side.label, side.s.hz, "")
		vq := latency("graphql_viewer_user"+side.suffix+"_ms", "POST /graphql { viewer { user { id } } } with session Bearer, "+side.label, side.s.vq, "")
		ta := latency("graphql_typename_auth"+side.suffix+"_ms", "POST /graphql { __typename } with session Bearer, "+side.label, side.s.ta, "authenticated, no resolver")
		tn := latency("graphql_typename_anon"+side.suffix+"_ms", "POST /graphql { __typename } without a token, "+side.label, side.s.tn, "anonymous, no resolver")
		for _, m := range []Metric{hz, vq, ta, tn} {
			add(m)
		}
		add(value("session_check"+side.suffix+"_p50_ms", "session check cost ({ __typename } with − without token, p50), "+side.label, "ms", *ta.P50-*tn.P50, "the same request with and without the session check"))
		add(value("session_check"+side.suffix+"_p99_ms", "session check cost at p99, "+side.label, "ms", *ta.P99-*tn.P99, ""))
		add(value("graphql_auth_minus_healthz"+side.suffix+"_p50_ms", "authenticated GraphQL p50 − /healthz p50, "+side.label, "ms", *vq.P50-*hz.P50, "the issue's definition: session check + GraphQL"))
		statements("sql_statements_graphql_typename_auth"+side.suffix, "SQL statements of an authenticated { __typename }, "+side.label, side.sql)
	}
	if a, e := find(rep, "session_check_p50_ms"), find(rep, "session_check_embedded_p50_ms"); a != nil && e != nil {
		add(value("session_check_redis_minus_embedded_p50_ms", "session check cost, Redis − in-process cache (p50)", "ms", *a.Value-*e.Value, "what the Redis round trip adds"))
	}

	// 6. GraphQL users(first: 100) with their groups' spaces and their effective spaces.
	b.logf("6. GraphQL users(first: 100) { groups { spaceGrants { space } } effectiveSpaces }: %d spaces", benchSpaces)
	shape, err := b.seedSpaces(ctx, owner)
	if err != nil {
		return nil, err
	}
	var stmts []int
	var sqlTime []time.Duration
	ds, err = sample(sz.gqlN, 60*time.Second, func(int) error {
		_, t, err := b.gqlSQL(ctx, b.a, owner, usersQuery)
		if t.ok {
			stmts = append(stmts, t.queries)
			sqlTime = append(sqlTime, t.dur)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	add(latency("graphql_users100_spaces_ms", "GraphQL users(first: 100) { groups { spaceGrants { space } } effectiveSpaces { space } }", ds, shape))
	if len(stmts) > 0 {
		slices.Sort(stmts)
		add(value("graphql_users100_spaces_sql_statements", "SQL statements of that query (p50)", "statements", float64(stmts[(len(stmts)-1)/2]),
			fmt.Sprintf("min %d, max %d over %d requests", stmts[0], stmts[len(stmts)-1], len(stmts))))
		add(latency("graphql_users100_spaces_sql_ms", "summed time of those statements (Server-Timing dur)", sqlTime, ""))
	}

	// 8. Audit fan-out, before deprovisioning so its own events do not interleave.
	b.logf("8. audit fan-out: SCIM create on A → graphql-transport-ws subscriber on B")
	fan, err := b.fanout(ctx, owner, sz.fanout)
	if err != nil {
		return nil, err
	}
	add(latency("audit_fanout_ms", "audit fan-out: occurredAt on A → received by subscriber on B", fan, "the relay wakes on the commit (PostgreSQL NOTIFY); a 1 s poll is the fallback"))

	// 7. Deprovisioning across replicas.
	b.logf("7. deprovisioning: PATCH active=false on A until B refuses the token")
	for _, dc := range []struct{ sessions, rounds int }{{1, sz.deprov1}, {10, sz.deprov10}, {100, sz.deprov1h}} {
		lat, patch, signin, err := b.deprovision(ctx, dc.sessions, dc.rounds)
		if err != nil {
			return nil, err
		}
		add(latency(fmt.Sprintf("deprovision_%d_sessions_ms", dc.sessions), fmt.Sprintf("deprovision, %d session(s): PATCH start on A → 401 on B", dc.sessions), lat, ""))
		add(latency(fmt.Sprintf("deprovision_%d_sessions_patch_ms", dc.sessions), fmt.Sprintf("deprovision, %d session(s): the PATCH request itself", dc.sessions), patch, ""))
		if dc.sessions == 10 {
			add(latency("saml_signin_ms", "SAML IdP-initiated sign-in (ACS POST, signed response+assertion)", signin, "client signing excluded"))
		}
	}
	b.loadMark(rep, "after deprovisioning")

	// 2b. 1M users.
	if b.o.million {
		b.logf("2b. seeding up to 1,000,000 users")
		ts = time.Now()
		if err := b.seedUsers(ctx, sz.users, 1_000_000); err != nil {
			return nil, err
		}
		add(latency("seed_users_1m_ms", "seeding 100k→1M users directly in PostgreSQL (harness)", []time.Duration{time.Since(ts)}, ""))
		if err := lookups(1_000_000); err != nil {
			return nil, err
		}
		add(value("rss_replica_a_1m_mib", "RSS replica A at 1M users", "MiB", b.a.rssKB()/1024, ""))
		b.loadMark(rep, "after 1M lookups")
	}

	rep.Notes = append(rep.Notes, b.notes...)
	rep.Seconds = time.Since(t0).Seconds()
	rep.Targets = targets(rep, b.o, ratios, ghs, limits)
	return rep, nil
}

// cursorPaging walks the whole tenant by cursor (RFC 9865), then repeats the first
// page and the page at 90% of the tenant.
func (b *bench) cursorPaging(ctx context.Context, users, n int) (shallow, deep, walked []time.Duration, err error) {
	type page struct {
		Next      string `json:"nextCursor"`
		Resources []any  `json:"Resources"`
	}
	get := func(cur string) (page, error) {
		var p page
		data, err := b.scimOK(ctx, b.a, http.StatusOK, http.MethodGet, "/Users?count=100&cursor="+url.QueryEscape(cur), nil)
		if err == nil {
			err = json.Unmarshal(data, &p)
		}
		return p, err
	}
	cur, seen, deepCursor := "", 0, ""
	for {
		t := time.Now()
		p, err := get(cur)
		if err != nil {
			return nil, nil, nil, err
		}
		walked = append(walked, time.Since(t))
		seen += len(p.Resources)
		if deepCursor == "" && seen >= users*9/10 {
			deepCursor = p.Next
		}
		if p.Next == "" || len(p.Resources) == 0 {
			break
		}
		cur = p.Next
	}
	if deepCursor == "" {
		return nil, nil, nil, fmt.Errorf("cursor walk saw %d users, never reached 90%% of %d", seen, users)
	}
	if shallow, err = sample(n, time.Minute, func(int) error { _, err := get(""); return err }); err != nil {
		return nil, nil, nil, err
	}
	deep, err = sample(n, time.Minute, func(int) error { _, err := get(deepCursor); return err })
	return shallow, deep, walked, err
}

func sum(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

func human(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// fanout subscribes on B and creates users on A one at a time (25 ms apart, so events
// are not batched by the relay's poll), timing each event's occurredAt to its arrival.
func (b *bench) fanout(ctx context.Context, session string, n int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := gqlws.Dial(ctx, b.b.base+"/graphql", "", map[string]any{"authorization": "Bearer " + session})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	events, err := conn.Subscribe(ctx, `subscription { auditEvents(filter: {actions: ["user.created"]}) { id occurredAt } }`, nil)
	if err != nil {
		return nil, err
	}
	time.Sleep(300 * time.Millisecond)
	var mu sync.Mutex
	var ds []time.Duration
	got := make(chan struct{}, n)
	go func() {
		for m := range events {
			at := time.Now()
			var nx gqlws.Next
			if m.Type != "next" || json.Unmarshal(m.Payload, &nx) != nil {
				continue
			}
			ev, _ := nx.Data["auditEvents"].(map[string]any)
			occ, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["occurredAt"]))
			if err != nil {
				continue
			}
			mu.Lock()
			ds = append(ds, at.Sub(occ))
			mu.Unlock()
			got <- struct{}{}
		}
	}()
	for i := range n {
		if _, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users",
			userJSON(fmt.Sprintf("fan%d@acme.bench", i), fmt.Sprintf("ext-fan-%d", i), fmt.Sprintf("fan%d@mail.acme.bench", i))); err != nil {
			return nil, err
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("audit event %d did not reach the subscriber on B within 10s", i)
		}
		time.Sleep(25 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	return ds, nil
}

var deprovRound atomic.Int64

// deprovision runs rounds of: create a user on A, sign them in `sessions` times
// (alternating replicas), then PATCH active=false on A while polling B with the newest
// session's token; the time is PATCH start → B's first 401. Afterwards every token
// must be refused on B (checked, reported if not).
func (b *bench) deprovision(ctx context.Context, sessions, rounds int) (lat, patch, signin []time.Duration, err error) {
	body := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
	for range rounds {
		r := deprovRound.Add(1)
		name := fmt.Sprintf("leaver%d@acme.bench", r)
		data, err := b.scimOK(ctx, b.a, http.StatusCreated, http.MethodPost, "/Users", userJSON(name, fmt.Sprintf("ext-leaver-%d", r), fmt.Sprintf("leaver%d@mail.acme.bench", r)))
		if err != nil {
			return nil, nil, nil, err
		}
		id := idOf(data)
		var toks []string
		for i := range sessions {
			rep := b.a
			if i%2 == 1 {
				rep = b.b
			}
			t := time.Now()
			tok, err := b.signIn(ctx, rep, name)
			if err != nil {
				return nil, nil, nil, err
			}
			signin = append(signin, time.Since(t))
			toks = append(toks, tok)
		}
		probe := toks[len(toks)-1]
		if st, err := b.sessionStatus(ctx, b.b, probe); err != nil || st != http.StatusOK {
			return nil, nil, nil, fmt.Errorf("a fresh session is refused on B: %d %v", st, err)
		}
		done := make(chan error, 1)
		t0 := time.Now()
		go func() {
			_, err := b.scimOK(ctx, b.a, http.StatusOK, http.MethodPatch, "/Users/"+id, body)
			patch = append(patch, time.Since(t0))
			done <- err
		}()
		for {
			st, err := b.sessionStatus(ctx, b.b, probe)
			if err != nil {
				return nil, nil, nil, err
			}
			if st == http.StatusUnauthorized {
				lat = append(lat, time.Since(t0))
				break
			}
			if time.Since(t0) > 10*time.Second {
				return nil, nil, nil, fmt.Errorf("B still accepts the token 10s after the PATCH started")
			}
		}
		if err := <-done; err != nil {
			return nil, nil, nil, err
		}
		for _, tok := range toks {
			if st, _ := b.sessionStatus(ctx, b.b, tok); st != http.StatusUnauthorized {
				b.notes = append(b.notes, fmt.Sprintf("deprovisioning with %d sessions: a token was still accepted on B (%d) after the PATCH returned", sessions, st))
			}
		}
	}
	return lat, patch, signin, nil
}

func find(rep *Report, id string) *Metric {
	for i := range rep.Metrics {
		if rep.Metrics[i].ID == id {
			return &rep.Metrics[i]
		}
	}
	return nil
}

func targets(rep *Report, o options, ratios, ghs, limits []float64) []Target {
	var ts []Target
	yes := func(b bool) *bool { return &b }
	worst := ratios[0]
	for _, r := range ratios {
		worst = min(worst, r)
	}
	rs := make([]string, len(ratios))
	for i, r := range ratios {
		rs[i] = fmt.Sprintf("%.0f%%", 100*r)
	}
	ts = append(ts, Target{ID: "scim_create_vs_limit", Name: "SCIM create throughput", Goal: "≥ 50% of the database's own limit", Value: worst,
		Measured: "same concurrency, 1/16/64 clients: " + strings.Join(rs, " / "), Met: yes(worst >= 0.5)})
	best := 0.0
	for _, v := range limits {
		best = max(best, v)
	}
	peak := 0.0
	for _, v := range ghs {
		peak = max(peak, v)
	}
	ts = append(ts, Target{ID: "scim_create_peak_vs_best_limit", Name: "SCIM create throughput, peak vs best limit", Goal: "≥ 50% of the database's best rate at any concurrency", Value: peak / best,
		Measured: fmt.Sprintf("%.0f users/s vs %.0f users/s = %.0f%%", peak, best, 100*peak/best), Met: yes(peak/best >= 0.5)})
	size := "100k"
	if o.small {
		size = "10k"
	}
	if m := find(rep, "lookup_username_eq_"+size+"_ms"); m != nil && m.P99 != nil {
		ts = append(ts, Target{ID: "lookup_username_eq_p99_" + size, Name: "userName eq lookup p99 at " + size, Goal: "< 5 ms", Value: *m.P99, Measured: fmt.Sprintf("%.2f ms", *m.P99), Met: yes(*m.P99 < 5)})
	}
	if m := find(rep, "lookup_username_eq_1m_ms"); m != nil && m.P99 != nil {
		ts = append(ts, Target{ID: "lookup_username_eq_p99_1m", Name: "userName eq lookup p99 at 1M", Goal: "no worse than at 100k (and < 5 ms)", Value: *m.P99, Measured: fmt.Sprintf("%.2f ms", *m.P99), Met: yes(*m.P99 < 5)})
	} else {
		ts = append(ts, Target{ID: "lookup_username_eq_p99_1m", Name: "userName eq lookup p99 at 1M", Goal: "no worse than at 100k", Measured: "not measured in this run (needs --million)"})
	}
	for _, op := range []string{"add", "remove"} {
		if m := find(rep, "group_patch_"+op+"_member_ms"); m != nil && m.P99 != nil {
			ts = append(ts, Target{ID: "group_patch_" + op + "_p99", Name: "single-member PATCH " + op + " on the big group (" + size + ")", Goal: "p99 < 10 ms (100k members)", Value: *m.P99, Measured: fmt.Sprintf("%.2f ms", *m.P99), Met: yes(*m.P99 < 10)})
		}
	}
	for _, side := range []struct{ suffix, label string }{{"", ""}, {"_embedded", ", in-process cache"}} {
		if m := find(rep, "session_check"+side.suffix+"_p50_ms"); m != nil && m.Value != nil {
			ts = append(ts, Target{ID: "session_check" + side.suffix, Name: "session check cost" + side.label, Goal: "< 0.3 ms per request", Value: *m.Value, Measured: fmt.Sprintf("%.3f ms (p50 of { __typename } with − without a session token)", *m.Value), Met: yes(*m.Value < 0.3)})
		}
	}
	if m := find(rep, "deprovision_10_sessions_ms"); m != nil && m.P99 != nil {
		ts = append(ts, Target{ID: "deprovision_10_sessions_p99", Name: "deprovisioning with 10 sessions", Goal: "p99 < 25 ms", Value: *m.P99, Measured: fmt.Sprintf("%.2f ms (n=%d)", *m.P99, m.N), Met: yes(*m.P99 < 25)})
	}
	if m := find(rep, "audit_fanout_ms"); m != nil && m.P99 != nil {
		ts = append(ts, Target{ID: "audit_fanout_p99", Name: "audit fan-out", Goal: "p99 < 50 ms", Value: *m.P99, Measured: fmt.Sprintf("%.2f ms (n=%d)", *m.P99, m.N), Met: yes(*m.P99 < 50)})
	}
	return ts
}

func (rep *Report) print(w io.Writer) {
	fmt.Fprintf(w, "\nGatehouse benchmarks — %s — %s, %s cores, %s\n", rep.Command, rep.Machine["cpu"], rep.Machine["cores"], rep.Machine["go"])
	fmt.Fprintf(w, "PostgreSQL: %s\nRedis: %s\n\n", rep.Machine["postgresql"], rep.Machine["redis"])
	for _, m := range rep.Metrics {
		fmt.Fprintln(w, m)
	}
	fmt.Fprintln(w, "\nTargets:")
	for _, t := range rep.Targets {
		state := "not measured"
		if t.Met != nil {
			state = map[bool]string{true: "MET", false: "MISSED"}[*t.Met]
		}
		fmt.Fprintf(w, "  %-12s %-48s goal %-34s measured %s\n", state, t.Name, t.Goal, t.Measured)
	}
	fmt.Fprintln(w, "\nLoad:")
	for _, l := range rep.Load {
		fmt.Fprintln(w, "  "+l)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "\ntook %.0f s\n", rep.Seconds)
}
