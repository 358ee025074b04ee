-- HelloJohn SQLite schema, version 3: app metadata. Additive only.
--
-- `custom_fields` stays what a user wrote about themselves at sign-up (user metadata): it is
-- stored and shown to the user, never put into tokens. `app_metadata` is set only by an
-- operator (`hj user set-app-metadata`) and is what the access token's `custom` claim carries.
-- The default keeps every existing row and every older instance (which neither reads nor
-- writes the column) working during a rolling update.
ALTER TABLE users ADD COLUMN app_metadata TEXT NOT NULL DEFAULT '{}';
