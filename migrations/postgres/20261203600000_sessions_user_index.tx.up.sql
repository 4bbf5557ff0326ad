-- Deleting a user cascades to their sessions by user_id alone (ON DELETE CASCADE), which
-- no index led with: every user deletion scanned the sessions table.
CREATE INDEX sessions_user_idx ON sessions (user_id);
