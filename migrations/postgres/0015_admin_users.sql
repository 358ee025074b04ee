-- HelloJohn PostgreSQL schema, version 15: what the admin API needs of users and sessions. The
-- same columns as migrations/sqlite/0015_admin_users.sql. Additive only: a release before this
-- one neither reads nor writes these columns, and its inserts get their defaults.
--
-- * `users.disabled_reason`: why an operator disabled the user; NULL while enabled (an older
--   release that enables a user leaves it; readers show it only for a disabled user).
-- * `sessions.id`: a session's id for the operator (the admin API lists, shows and revokes
--   sessions by it, never by the hash of the cookie). Every insert that names none gets a
--   random one (`hj_insert_session` names none); existing rows get one in migration 18.
--
-- Only catalog changes here, so the exclusive locks they take on `users` and `sessions` last
-- milliseconds: the old release keeps signing in while this runs. The existing sessions' ids
-- (18) and the listings' indexes (19, built concurrently) come in migrations of their own,
-- which hold no lock that stops a sign-in (docs/upgrading.md, "Migrations under load").
ALTER TABLE users ADD COLUMN disabled_reason text;

-- Added without a default, then given one: no table rewrite under the exclusive lock. It stays
-- nullable (SET NOT NULL is not additive), but no insert leaves it NULL.
ALTER TABLE sessions ADD COLUMN id uuid;
ALTER TABLE sessions ALTER COLUMN id SET DEFAULT gen_random_uuid();
