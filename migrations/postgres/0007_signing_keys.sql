-- HelloJohn PostgreSQL schema, version 7: signing-key algorithms and scheduled rotation. The
-- same columns as migrations/sqlite/0007_signing_keys.sql. Additive only.
--
-- * `alg`: the JOSE algorithm of the key, `EdDSA` (Ed25519: access tokens) or `RS256`
--   (RSA 2048: ID tokens). `public_key` is the 32-byte Ed25519 key or the PKCS#1
--   RSAPublicKey DER.
-- * `activates_at`: when the key may start signing (Unix seconds). A rotation inserts the new
--   key with `activates_at` in the future, so that every verifier has fetched it from the
--   JWKS before it signs. NULL means `created_at`: every existing row (and every row an older
--   release inserts during a rolling update) is a key that signs from its creation.
-- * `retired_at` (unchanged) may now lie in the future: a rotation sets the current key's to
--   the new key's `activates_at`.
--
-- The default is a constant, stored in the catalog (PostgreSQL 11 and later): no row is
-- rewritten and every existing key stays an Ed25519 key. The CHECK is verified against the
-- existing rows under the lock: one scan of a table of a few rows.
ALTER TABLE signing_keys
    ADD COLUMN alg text NOT NULL DEFAULT 'EdDSA'
        CONSTRAINT signing_keys_alg_check CHECK (alg IN ('EdDSA', 'RS256')),
    ADD COLUMN activates_at bigint;
