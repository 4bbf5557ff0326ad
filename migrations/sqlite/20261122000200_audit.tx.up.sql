-- Audit events, written in the same transaction as the change they record. No foreign
-- key to tenants: the record outlives what it describes.
CREATE TABLE audit_events (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL,
    occurred_at    timestamp NOT NULL,
    actor_type     text NOT NULL,
    actor_id       text NOT NULL DEFAULT '',
    actor_name     text NOT NULL DEFAULT '',
    action         text NOT NULL,
    target_type    text NOT NULL DEFAULT '',
    target_id      text NOT NULL DEFAULT '',
    target_display text NOT NULL DEFAULT '',
    changes        text,
    request_id     text NOT NULL DEFAULT '',
    remote_ip      text NOT NULL DEFAULT '',
    user_agent     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, id);
