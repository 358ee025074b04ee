-- HelloJohn PostgreSQL schema, version 10: the account lifecycle. MFA (TOTP and recovery
-- codes, sign-in challenges, remembered devices), email verification and password reset
-- tokens, and the mail outbox. The same tables as migrations/sqlite/0010_account_lifecycle.sql.
-- Additive only: older instances neither read nor write these tables, and `mfa_enabled` is
-- false for every existing user.

-- Kept in step with mfa_totp by the transactions that confirm or remove a factor, so that a
-- sign-in learns whether a second factor is due from the row it already reads.
ALTER TABLE users ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false;

-- One TOTP factor per user. The secret is sealed under the master key (nonce ||
-- XChaCha20-Poly1305 ciphertext, the user id as AAD). `confirmed_at` NULL: enrolled, not yet
-- proved by a code. `last_step`: the time step of the last code accepted; a code is accepted
-- only for a later step, so each code works once.
CREATE TABLE mfa_totp (
    user_id         uuid    NOT NULL,
    secret_sealed   bytea   NOT NULL,
    confirmed_at    bigint,
    last_step       bigint,
    created_at      bigint  NOT NULL,
    CONSTRAINT mfa_totp_pkey PRIMARY KEY (user_id),
    CONSTRAINT mfa_totp_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- Recovery codes, stored as SHA-256, each usable once.
CREATE TABLE mfa_recovery_codes (
    user_id     uuid    NOT NULL,
    code_hash   bytea   NOT NULL,
    used_at     bigint,
    created_at  bigint  NOT NULL,
    CONSTRAINT mfa_recovery_codes_pkey PRIMARY KEY (user_id, code_hash),
    CONSTRAINT mfa_recovery_codes_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- A sign-in waiting for its second factor: the `mfa_token` (stored as SHA-256) lives a few
-- minutes, any instance can finish it, and it is completed at most once. `kind` says what the
-- finished sign-in gives (`tokens`, `session`); `failures` counts wrong codes.
CREATE TABLE mfa_challenges (
    token_hash    bytea    NOT NULL,
    user_id       uuid     NOT NULL,
    tenant_id     uuid     NOT NULL,
    client_id     text     NOT NULL,
    kind          text     NOT NULL,
    failures      integer  NOT NULL DEFAULT 0,
    expires_at    bigint   NOT NULL,
    completed_at  bigint,
    created_at    bigint   NOT NULL,
    CONSTRAINT mfa_challenges_pkey PRIMARY KEY (token_hash),
    CONSTRAINT mfa_challenges_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);

-- Devices a user asked to remember after a second factor: the cookie's value as SHA-256.
CREATE TABLE mfa_trusted_devices (
    token_hash  bytea   NOT NULL,
    user_id     uuid    NOT NULL,
    expires_at  bigint  NOT NULL,
    created_at  bigint  NOT NULL,
    CONSTRAINT mfa_trusted_devices_pkey PRIMARY KEY (token_hash),
    CONSTRAINT mfa_trusted_devices_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX mfa_trusted_devices_user ON mfa_trusted_devices (user_id);

-- Single-use email tokens (SHA-256): `verify` proves the address, `reset` sets a new password.
-- `email` is the address the token was sent to: a token verifies only that address.
-- `redirect_uri` (already checked against the client's) is where a verified browser goes.
CREATE TABLE email_tokens (
    token_hash    bytea   NOT NULL,
    purpose       text    NOT NULL,
    user_id       uuid    NOT NULL,
    tenant_id     uuid    NOT NULL,
    client_id     text    NOT NULL,
    email         text    NOT NULL,
    redirect_uri  text,
    expires_at    bigint  NOT NULL,
    used_at       bigint,
    created_at    bigint  NOT NULL,
    CONSTRAINT email_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT email_tokens_purpose_check CHECK (purpose IN ('verify', 'reset')),
    CONSTRAINT email_tokens_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX email_tokens_user ON email_tokens (user_id);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- The mail outbox: written in the transaction of the change that sends it, leased and
-- retried like webhook deliveries. The message (subject, text and HTML, with the link and its
-- token) is sealed under the master key with the mail id as AAD, and dropped once sent.
CREATE TABLE mail_outbox (
    id                  uuid     NOT NULL,
    tenant_id           uuid     NOT NULL,
    kind                text     NOT NULL,
    status              text     NOT NULL DEFAULT 'pending',
    message_sealed      bytea,
    attempts            integer  NOT NULL DEFAULT 0,
    next_attempt_at_ms  bigint   NOT NULL,
    leased_until_ms     bigint,
    lease_id            uuid,
    last_error          text,
    sent_at_ms          bigint,
    created_at          bigint   NOT NULL,
    CONSTRAINT mail_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT mail_outbox_status_check
        CHECK (status IN ('pending', 'failed', 'sent', 'exhausted')),
    CONSTRAINT mail_outbox_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at_ms)
    WHERE status IN ('pending', 'failed');
CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
