-- HelloJohn PostgreSQL schema, version 17: a tenant's settings (what it sets differently from
-- the server's defaults: token and session lifetimes, the password policy, branding), one JSON
-- object read by store::TenantSettings, and the version the admin API's ETag names. Additive
-- only: an older release neither reads nor writes them.
ALTER TABLE tenants ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE tenants ADD COLUMN settings_version bigint NOT NULL DEFAULT 0;
