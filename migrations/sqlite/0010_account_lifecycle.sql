-- HelloJohn SQLite schema, version 10: the account lifecycle (MFA, email tokens, the mail
-- outbox). Additive only; see migrations/postgres/0010_account_lifecycle.sql for what each
-- table and column means.
ALTER TABLE users ADD COLUMN mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1));

CREATE TABLE mfa_totp (
    user_id         TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed   BLOB    NOT NULL,
    confirmed_at    INTEGER,
    last_step       INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE mfa_recovery_codes (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BLOB    NOT NULL,
    used_at     INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;

CREATE TABLE mfa_challenges (
    token_hash    BLOB    NOT NULL PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    expires_at    INTEGER NOT NULL,
    completed_at  INTEGER,
    created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);

CREATE TABLE mfa_trusted_devices (
    token_hash  BLOB    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX mfa_trusted_devices_user ON mfa_trusted_devices (user_id);

CREATE TABLE email_tokens (
    token_hash    BLOB    NOT NULL PRIMARY KEY,
    purpose       TEXT    NOT NULL CHECK (purpose IN ('verify', 'reset')),
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    redirect_uri  TEXT,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

CREATE TABLE mail_outbox (
    id                  TEXT    NOT NULL PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind                TEXT    NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'failed', 'sent', 'exhausted')),
    message_sealed      BLOB,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms  INTEGER NOT NULL,
    leased_until_ms     INTEGER,
    lease_id            TEXT,
    last_error          TEXT,
    sent_at_ms          INTEGER,
    created_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at_ms)
    WHERE status IN ('pending', 'failed');
CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
