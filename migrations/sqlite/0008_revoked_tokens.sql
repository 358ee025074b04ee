-- HelloJohn SQLite schema, version 8: revoked access tokens. Additive only; see
-- migrations/postgres/0008_revoked_tokens.sql.
CREATE TABLE revoked_tokens (
    jti         TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

ALTER TABLE authorization_codes ADD COLUMN access_jti TEXT;
ALTER TABLE authorization_codes ADD COLUMN access_expires_at INTEGER;
