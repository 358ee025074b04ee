-- HelloJohn PostgreSQL schema, version 5: OAuth client settings. The same columns as
-- migrations/sqlite/0005_oauth_clients.sql. Additive only.
--
-- * `redirect_uris`: where the authorization endpoint may send a code (exact match).
-- * `allowed_origins`: browser origins (scheme://host[:port]) allowed to call the token
--   endpoint for this client.
-- * `grant_types`: of authorization_code, refresh_token, client_credentials.
-- * `client_type`: `public` (a SPA or a native app: no secret) or `confidential` (a server
--   that keeps `secret_hash`, the SHA-256 of its secret; the secret itself is never stored).
-- * `require_email_verification`: sign-in through this client needs a verified email.
-- * `id_token_ttl`: overrides the server's ID token lifetime, in seconds.
--
-- Every column has a constant default (or is nullable), stored in the catalog (PostgreSQL 11
-- and later): no row is rewritten, existing clients become public clients of the
-- authorization-code and refresh-token grants, and older instances, which neither read nor
-- write the columns, keep working during a rolling update. The CHECK is verified against the
-- existing rows while the lock is held: one short scan of a small table.
ALTER TABLE clients
    ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}',
    ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}',
    ADD COLUMN grant_types text[] NOT NULL DEFAULT '{authorization_code,refresh_token}',
    ADD COLUMN client_type text NOT NULL DEFAULT 'public'
        CONSTRAINT clients_client_type_check CHECK (client_type IN ('public', 'confidential')),
    ADD COLUMN secret_hash text,
    ADD COLUMN require_email_verification boolean NOT NULL DEFAULT false,
    ADD COLUMN id_token_ttl bigint;
