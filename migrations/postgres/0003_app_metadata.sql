-- HelloJohn PostgreSQL schema, version 3: app metadata. The same column as
-- migrations/sqlite/0003_app_metadata.sql. Additive only.
--
-- `custom_fields` stays what a user wrote about themselves at sign-up (user metadata): it is
-- stored and shown to the user, never put into tokens. `app_metadata` is set only by an
-- operator (`hj user set-app-metadata`) and is what the access token's `custom` claim carries.
-- A constant default is stored in the catalog (PostgreSQL 11 and later), so adding the column
-- rewrites no rows and holds its lock only for a moment; older instances, which neither read
-- nor write it, keep working during a rolling update.
ALTER TABLE users ADD COLUMN app_metadata jsonb NOT NULL DEFAULT '{}';
