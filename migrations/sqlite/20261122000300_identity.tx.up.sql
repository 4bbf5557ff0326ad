-- Identity: users (the SCIM User resource, core + enterprise extension) and their
-- multi-valued attributes, one row per value so filters on them use an index.
CREATE TABLE users (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_name          text NOT NULL,
    user_name_key      text NOT NULL,
    external_id        text,
    display_name       text,
    name_formatted     text,
    family_name        text,
    given_name         text,
    middle_name        text,
    honorific_prefix   text,
    honorific_suffix   text,
    nick_name          text,
    profile_url        text,
    title              text,
    user_type          text,
    preferred_language text,
    locale             text,
    timezone           text,
    active             boolean NOT NULL DEFAULT true,
    employee_number    text,
    cost_center        text,
    organization       text,
    division           text,
    department         text,
    manager_id         text,
    source             text NOT NULL DEFAULT 'scim',
    version            bigint NOT NULL DEFAULT 1,
    created_at         timestamp NOT NULL,
    updated_at         timestamp NOT NULL
);
CREATE UNIQUE INDEX users_tenant_user_name_uq ON users (tenant_id, user_name_key);
CREATE INDEX users_tenant_external_id_idx ON users (tenant_id, external_id);
CREATE INDEX users_tenant_id_idx ON users (tenant_id, id);
CREATE INDEX users_tenant_updated_idx ON users (tenant_id, updated_at);

CREATE TABLE user_values (
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id      text NOT NULL,
    attr           text NOT NULL,
    position       integer NOT NULL,
    value          text,
    value_key      text,
    display        text,
    type           text,
    is_primary     boolean NOT NULL DEFAULT false,
    formatted      text,
    street_address text,
    locality       text,
    region         text,
    postal_code    text,
    country        text,
    PRIMARY KEY (user_id, attr, position)
);
CREATE INDEX user_values_lookup_idx ON user_values (tenant_id, attr, value_key);
