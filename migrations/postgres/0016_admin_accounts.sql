-- HelloJohn PostgreSQL schema, version 16: admin accounts, the people who operate the server
-- through the admin API and its console, with their refresh tokens and TOTP factor. The same
-- tables as migrations/sqlite/0016_admin_accounts.sql. Additive only: a release before this
-- one neither reads nor writes these tables.

-- Admins are not users of any tenant. `email` is normalised by the engine (trimmed, lower
-- case) before it gets here, so a plain UNIQUE is the uniqueness rule. `scope` is `admin`,
-- `readonly` or `tenant:{slug}`, like an API key's, read by the engine on use. `password_hash`
-- is an Argon2id PHC string, as users' are. `mfa_enabled` is kept in step with admin_totp by
-- the transactions that confirm or remove the factor, so a sign-in learns whether a second
-- factor is due from the row it already reads. Times are Unix seconds; `last_seen_at` is
-- refreshed at most once a minute; `disabled_at` set: the account cannot sign in or refresh.
CREATE TABLE admin_accounts (
    id              uuid     NOT NULL,
    email           text     NOT NULL,
    name            text,
    scope           text     NOT NULL,
    password_hash   text     NOT NULL,
    mfa_enabled     boolean  NOT NULL DEFAULT false,
    last_seen_at    bigint,
    disabled_at     bigint,
    created_at      bigint   NOT NULL,
    updated_at      bigint   NOT NULL,
    CONSTRAINT admin_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT admin_accounts_email_key UNIQUE (email)
);

-- An admin's refresh tokens, stored as SHA-256. Each is used once (`used_at`): a rotation
-- marks it and stores its successor; a second use is a replay, and every token of the account
-- is revoked (`revoked_at`). Disabling the account or changing its password revokes them too.
CREATE TABLE admin_refresh_tokens (
    token_hash  bytea   NOT NULL,
    admin_id    uuid    NOT NULL,
    issued_at   bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    used_at     bigint,
    revoked_at  bigint,
    CONSTRAINT admin_refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT admin_refresh_tokens_admin_id_fkey FOREIGN KEY (admin_id)
        REFERENCES admin_accounts (id) ON DELETE CASCADE
);

CREATE INDEX admin_refresh_tokens_admin ON admin_refresh_tokens (admin_id);

-- One TOTP factor per admin, as mfa_totp is for users: the secret sealed under the master key
-- (the admin id as AAD); `confirmed_at` NULL: enrolled, not yet proved by a code;
-- `last_step`: the time step of the last code accepted, a code is accepted only for a later
-- step, so each code works once.
CREATE TABLE admin_totp (
    admin_id        uuid    NOT NULL,
    secret_sealed   bytea   NOT NULL,
    confirmed_at    bigint,
    last_step       bigint,
    created_at      bigint  NOT NULL,
    CONSTRAINT admin_totp_pkey PRIMARY KEY (admin_id),
    CONSTRAINT admin_totp_admin_id_fkey FOREIGN KEY (admin_id)
        REFERENCES admin_accounts (id) ON DELETE CASCADE
);
