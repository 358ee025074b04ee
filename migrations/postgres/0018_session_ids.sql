-- HelloJohn PostgreSQL schema, version 18: an id for every session made before migration 15
-- gave new ones a default. One UPDATE: it locks the rows it changes, not the table, so sign-ins
-- (which read users and insert sessions) go on; only a change of one of those older sessions
-- (a sign-out) waits for it. Sessions last hours, so the rows are few.
UPDATE sessions SET id = gen_random_uuid() WHERE id IS NULL;
