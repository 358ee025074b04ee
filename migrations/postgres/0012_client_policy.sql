-- HelloJohn PostgreSQL schema, version 12: first- and third-party clients, the consents users
-- give third-party clients, and how a cookie session was authenticated. The same tables and
-- columns as migrations/sqlite/0012_client_policy.sql. Additive only: every existing client
-- stays first-party, every existing session reads as a password sign-in, and older instances
-- neither read nor write the new column values (the old `hj_insert_session` stays).

-- A third-party client's tokens cannot manage the account, and users consent to it once per
-- scope set on the hosted page.
ALTER TABLE clients ADD COLUMN third_party boolean NOT NULL DEFAULT false;

-- The scopes a user granted a third-party client (space separated, sorted), kept until the
-- user or the client goes.
CREATE TABLE consents (
    user_id     uuid    NOT NULL,
    tenant_id   uuid    NOT NULL,
    client_id   text    NOT NULL,
    scopes      text    NOT NULL,
    granted_at  bigint  NOT NULL,
    CONSTRAINT consents_pkey PRIMARY KEY (user_id, client_id),
    CONSTRAINT consents_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
);

-- RFC 8176 methods of the sign-in that started a cookie session (space separated); NULL for
-- sessions of older releases, read as `pwd`.
ALTER TABLE sessions ADD COLUMN amr text;

-- A cookie session with its `amr`: an overload of migration 4's function, so an older
-- instance keeps calling the six-argument one during a rolling upgrade.
CREATE FUNCTION hj_insert_session(
    p_id_hash bytea, p_user_id uuid, p_tenant_id uuid, p_client_id text, p_created_at bigint,
    p_expires_at bigint, p_amr text
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at, amr)
    VALUES (p_id_hash, p_user_id, p_tenant_id, p_client_id, p_created_at, p_expires_at, p_amr);
    RETURN true;
END
$$;
