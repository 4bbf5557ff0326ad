-- The NameID a SAML session was signed in with, so that the IdP's LogoutRequest (which
-- names the person only by it) finds the sessions of people matched by their email
-- attribute too (an opaque persistent NameID is not their userName). Sessions started
-- before this take their user's userName, the NameID of everyone matched by it.
ALTER TABLE sessions ADD COLUMN saml_name_id text NOT NULL DEFAULT '';
UPDATE sessions SET saml_name_id = (SELECT u.user_name FROM users AS u WHERE u.id = sessions.user_id)
WHERE method = 'saml';
CREATE INDEX sessions_tenant_name_id_idx ON sessions (tenant_id, saml_name_id);
