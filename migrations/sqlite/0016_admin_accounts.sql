-- HelloJohn SQLite schema, version 16: admin accounts, their refresh tokens and TOTP factor.
-- Additive only; see migrations/postgres/0016_admin_accounts.sql for what each table and
-- column means.
CREATE TABLE admin_accounts (
    id              TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL UNIQUE,
    name            TEXT,
    scope           TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    mfa_enabled     INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    last_seen_at    INTEGER,
    disabled_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE admin_refresh_tokens (
    token_hash  BLOB    NOT NULL PRIMARY KEY,
    admin_id    TEXT    NOT NULL REFERENCES admin_accounts (id) ON DELETE CASCADE,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX admin_refresh_tokens_admin ON admin_refresh_tokens (admin_id);

CREATE TABLE admin_totp (
    admin_id        TEXT    NOT NULL PRIMARY KEY REFERENCES admin_accounts (id) ON DELETE CASCADE,
    secret_sealed   BLOB    NOT NULL,
    confirmed_at    INTEGER,
    last_step       INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;
