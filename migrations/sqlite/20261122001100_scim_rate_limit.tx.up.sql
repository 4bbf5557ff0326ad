-- Per-tenant SCIM rate limit in requests per second; 0 takes the deployment's default
-- (GATEHOUSE_SCIM_RATE_LIMIT).
ALTER TABLE tenants ADD COLUMN scim_rate_limit_per_second integer NOT NULL DEFAULT 0;
