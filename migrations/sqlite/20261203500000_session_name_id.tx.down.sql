DROP INDEX sessions_tenant_name_id_idx;
ALTER TABLE sessions DROP COLUMN saml_name_id;
