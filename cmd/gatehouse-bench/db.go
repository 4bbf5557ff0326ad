package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/uptrace/bun"
)

// newID is a lower-case ULID, as the server makes them.
func newID(t time.Time) string {
	return strings.ToLower(ulid.MustNew(ulid.Timestamp(t), rand.Reader).String())
}

// limitCreate is the database's own limit for one SCIM create: the statements of the
// server's create transaction, with the same rows, from a plain Go client with no HTTP,
// JSON schema, auth or rate limit. It mirrors identity.Service.CreateUser and
// audit.Log.Record (appendEvent) as they are at this commit, on PostgreSQL:
//
//	BEGIN
//	INSERT users                      every column Bun writes (nullzero ones NULL)
//	INSERT user_values                one row per email (checkExt/storeExt run no statement without extension values)
//	SELECT audit_chains … FOR UPDATE  the tenant's chain head, held to the commit
//	WITH INSERT audit_events          one statement: the event (changes as canonical
//	     INSERT audit_outbox          JSON, hash-chained), its outbox row for the relay,
//	     UPDATE audit_chains          the new head, and the relays' wake-up at commit
//	SELECT pg_notify(…)
//	COMMIT
//
// What the server does besides (token and tenant reads, the rate limiter, the relay that
// later publishes the event and deletes its outbox row) is not in it: that is the
// server's cost. checkMirror compares the rows of both after the throughput phase.
func limitCreate(ctx context.Context, db *bun.DB, tenantID string, n int64) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	uid := newID(now)
	name := fmt.Sprintf("limit%d@acme.bench", n)
	ext := fmt.Sprintf("ext-limit-%d", n)
	email := fmt.Sprintf("limit%d@mail.acme.bench", n)
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, user_name, user_name_key, external_id, display_name,
			name_formatted, family_name, given_name, middle_name, honorific_prefix, honorific_suffix, nick_name, profile_url,
			title, user_type, preferred_language, locale, timezone, active, employee_number, cost_center, organization,
			division, department, manager_id, source, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'Bench User', NULL, 'User', 'Bench', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
			NULL, true, NULL, NULL, NULL, NULL, NULL, NULL, 'scim', 1, ?, ?)`,
			uid, tenantID, name, strings.ToLower(name), ext, now, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_values (user_id, tenant_id, attr, position, value, value_key, display, type,
			is_primary, formatted, street_address, locality, region, postal_code, country)
			VALUES (?, ?, 'emails', 0, ?, ?, NULL, 'work', true, NULL, NULL, NULL, NULL, NULL, NULL)`,
			uid, tenantID, email, strings.ToLower(email)); err != nil {
			return err
		}
		var lastSeq int64
		var lastHash string
		if err := tx.QueryRowContext(ctx, `SELECT last_seq, last_hash FROM audit_chains WHERE tenant_id = ? FOR UPDATE`, tenantID).
			Scan(&lastSeq, &lastHash); err != nil {
			return err
		}
		// identity's diff(&User{}, &u) of this user, canonical (keys sorted, no space).
		changes, _ := json.Marshal(map[string]any{
			"active":          map[string]any{"before": false, "after": true},
			"displayName":     map[string]any{"before": "", "after": "Bench User"},
			"externalId":      map[string]any{"before": "", "after": ext},
			"name.familyName": map[string]any{"before": "", "after": "User"},
			"name.givenName":  map[string]any{"before": "", "after": "Bench"},
			"userName":        map[string]any{"before": "", "after": name},
			"values":          map[string]any{"before": nil, "after": map[string][]string{"emails": {"work: " + email}}},
		})
		// The time is read after the head is taken, as appendEvent does.
		at := time.Now().UTC().Truncate(time.Microsecond)
		ev := auditEvent{id: newID(at), tenantID: tenantID, seq: lastSeq + 1, at: at, actorType: "scim_token", actorID: limitActorID,
			actorName: "bench IdP", action: "user.created", targetType: "user", targetID: uid, targetDisplay: name,
			changes: string(changes), requestID: limitRequestID, remoteIP: "127.0.0.1", userAgent: "Go-http-client/1.1"}
		hash := ev.hash(lastHash)
		_, err := tx.ExecContext(ctx, `WITH events AS (INSERT INTO audit_events (id, tenant_id, seq, prev_hash, hash, occurred_at,
			actor_type, actor_id, actor_name, action, target_type, target_id, target_display, changes, request_id, remote_ip, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)),
			outbox AS (INSERT INTO audit_outbox (event_id, tenant_id, seq, created_at) VALUES (?, ?, ?, ?)),
			head AS (UPDATE audit_chains SET last_seq = ?, last_hash = ? WHERE tenant_id = ?)
			SELECT pg_notify('gatehouse_audit_outbox', '')`,
			ev.id, tenantID, ev.seq, lastHash, hash, at, ev.actorType, ev.actorID, ev.actorName, ev.action, ev.targetType,
			ev.targetID, ev.targetDisplay, ev.changes, ev.requestID, ev.remoteIP, ev.userAgent,
			ev.id, tenantID, ev.seq, at,
			ev.seq, hash, tenantID)
		return err
	})
}

