-- HelloJohn PostgreSQL schema, version 9: the signature algorithms a client asks for. The same
-- columns as migrations/sqlite/0009_client_algorithms.sql. Additive only: NULL keeps the
-- server's defaults (ID tokens RS256, access tokens EdDSA) for every existing client, and
-- older instances neither read nor write the columns.
ALTER TABLE clients
    ADD COLUMN id_token_alg text
        CONSTRAINT clients_id_token_alg_check CHECK (id_token_alg IN ('EdDSA', 'RS256')),
    ADD COLUMN access_token_alg text
        CONSTRAINT clients_access_token_alg_check CHECK (access_token_alg IN ('EdDSA', 'RS256'));
