-- HelloJohn SQLite schema, version 18: on PostgreSQL, the ids of the sessions made before
-- migration 15 (migrations/postgres/0018_session_ids.sql). Here 15 gave them in the same
-- migration (one writer, nothing to keep serving meanwhile); the number is kept so that both
-- backends count their migrations alike (storage/src/releases.rs).
SELECT 1;
