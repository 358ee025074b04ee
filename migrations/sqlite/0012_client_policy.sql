-- HelloJohn SQLite schema, version 12: first- and third-party clients, consents, and how a
-- cookie session was authenticated. Additive only; see
-- migrations/postgres/0012_client_policy.sql.
ALTER TABLE clients ADD COLUMN third_party INTEGER NOT NULL DEFAULT 0
    CHECK (third_party IN (0, 1));

CREATE TABLE consents (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE sessions ADD COLUMN amr TEXT;
