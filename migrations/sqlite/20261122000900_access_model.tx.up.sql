-- Access model: company roles (built-in owner/admin/member plus tenant-defined custom
-- roles), who holds them (directly, or through a group mapped to a role), spaces, and
-- grants of a space role to a user or a group.
--
-- Built-in roles are not rows: their ids ('owner', 'admin') are fixed. Where a role id
-- is stored, custom_role_id repeats it for custom roles only, so deleting a custom role
-- cascades to its assignments and mappings. 'member' is never stored: no row means member.
CREATE TABLE roles (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    name_key    text NOT NULL,
    permissions text NOT NULL DEFAULT '[]',
    created_at  timestamp NOT NULL,
    updated_at  timestamp NOT NULL
);
CREATE UNIQUE INDEX roles_tenant_name_uq ON roles (tenant_id, name_key);

-- A user's one direct role.
CREATE TABLE user_roles (
    user_id        text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id      text NOT NULL,
    role_id        text NOT NULL,
    custom_role_id text REFERENCES roles (id) ON DELETE CASCADE,
    created_at     timestamp NOT NULL,
    CHECK ((role_id IN ('owner', 'admin') AND custom_role_id IS NULL) OR custom_role_id = role_id)
);
CREATE INDEX user_roles_tenant_role_idx ON user_roles (tenant_id, role_id);
CREATE INDEX user_roles_custom_role_idx ON user_roles (custom_role_id);

-- Group -> role mappings: every member of the group (transitively) holds the role.
CREATE TABLE group_roles (
    group_id       text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    role_id        text NOT NULL,
    tenant_id      text NOT NULL,
    custom_role_id text REFERENCES roles (id) ON DELETE CASCADE,
    created_at     timestamp NOT NULL,
    PRIMARY KEY (group_id, role_id),
    CHECK ((role_id IN ('owner', 'admin') AND custom_role_id IS NULL) OR custom_role_id = role_id)
);
CREATE INDEX group_roles_tenant_role_idx ON group_roles (tenant_id, role_id);
CREATE INDEX group_roles_custom_role_idx ON group_roles (custom_role_id);

CREATE TABLE spaces (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    name_key    text NOT NULL,
    description text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamp NOT NULL,
    updated_at  timestamp NOT NULL
);
CREATE UNIQUE INDEX spaces_tenant_name_uq ON spaces (tenant_id, name_key);
CREATE INDEX spaces_tenant_id_idx ON spaces (tenant_id, id);

-- A grant of a space role to a user or a group: principal_id names it, and exactly one
-- of the two foreign keys is set (as in group_members) so that deleting the user or the
-- group removes its grants in the same transaction.
CREATE TABLE space_grants (
    id             text PRIMARY KEY,
    tenant_id      text NOT NULL,
    space_id       text NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    principal_type text NOT NULL,
    principal_id   text NOT NULL,
    user_id        text REFERENCES users (id) ON DELETE CASCADE,
    group_id       text REFERENCES groups (id) ON DELETE CASCADE,
    role           text NOT NULL,
    created_at     timestamp NOT NULL,
    updated_at     timestamp NOT NULL,
    UNIQUE (space_id, principal_id),
    CHECK (role IN ('viewer', 'editor', 'manager')),
    CHECK ((principal_type = 'user' AND user_id = principal_id AND group_id IS NULL)
        OR (principal_type = 'group' AND group_id = principal_id AND user_id IS NULL))
);
CREATE INDEX space_grants_user_idx ON space_grants (user_id);
CREATE INDEX space_grants_group_idx ON space_grants (group_id);
