-- HelloJohn PostgreSQL schema, version 1. The same tables and columns as
-- migrations/sqlite/0001_init.sql, with PostgreSQL types: uuid for UUIDs, bigint for Unix
-- seconds, bytea for token hashes (32-byte SHA-256) and key material, jsonb for custom fields,
-- text[] for lists, boolean for flags.
-- Constraints are named explicitly: the store reports a unique violation by its constraint
-- name (`users_tenant_id_email_key` is Conflict("email"), and so on).
-- Applied by the store inside one transaction, with its row in schema_migrations.
-- Migrations are additive only (old instances keep running during a rolling update).

CREATE TABLE tenants (
    id          uuid    NOT NULL,
    slug        text    NOT NULL,
    name        text    NOT NULL,
    created_at  bigint  NOT NULL,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE clients (
    id                        uuid    NOT NULL,
    tenant_id                 uuid    NOT NULL,
    client_id                 text    NOT NULL,
    name                      text    NOT NULL,
    scopes                    text[]  NOT NULL DEFAULT '{}',
    post_logout_redirect_uris text[]  NOT NULL DEFAULT '{}',
    access_token_ttl          bigint,
    refresh_token_ttl         bigint,
    created_at                bigint  NOT NULL,
    CONSTRAINT clients_pkey PRIMARY KEY (id),
    CONSTRAINT clients_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    -- Also serves find_client and list_clients(Some(tenant)).
    CONSTRAINT clients_tenant_id_client_id_key UNIQUE (tenant_id, client_id)
);

CREATE TABLE users (
    id              uuid     NOT NULL,
    tenant_id       uuid     NOT NULL,
    email           text     NOT NULL,
    email_verified  boolean  NOT NULL DEFAULT false,
    name            text,
    custom_fields   jsonb    NOT NULL DEFAULT '{}',
    disabled        boolean  NOT NULL DEFAULT false,
    created_at      bigint   NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    -- Also serves find_password_login.
    CONSTRAINT users_tenant_id_email_key UNIQUE (tenant_id, email)
);

CREATE TABLE password_identities (
    user_id        uuid    NOT NULL,
    password_hash  text    NOT NULL,
    updated_at     bigint  NOT NULL,
    CONSTRAINT password_identities_pkey PRIMARY KEY (user_id),
    CONSTRAINT password_identities_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

CREATE TABLE refresh_families (
    id          uuid    NOT NULL,
    user_id     uuid    NOT NULL,
    tenant_id   uuid    NOT NULL,
    client_id   text    NOT NULL,
    created_at  bigint  NOT NULL,
    revoked_at  bigint,
    CONSTRAINT refresh_families_pkey PRIMARY KEY (id),
    CONSTRAINT refresh_families_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- revoke_all_for_user; also the foreign key from refresh_families to users.
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash  bytea   NOT NULL,
    family_id   uuid    NOT NULL,
    user_id     uuid    NOT NULL,
    tenant_id   uuid    NOT NULL,
    client_id   text    NOT NULL,
    issued_at   bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    rotated_at  bigint,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT refresh_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_family_id_fkey FOREIGN KEY (family_id)
        REFERENCES refresh_families (id) ON DELETE CASCADE
);

-- The foreign key from refresh_tokens to refresh_families (cascades, future family listings).
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE sessions (
    id_hash     bytea   NOT NULL,
    user_id     uuid    NOT NULL,
    tenant_id   uuid    NOT NULL,
    client_id   text    NOT NULL,
    created_at  bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    revoked_at  bigint,
    CONSTRAINT sessions_pkey PRIMARY KEY (id_hash),
    CONSTRAINT sessions_id_hash_check CHECK (octet_length(id_hash) = 32),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- revoke_all_for_user; also the foreign key from sessions to users.
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE signing_keys (
    kid                    text    NOT NULL,
    public_key             bytea   NOT NULL,
    private_key_encrypted  bytea   NOT NULL,
    created_at             bigint  NOT NULL,
    retired_at             bigint,
    CONSTRAINT signing_keys_pkey PRIMARY KEY (kid)
);

-- insert_signing_key_if_none: the non-retired keys.
CREATE INDEX signing_keys_active ON signing_keys (created_at) WHERE retired_at IS NULL;
