DROP INDEX sessions_user_idx;
