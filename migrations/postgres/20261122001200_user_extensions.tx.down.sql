DROP TABLE user_ext_values;
DROP TABLE scim_extensions;
