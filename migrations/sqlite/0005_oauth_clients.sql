-- HelloJohn SQLite schema, version 5: OAuth client settings. Additive only; see
-- migrations/postgres/0005_oauth_clients.sql for what each column means.
--
-- Lists are JSON arrays in TEXT, like `scopes`. The defaults make every existing client a
-- public client of the authorization-code and refresh-token grants, and keep every older
-- instance (which neither reads nor writes the columns) working during a rolling update.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL
    DEFAULT '["authorization_code","refresh_token"]';
ALTER TABLE clients ADD COLUMN client_type TEXT NOT NULL DEFAULT 'public'
    CHECK (client_type IN ('public', 'confidential'));
ALTER TABLE clients ADD COLUMN secret_hash TEXT;
ALTER TABLE clients ADD COLUMN require_email_verification INTEGER NOT NULL DEFAULT 0
    CHECK (require_email_verification IN (0, 1));
ALTER TABLE clients ADD COLUMN id_token_ttl INTEGER;
