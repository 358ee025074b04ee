-- HelloJohn SQLite schema, version 7: signing-key algorithms and scheduled rotation. Additive
-- only; see migrations/postgres/0007_signing_keys.sql for what each column means.
--
-- Existing keys become Ed25519 keys (`alg` defaults to EdDSA) that signed from their creation
-- (`activates_at` NULL reads as `created_at`).
ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'EdDSA'
    CHECK (alg IN ('EdDSA', 'RS256'));
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER;
