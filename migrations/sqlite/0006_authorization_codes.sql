-- HelloJohn SQLite schema, version 6: the authorization-code flow. Additive only; see
-- migrations/postgres/0006_authorization_codes.sql for what each column means. Lists are JSON
-- arrays in TEXT.
CREATE TABLE authorization_codes (
    code_hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
    tenant_id       TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri    TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    nonce           TEXT,
    code_challenge  TEXT,
    auth_time       INTEGER NOT NULL,
    amr             TEXT    NOT NULL,
    family_id       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);

-- The OAuth endpoints find a client by `client_id` alone (no tenant in the request).
CREATE INDEX clients_client_id ON clients (client_id);

ALTER TABLE refresh_families ADD COLUMN scopes TEXT;
