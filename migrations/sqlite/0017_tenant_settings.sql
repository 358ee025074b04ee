-- HelloJohn SQLite schema, version 17: a tenant's settings and their version. Additive only;
-- see migrations/postgres/0017_tenant_settings.sql.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN settings_version INTEGER NOT NULL DEFAULT 0;
