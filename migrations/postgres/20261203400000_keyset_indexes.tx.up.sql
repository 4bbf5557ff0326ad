-- Cursor pages (RFC 9865) seek on (sort value, id): with the id in the index, a page
-- sorted by externalId or meta.lastModified is one index range, never a walk from the
-- start of the tenant or a sort of its rows. They replace the indexes on the sort
-- column alone, which they also serve.
DROP INDEX users_tenant_external_id_idx;
CREATE INDEX users_tenant_external_id_idx ON users (tenant_id, external_id, id);
DROP INDEX users_tenant_updated_idx;
CREATE INDEX users_tenant_updated_idx ON users (tenant_id, updated_at, id);
DROP INDEX groups_tenant_external_id_idx;
CREATE INDEX groups_tenant_external_id_idx ON groups (tenant_id, external_id, id);
