-- HelloJohn PostgreSQL schema, version 19: the indexes of the admin API's listings (one tenant's
-- users, sessions and refresh families, keyset-paged on (created_at, id)) and of a session's id.
--
-- Applied outside a transaction (an online migration: storage/src/postgres/migrate.rs), one
-- statement at a time: CREATE INDEX CONCURRENTLY builds without the lock that stops inserts, so
-- sign-ups and sign-ins go on during the build. IF NOT EXISTS makes a rerun (or a second
-- `hj migrate`) build nothing twice; the runner waits for a build another process started, and
-- drops and rebuilds an index a failed build left invalid.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sessions_id_key ON sessions (id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_tenant_created ON users (tenant_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS sessions_tenant_created ON sessions (tenant_id, created_at, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS refresh_families_tenant_created
    ON refresh_families (tenant_id, created_at, id);
