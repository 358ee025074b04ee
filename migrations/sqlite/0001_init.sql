-- HelloJohn SQLite schema, version 1.
-- UUIDs are TEXT in canonical hyphenated lower-case form; times are Unix seconds (INTEGER);
-- token hashes are 32-byte BLOBs (SHA-256 of the secret); JSON columns are TEXT.
-- Applied by the store inside one transaction, with its row in schema_migrations.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    tenant_id                 TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id                 TEXT    NOT NULL,
    name                      TEXT    NOT NULL,
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    access_token_ttl          INTEGER,
    refresh_token_ttl         INTEGER,
    created_at                INTEGER NOT NULL,
    -- Also serves find_client and list_clients(Some(tenant)).
    UNIQUE (tenant_id, client_id)
) STRICT;

CREATE TABLE users (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email           TEXT    NOT NULL,
    email_verified  INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    name            TEXT,
    custom_fields   TEXT    NOT NULL DEFAULT '{}',
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      INTEGER NOT NULL,
    -- Also serves find_password_login.
    UNIQUE (tenant_id, email)
) STRICT;

CREATE TABLE password_identities (
    user_id        TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    password_hash  TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_families (
    id          TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;

-- revoke_all_for_user; also the foreign key from refresh_families to users.
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id   TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    rotated_at  INTEGER
) STRICT, WITHOUT ROWID;

-- The foreign key from refresh_tokens to refresh_families (cascades, future family listings).
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE sessions (
    id_hash     BLOB    NOT NULL PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT, WITHOUT ROWID;

-- revoke_all_for_user; also the foreign key from sessions to users.
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE signing_keys (
    kid                    TEXT    NOT NULL PRIMARY KEY,
    public_key             BLOB    NOT NULL,
    private_key_encrypted  BLOB    NOT NULL,
    created_at             INTEGER NOT NULL,
    retired_at             INTEGER
) STRICT;

-- insert_signing_key_if_none: the non-retired keys.
CREATE INDEX signing_keys_active ON signing_keys (created_at) WHERE retired_at IS NULL;
