-- HelloJohn SQLite schema, version 14: the admin API's API keys and the audit log. Additive
-- only; see migrations/postgres/0014_admin_api.sql for what each column means. Every event the
-- store writes is also written to audit_log (storage/src/sqlite/events.rs).
CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    key_prefix      TEXT    NOT NULL,
    key_hash        BLOB    NOT NULL UNIQUE,
    scope           TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    expires_at      INTEGER,
    revoked_at      INTEGER
);

CREATE TABLE audit_log (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT,
    action          TEXT    NOT NULL,
    actor_type      TEXT    NOT NULL,
    actor_id        TEXT,
    actor_name      TEXT,
    target_type     TEXT,
    target_id       TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    request_id      TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}',
    result          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (created_at DESC, id DESC);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, created_at DESC, id DESC);
