DROP INDEX users_tenant_external_id_idx;
CREATE INDEX users_tenant_external_id_idx ON users (tenant_id, external_id);
DROP INDEX users_tenant_updated_idx;
CREATE INDEX users_tenant_updated_idx ON users (tenant_id, updated_at);
DROP INDEX groups_tenant_external_id_idx;
CREATE INDEX groups_tenant_external_id_idx ON groups (tenant_id, external_id);
