-- HelloJohn SQLite schema, version 15: what the admin API needs of users and sessions. Additive
-- only; see migrations/postgres/0015_admin_users.sql for what each column means.
ALTER TABLE users ADD COLUMN disabled_reason TEXT;

-- A session's id (a UUID, the cookie's hash stays the key). SQLite cannot default a column
-- added later to a random value, so existing rows get one here and later inserts that name
-- none (an older release's, during a rolling update or after a rollback) get one from the
-- trigger; this release's inserts name one.
ALTER TABLE sessions ADD COLUMN id TEXT;
UPDATE sessions SET id = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
    || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1)
    || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))
    WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id ON sessions (id);
CREATE TRIGGER sessions_id_default AFTER INSERT ON sessions FOR EACH ROW WHEN NEW.id IS NULL
BEGIN
    UPDATE sessions SET id = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2)))
        || '-4' || substr(lower(hex(randomblob(2))), 2) || '-'
        || substr('89ab', 1 + (random() & 3), 1) || substr(lower(hex(randomblob(2))), 2) || '-'
        || lower(hex(randomblob(6)))
        WHERE id_hash = NEW.id_hash;
END;

-- The listings' indexes: migration 19 (as on PostgreSQL, where they are built concurrently).
