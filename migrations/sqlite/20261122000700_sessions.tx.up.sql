-- Sessions: the source of truth for who is signed in. The cache holds copies; a session
-- is alive only while its row exists (logout, revocation and deprovisioning delete it).
CREATE TABLE sessions (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id            text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at         timestamp NOT NULL,
    expires_at         timestamp NOT NULL,
    last_seen_at       timestamp NOT NULL,
    idle_seconds       bigint NOT NULL,
    ip                 text NOT NULL DEFAULT '',
    user_agent         text NOT NULL DEFAULT '',
    method             text NOT NULL,
    saml_session_index text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_tenant_user_idx ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
