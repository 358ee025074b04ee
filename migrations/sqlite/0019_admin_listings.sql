-- HelloJohn SQLite schema, version 19: the indexes of the admin API's listings (one tenant's
-- users, sessions and refresh families, keyset-paged on (created_at, id)). IF NOT EXISTS: a
-- database that had them from an earlier build of version 15 keeps them.
CREATE INDEX IF NOT EXISTS users_tenant_created ON users (tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS sessions_tenant_created ON sessions (tenant_id, created_at, id);
CREATE INDEX IF NOT EXISTS refresh_families_tenant_created ON refresh_families (tenant_id, created_at, id);
