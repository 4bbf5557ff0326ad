-- Audit chain: every tenant's events get a gap-free sequence number (seq) and a SHA-256
-- hash chain, hash = hex(sha256(prev_hash || "\n" || canonical(event))) (see package
-- audit), so that an edited, deleted or inserted row shows up in `gatehouse audit verify`.
--
-- Events recorded before this migration cannot be given trustworthy hashes after the
-- fact. They are numbered 1..n per tenant in id (= time) order and marked with the hash
-- 'legacy' (prev_hash and hash); the tenant's chain head starts after them (last_seq = n,
-- last_hash = 'legacy'), and a checkpoint at #n with hash 'legacy' makes verification
-- start after them, exactly as after a prune. Legacy events stay readable and prunable
-- but are not covered by the chain. A database without events gets no rows here.
--
-- SQLite adds a NOT NULL column only with a default; the defaults are never used, since
-- Record always writes all three.
ALTER TABLE audit_events ADD COLUMN seq bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN prev_hash text NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash text NOT NULL DEFAULT '';
UPDATE audit_events SET seq = numbered.seq, prev_hash = 'legacy', hash = 'legacy'
FROM (SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY id) AS seq FROM audit_events) AS numbered
WHERE audit_events.id = numbered.id;

-- Paging is by (tenant_id, seq); the filters of Log.Page (actor, target, action) each
-- have an index that keeps seq order, so a filtered page reads only matching rows.
CREATE UNIQUE INDEX audit_events_tenant_seq_uq ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (tenant_id, actor_id, seq);
CREATE INDEX audit_events_target_idx ON audit_events (tenant_id, target_id, seq);
CREATE INDEX audit_events_action_idx ON audit_events (tenant_id, action, seq);

-- The head of each tenant's chain: the last seq handed out and its hash. Recording
-- updates this row, so a tenant's events are numbered one at a time without gaps.
CREATE TABLE audit_chains (
    tenant_id text PRIMARY KEY,
    last_seq  bigint NOT NULL,
    last_hash text NOT NULL
);
INSERT INTO audit_chains (tenant_id, last_seq, last_hash)
SELECT tenant_id, max(seq), 'legacy' FROM audit_events GROUP BY tenant_id;

-- Where verification starts: the seq and hash of the last pruned (or legacy) event. The
-- first remaining event's prev_hash must equal hash.
CREATE TABLE audit_checkpoints (
    tenant_id text PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      text NOT NULL,
    pruned_at timestamp NOT NULL
);
INSERT INTO audit_checkpoints (tenant_id, seq, hash, pruned_at)
SELECT tenant_id, max(seq), 'legacy', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now') FROM audit_events GROUP BY tenant_id;

-- Events committed but not yet relayed to live subscribers (Log.Relay), written in the
-- same transaction as the event, claimed oldest first. Pruning an event drops its
-- outbox row with it.
CREATE TABLE audit_outbox (
    event_id   text PRIMARY KEY REFERENCES audit_events (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    seq        bigint NOT NULL,
    created_at timestamp NOT NULL
);
CREATE INDEX audit_outbox_order_idx ON audit_outbox (created_at, tenant_id, seq);

-- Tenancy: how many days a tenant's audit events are kept (0 = forever).
ALTER TABLE tenants ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 0;
