DROP TABLE scim_tokens;
DROP TABLE tenant_domains;
DROP TABLE tenants;
