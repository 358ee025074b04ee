-- HelloJohn SQLite schema, version 9: the signature algorithms a client asks for. Additive
-- only; see migrations/postgres/0009_client_algorithms.sql.
ALTER TABLE clients ADD COLUMN id_token_alg TEXT CHECK (id_token_alg IN ('EdDSA', 'RS256'));
ALTER TABLE clients ADD COLUMN access_token_alg TEXT
    CHECK (access_token_alg IN ('EdDSA', 'RS256'));
