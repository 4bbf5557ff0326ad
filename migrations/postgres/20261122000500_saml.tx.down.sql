DROP TABLE saml_connections;
ALTER TABLE tenants DROP COLUMN session_max_seconds;
ALTER TABLE tenants DROP COLUMN session_idle_seconds;
ALTER TABLE tenants DROP COLUMN idp_initiated_sso;
ALTER TABLE tenants DROP COLUMN jit_provisioning;
