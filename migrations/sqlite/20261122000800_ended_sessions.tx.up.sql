-- Tombstones of ended sessions (logout, revocation, deprovisioning), kept for an hour.
-- Every replica reads the recent ones into memory, so a cache entry that outlived its
-- session (a Redis restored from an old snapshot, a failover that lost a delete) is
-- never trusted: the database, not the cache, decides that a session ended.
CREATE TABLE ended_sessions (
    session_id text PRIMARY KEY,
    user_id    text NOT NULL,
    ended_at   timestamp NOT NULL
);
CREATE INDEX ended_sessions_ended_at_idx ON ended_sessions (ended_at);
