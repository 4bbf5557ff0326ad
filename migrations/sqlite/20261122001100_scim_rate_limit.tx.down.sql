ALTER TABLE tenants DROP COLUMN scim_rate_limit_per_second;