// limitActorID and limitRequestID have the shape of what the server stores (a token's
// ULID, a 24-hex-digit request id).
const (
	limitActorID   = "01kbench0000000000000token"
	limitRequestID = "0123456789abcdef01234567"
)

// auditEvent holds the fields of an audit event that its hash covers.
type auditEvent struct {
	id, tenantID                            string
	seq                                     int64
	at                                      time.Time
	actorType, actorID, actorName, action   string
	targetType, targetID, targetDisplay     string
	changes, requestID, remoteIP, userAgent string
}

// hash is audit's chain hash (see the package documentation of modules/audit): SHA-256
// over the previous hash, "\n" and the canonical form, each field written as its length,
// ":", the bytes and "\n".
func (e auditEvent) hash(prev string) string {
	var b strings.Builder
	b.WriteString("gatehouse-audit-v1\n")
	for _, f := range []string{e.tenantID, strconv.FormatInt(e.seq, 10), e.id, e.at.Format("2006-01-02T15:04:05.000000Z07:00"),
		e.actorType, e.actorID, e.actorName, e.action, e.targetType, e.targetID, e.targetDisplay, e.changes,
		e.requestID, e.remoteIP, e.userAgent} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(prev + "\n" + b.String()))
	return hex.EncodeToString(sum[:])
}

// checkMirror compares the newest SCIM-created user of the server's database with the
// newest limitCreate one: which columns of users, user_values and audit_events are set,
// and which attributes the audit event's changes name. A difference means limitCreate
// no longer writes what a create writes; it is returned as a note for the report.
func checkMirror(ctx context.Context, server, limit *bun.DB, serverTenant, limitTenant string) ([]string, error) {
	type probe struct{ table, where string }
	probes := []probe{
		{"users", "tenant_id = ? AND source = 'scim' ORDER BY id DESC LIMIT 1"},
		{"user_values", "user_id = (SELECT id FROM users WHERE tenant_id = ? AND source = 'scim' ORDER BY id DESC LIMIT 1)"},
		{"audit_events", "tenant_id = ? AND action = 'user.created' ORDER BY seq DESC LIMIT 1"},
	}
	shape := func(db *bun.DB, p probe, tenant string) (string, error) {
		var cols, changes string
		err := db.QueryRowContext(ctx, `SELECT coalesce(string_agg(k, ',' ORDER BY k), ''), coalesce(max(ch), '') FROM (
			SELECT e.key AS k, CASE WHEN e.key = 'changes' THEN (SELECT string_agg(c, ',' ORDER BY c) FROM jsonb_object_keys(e.value) AS c) END AS ch
			FROM (SELECT to_jsonb(t) AS j FROM `+p.table+` t WHERE `+p.where+`) r, jsonb_each(r.j) e
			WHERE e.value <> 'null'::jsonb) s`, tenant).Scan(&cols, &changes)
		if changes != "" {
			cols += "; changes: " + changes
		}
		return cols, err
	}
	var notes []string
	for _, p := range probes {
		sv, err := shape(server, p, serverTenant)
		if err != nil {
			return nil, fmt.Errorf("reading a %s row the server wrote: %w", p.table, err)
		}
		lv, err := shape(limit, p, limitTenant)
		if err != nil {
			return nil, fmt.Errorf("reading a %s row limitCreate wrote: %w", p.table, err)
		}
		if sv == "" || lv == "" {
			return nil, fmt.Errorf("comparing the baseline with the server: no %s row to compare (server %q, limitCreate %q)", p.table, sv, lv)
		}
		if sv != lv {
			notes = append(notes, fmt.Sprintf("the database-limit baseline no longer writes what a SCIM create writes: %s has [%s] from the server, [%s] from limitCreate", p.table, sv, lv))
		}
	}
	return notes, nil
}

