-- HelloJohn PostgreSQL schema, version 8: revoked access tokens. The same tables as
-- migrations/sqlite/0008_revoked_tokens.sql. Additive only.
--
-- Access tokens are JWTs checked offline; one can still be revoked before its `exp` by its
-- `jti` (`POST /oauth2/revoke`, or the replay of the authorization code it came from). Every
-- instance keeps the live rows in memory, read again every few seconds (`revoked_at` says
-- what is new), so the check costs a hash lookup per request. A row is useless once the token
-- has expired (`expires_at`) and is pruned then.
CREATE TABLE revoked_tokens (
    jti         text    NOT NULL,
    tenant_id   uuid    NOT NULL,
    expires_at  bigint  NOT NULL,
    revoked_at  bigint  NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (jti)
);

CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- The access token a code's redemption issued, so that a replay of the code revokes it too.
ALTER TABLE authorization_codes ADD COLUMN access_jti text, ADD COLUMN access_expires_at bigint;
