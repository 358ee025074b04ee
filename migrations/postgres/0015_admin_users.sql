-- HelloJohn PostgreSQL schema, version 15: what the admin API needs of users and sessions. The
-- same columns as migrations/sqlite/0015_admin_users.sql. Additive only: a release before this
-- one neither reads nor writes these columns, and its inserts get their defaults.
--
-- * `users.disabled_reason`: why an operator disabled the user; NULL while enabled (an older
--   release that enables a user leaves it; readers show it only for a disabled user).
-- * `sessions.id`: a session's id for the operator (the admin API lists, shows and revokes
--   sessions by it, never by the hash of the cookie). Every insert that names none gets a
--   random one (`hj_insert_session` names none); existing rows get one here.
ALTER TABLE users ADD COLUMN disabled_reason text;

-- Added without a default, then given one: no table rewrite under the exclusive lock, only the
-- update of the existing rows. It stays nullable (SET NOT NULL is not additive), but no insert
-- leaves it NULL.
ALTER TABLE sessions ADD COLUMN id uuid;
ALTER TABLE sessions ALTER COLUMN id SET DEFAULT gen_random_uuid();
UPDATE sessions SET id = gen_random_uuid() WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id_key ON sessions (id);

-- The admin API's listings: one tenant's, keyset-paged on (created_at, id).
CREATE INDEX users_tenant_created ON users (tenant_id, created_at, id);
CREATE INDEX sessions_tenant_created ON sessions (tenant_id, created_at, id);
CREATE INDEX refresh_families_tenant_created ON refresh_families (tenant_id, created_at, id);
