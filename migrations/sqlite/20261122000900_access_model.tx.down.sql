DROP TABLE space_grants;
DROP TABLE spaces;
DROP TABLE group_roles;
DROP TABLE user_roles;
DROP TABLE roles;
