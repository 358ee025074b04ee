-- HelloJohn PostgreSQL schema, version 13: per-tenant issuers (HelloJohn's `issuerMode`). The
-- same columns as migrations/sqlite/0013_tenant_issuers.sql. Additive only.
--
-- * `tenants.issuer_mode`: `global` (the default, every existing tenant: tokens carry the
--   server's issuer and are signed by the global keys) or `path` (the tenant's issuer is
--   `{base}/t/{slug}` and its tokens are signed by its own keys).
-- * `signing_keys.tenant_id`: NULL for the global keys (every existing row, and every row an
--   older release inserts during a rolling update), else the tenant whose own key it is.
--
-- Both defaults are constants kept in the catalog: no row is rewritten. The CHECK scans the
-- tenants table once under the lock.
ALTER TABLE tenants
    ADD COLUMN issuer_mode text NOT NULL DEFAULT 'global'
        CONSTRAINT tenants_issuer_mode_check CHECK (issuer_mode IN ('global', 'path'));
ALTER TABLE signing_keys
    ADD COLUMN tenant_id uuid
        CONSTRAINT signing_keys_tenant_id_fkey REFERENCES tenants (id) ON DELETE CASCADE;
-- insert_signing_key_if_none and rotate_signing_key of one tenant's keys.
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, alg) WHERE tenant_id IS NOT NULL;
