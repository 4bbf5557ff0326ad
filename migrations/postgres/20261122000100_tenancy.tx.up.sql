-- Tenancy: tenants, their email domains and SCIM bearer tokens (stored as SHA-256 only).
CREATE TABLE tenants (
    id                text PRIMARY KEY,
    slug              text NOT NULL UNIQUE,
    name              text NOT NULL,
    provisioning_mode text NOT NULL DEFAULT 'scim',
    features          jsonb NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);

CREATE TABLE tenant_domains (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain             text NOT NULL,
    verification_token text NOT NULL,
    verified_at        timestamptz,
    created_at         timestamptz NOT NULL,
    UNIQUE (tenant_id, domain)
);
-- A domain may be claimed by several tenants but verified by only one: home-realm
-- discovery (email domain -> tenant) must be unambiguous.
CREATE UNIQUE INDEX tenant_domains_verified_uq ON tenant_domains (domain) WHERE verified_at IS NOT NULL;

CREATE TABLE scim_tokens (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    hint         text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX scim_tokens_tenant_idx ON scim_tokens (tenant_id, created_at);
