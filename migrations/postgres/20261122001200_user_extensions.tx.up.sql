-- Tenant-defined SCIM User extension schemas (RFC 7643 §3.3) and their values. Both
-- tables belong to the identity module: an extension declares attributes of the
-- tenant's users, so the module that owns users owns their shape and their values; the
-- SCIM transport only reads the declarations to serve /Schemas and validate input.
CREATE TABLE scim_extensions (
    tenant_id  text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    urn        text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, urn)
);

-- One row per value of an extension attribute (multi-valued ones have several
-- positions). value_text holds the canonical text of every value (what is rendered);
-- the typed columns hold it again for filters and sorts, and unique_key is set only
-- for attributes declared uniqueness "server", so the partial unique index enforces
-- it per tenant without a race.
CREATE TABLE user_ext_values (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    urn        text NOT NULL,
    attr       text NOT NULL,
    position   integer NOT NULL,
    value_text text NOT NULL,
    value_key  text,
    value_num  double precision,
    value_bool boolean,
    value_time timestamptz,
    unique_key text,
    PRIMARY KEY (user_id, urn, attr, position)
);
CREATE INDEX user_ext_values_key_idx ON user_ext_values (tenant_id, urn, attr, value_key);
CREATE INDEX user_ext_values_text_idx ON user_ext_values (tenant_id, urn, attr, value_text);
CREATE INDEX user_ext_values_num_idx ON user_ext_values (tenant_id, urn, attr, value_num);
CREATE INDEX user_ext_values_time_idx ON user_ext_values (tenant_id, urn, attr, value_time);
CREATE UNIQUE INDEX user_ext_values_unique_uq ON user_ext_values (tenant_id, urn, attr, unique_key)
    WHERE unique_key IS NOT NULL;
