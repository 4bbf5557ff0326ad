-- Keys: the signing keys of this deployment (session JWTs, SAML SP). Private keys are
-- sealed with GATEHOUSE_SECRET_KEY when it is set. Status moves next -> active ->
-- previous -> retired; at most one key per purpose is active.
CREATE TABLE signing_keys (
    id           text PRIMARY KEY,
    purpose      text NOT NULL,
    algorithm    text NOT NULL,
    status       text NOT NULL,
    private_key  text NOT NULL,
    public_key   text NOT NULL,
    created_at   timestamp NOT NULL,
    activated_at timestamp,
    retired_at   timestamp
);
CREATE UNIQUE INDEX signing_keys_one_active_uq ON signing_keys (purpose) WHERE status = 'active';
CREATE INDEX signing_keys_purpose_idx ON signing_keys (purpose, status);
