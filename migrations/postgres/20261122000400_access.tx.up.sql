-- Access: groups (the SCIM Group resource) and membership, one row per member so a
-- change costs O(members changed) whatever the group's size.
CREATE TABLE groups (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    display_name     text NOT NULL,
    display_name_key text NOT NULL,
    external_id      text,
    source           text NOT NULL DEFAULT 'scim',
    version          bigint NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX groups_tenant_display_name_uq ON groups (tenant_id, display_name_key);
CREATE INDEX groups_tenant_external_id_idx ON groups (tenant_id, external_id);
CREATE INDEX groups_tenant_id_idx ON groups (tenant_id, id);

-- A member is a user or a group: member_id names it for lookups, and exactly one of the
-- two foreign keys is set so that deleting a user or a group removes its memberships in
-- the same transaction.
CREATE TABLE group_members (
    group_id        text NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_id       text NOT NULL,
    tenant_id       text NOT NULL,
    member_type     text NOT NULL,
    user_id         text REFERENCES users (id) ON DELETE CASCADE,
    member_group_id text REFERENCES groups (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (group_id, member_id),
    CHECK ((member_type = 'User' AND user_id = member_id AND member_group_id IS NULL)
        OR (member_type = 'Group' AND member_group_id = member_id AND user_id IS NULL))
);
CREATE INDEX group_members_member_idx ON group_members (member_id);
CREATE INDEX group_members_user_idx ON group_members (user_id);
CREATE INDEX group_members_member_group_idx ON group_members (member_group_id);
