-- SAML: a tenant's SSO settings (columns on tenants) and its IdP connection, one per
-- tenant. Session lifetimes are whole seconds.
ALTER TABLE tenants ADD COLUMN jit_provisioning boolean NOT NULL DEFAULT false;
ALTER TABLE tenants ADD COLUMN idp_initiated_sso boolean NOT NULL DEFAULT false;
ALTER TABLE tenants ADD COLUMN session_idle_seconds bigint NOT NULL DEFAULT 28800;
ALTER TABLE tenants ADD COLUMN session_max_seconds bigint NOT NULL DEFAULT 86400;

-- certificates is a JSON array of PEM "CERTIFICATE" blocks (the IdP's public signing
-- certificates; more than one during a rollover). Nothing secret is stored here.
CREATE TABLE saml_connections (
    tenant_id                 text PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    idp_entity_id             text NOT NULL,
    sso_url                   text NOT NULL,
    sso_binding               text NOT NULL,
    slo_url                   text NOT NULL DEFAULT '',
    slo_binding               text NOT NULL DEFAULT '',
    certificates              text NOT NULL DEFAULT '[]',
    name_id_format            text NOT NULL,
    attr_email                text NOT NULL DEFAULT '',
    attr_given_name           text NOT NULL DEFAULT '',
    attr_family_name          text NOT NULL DEFAULT '',
    attr_groups               text NOT NULL DEFAULT '',
    sign_requests             boolean NOT NULL DEFAULT false,
    idp_wants_signed_requests boolean NOT NULL DEFAULT false,
    metadata_url              text NOT NULL DEFAULT '',
    created_at                timestamp NOT NULL,
    updated_at                timestamp NOT NULL
);