// ensureChain creates the tenant's chain head in the limit database (the server does it
// on a tenant's first event).
func ensureChain(ctx context.Context, db *bun.DB, tenantID string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO audit_chains (tenant_id, last_seq, last_hash) VALUES (?, 0, '') ON CONFLICT (tenant_id) DO NOTHING`, tenantID)
	return err
}

// throughput runs work from conc goroutines for d and returns completed calls per second.
func throughput(ctx context.Context, conc int, d time.Duration, work func(ctx context.Context, n int64) error) (float64, int64, error) {
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := work(ctx, next.Add(1)); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	return float64(done.Load()) / el.Seconds(), done.Load(), firstErr
}

// seedUsers adds users [from, to) to the tenant directly in the database, as a create
// writes them (users, user_values, audit_events with the chain head moved on) but in
// batches of set-based INSERTs. Their ids sort before every ULID the server makes; their
// audit events carry the hash "seed" (so `audit verify` would stop there) and no outbox
// row (nothing to relay).
func (b *bench) seedUsers(ctx context.Context, from, to int) error {
	const batch = 25000
	for lo := from; lo < to; lo += batch {
		hi := min(lo+batch, to) - 1
		err := b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, user_name, user_name_key, external_id, display_name,
				given_name, family_name, active, source, version, created_at, updated_at)
				SELECT '00seed' || lpad(i::text, 20, '0'), ?, 'seed' || i || '@acme.bench', 'seed' || i || '@acme.bench', 'ext-seed-' || i,
				'Seed User ' || i, 'Seed', 'User ' || i, true, 'scim', 1, now(), now() FROM generate_series(?::int, ?::int) AS i`,
				b.tenantID, lo, hi); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_values (user_id, tenant_id, attr, position, value, value_key, type, is_primary)
				SELECT '00seed' || lpad(i::text, 20, '0'), ?, 'emails', 0, 'seed' || i || '@mail.acme.bench', 'seed' || i || '@mail.acme.bench', 'work', true
				FROM generate_series(?::int, ?::int) AS i`, b.tenantID, lo, hi); err != nil {
				return err
			}
			var last int64
			if err := tx.QueryRowContext(ctx, `SELECT last_seq FROM audit_chains WHERE tenant_id = ? FOR UPDATE`, b.tenantID).Scan(&last); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, tenant_id, occurred_at, actor_type, actor_id, actor_name, action,
				target_type, target_id, target_display, changes, seq, prev_hash, hash)
				SELECT '00seedev' || lpad(i::text, 18, '0'), ?, now(), 'scim_token', 'seed', 'seed', 'user.created', 'user',
				'00seed' || lpad(i::text, 20, '0'), 'seed' || i || '@acme.bench', jsonb_build_object('userName', jsonb_build_object('before', '', 'after', 'seed' || i || '@acme.bench')),
				? + i - ?::int + 1, 'seed', 'seed' FROM generate_series(?::int, ?::int) AS i`,
				b.tenantID, last, lo, lo, hi); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE audit_chains SET last_seq = ?, last_hash = 'seed' WHERE tenant_id = ?`, last+int64(hi-lo+1), b.tenantID)
			return err
		})
		if err != nil {
			return fmt.Errorf("seeding users %d..%d: %w", lo, hi, err)
		}
	}
	_, err := b.db.ExecContext(ctx, "ANALYZE users; ANALYZE user_values; ANALYZE audit_events")
	return err
}

func seedID(i int) string { return fmt.Sprintf("00seed%020d", i) }

// seedGroup makes a group whose members are seeded users [0, n), written as the server
// writes membership (groups + group_members rows).
func (b *bench) seedGroup(ctx context.Context, name string, n int) (string, error) {
	now := time.Now().UTC()
	gid := newID(now)
	err := b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO groups (id, tenant_id, display_name, display_name_key, source, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'scim', 1, ?, ?)`, gid, b.tenantID, name, strings.ToLower(name), now, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, member_id, tenant_id, member_type, user_id, created_at)
			SELECT ?, '00seed' || lpad(i::text, 20, '0'), ?, 'User', '00seed' || lpad(i::text, 20, '0'), now() FROM generate_series(0, ?::int - 1) AS i`,
			gid, b.tenantID, n)
		return err
	})
	if err != nil {
		return "", err
	}
	_, err = b.db.ExecContext(ctx, "ANALYZE group_members; ANALYZE groups")
	return gid, err
}
