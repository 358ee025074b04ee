-- HelloJohn SQLite schema, version 13: per-tenant issuers. Additive only; see
-- migrations/postgres/0013_tenant_issuers.sql for what each column means.
ALTER TABLE tenants ADD COLUMN issuer_mode TEXT NOT NULL DEFAULT 'global'
    CHECK (issuer_mode IN ('global', 'path'));
ALTER TABLE signing_keys ADD COLUMN tenant_id TEXT REFERENCES tenants (id) ON DELETE CASCADE;
-- insert_signing_key_if_none and rotate_signing_key of one tenant's keys.
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, alg) WHERE tenant_id IS NOT NULL;
