-- HelloJohn PostgreSQL schema, version 6: the authorization-code flow. The same tables as
-- migrations/sqlite/0006_authorization_codes.sql. Additive only.
--
-- `authorization_codes`: one row per code `GET /oauth2/authorize` hands out, keyed by the
-- SHA-256 of the code (the code itself is never stored), so that any instance can redeem it.
-- A code lives 10 minutes and is redeemed once (`used_at`); `family_id` is the refresh family
-- its redemption creates, so that presenting the code again revokes what it issued
-- (RFC 6749 section 4.1.2). `scopes` are those granted; `nonce`, `auth_time` and `amr` go
-- into the ID token; `code_challenge` is the PKCE S256 challenge.
CREATE TABLE authorization_codes (
    code_hash       bytea   NOT NULL,
    tenant_id       uuid    NOT NULL,
    client_id       text    NOT NULL,
    user_id         uuid    NOT NULL,
    redirect_uri    text    NOT NULL,
    scopes          text[]  NOT NULL,
    nonce           text,
    code_challenge  text,
    auth_time       bigint  NOT NULL,
    amr             text[]  NOT NULL,
    family_id       uuid    NOT NULL,
    created_at      bigint  NOT NULL,
    expires_at      bigint  NOT NULL,
    used_at         bigint,
    CONSTRAINT authorization_codes_pkey PRIMARY KEY (code_hash),
    CONSTRAINT authorization_codes_code_hash_check CHECK (octet_length(code_hash) = 32),
    CONSTRAINT authorization_codes_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- Pruning of expired codes; also the foreign key from authorization_codes to users.
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);

-- The OAuth endpoints find a client by `client_id` alone (no tenant in the request).
CREATE INDEX clients_client_id ON clients (client_id);

-- The scopes granted to a refresh family made by the code flow; NULL (every family made by a
-- password sign-in, and every existing one) means the client's scopes at each refresh, as
-- before. No default to store: no row is rewritten.
ALTER TABLE refresh_families ADD COLUMN scopes text[];
