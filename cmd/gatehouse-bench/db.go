package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

// limitCreate writes what one SCIM create writes (see identity.CreateUser and
// audit.Log.Record): the users row, its user_values row, then under the tenant's chain
// head (SELECT … FOR UPDATE) the audit event, its outbox row and the new head — one
// transaction per user, with a plain Go client and no HTTP, JSON schema or auth work.
func limitCreate(ctx context.Context, db *bun.DB, tenantID string, n int64) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	uid := newID(now)
	name := fmt.Sprintf("limit%d@acme.bench", n)
	email := fmt.Sprintf("limit%d@mail.acme.bench", n)
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, tenant_id, user_name, user_name_key, external_id, display_name,
			given_name, family_name, active, source, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'Bench User', 'Bench', 'User', true, 'scim', 1, ?, ?)`,
			uid, tenantID, name, name, fmt.Sprintf("ext-limit-%d", n), now, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_values (user_id, tenant_id, attr, position, value, value_key, type, is_primary)
			VALUES (?, ?, 'emails', 0, ?, ?, 'work', true)`, uid, tenantID, email, email); err != nil {
			return err
		}
		var lastSeq int64
		var lastHash string
		if err := tx.QueryRowContext(ctx, `SELECT last_seq, last_hash FROM audit_chains WHERE tenant_id = ? FOR UPDATE`, tenantID).
			Scan(&lastSeq, &lastHash); err != nil {
			return err
		}
		changes, _ := json.Marshal(map[string]any{
			"userName": map[string]any{"before": "", "after": name}, "externalId": map[string]any{"before": "", "after": "ext"},
			"displayName": map[string]any{"before": "", "after": "Bench User"}, "active": map[string]any{"before": false, "after": true},
			"values": map[string]any{"before": "", "after": "emails: " + email}})
		at := time.Now().UTC().Truncate(time.Microsecond)
		eid := newID(at)
		sum := sha256.Sum256([]byte(lastHash + "\n" + eid + name + string(changes)))
		hash := hex.EncodeToString(sum[:])
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, tenant_id, occurred_at, actor_type, actor_id, actor_name, action,
			target_type, target_id, target_display, changes, request_id, remote_ip, user_agent, seq, prev_hash, hash)
			VALUES (?, ?, ?, 'scim_token', 'tok', 'bench IdP', 'user.created', 'user', ?, ?, ?, 'req', '127.0.0.1', 'bench', ?, ?, ?)`,
			eid, tenantID, at, uid, name, string(changes), lastSeq+1, lastHash, hash); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_outbox (event_id, tenant_id, seq, created_at) VALUES (?, ?, ?, ?)`,
			eid, tenantID, lastSeq+1, at); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE audit_chains SET last_seq = ?, last_hash = ? WHERE tenant_id = ?`, lastSeq+1, hash, tenantID)
		return err
	})
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
