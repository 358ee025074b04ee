//! The PostgreSQL migrations: concurrent migrations give one schema, the applied versions match
//! the files, the schema matches SQLite's, and the additive-migrations lint (a migration may add,
//! never drop or rewrite: old instances keep running during a rolling update).
//!
//! Needs the test services and FAILS (never skips) without the `HJ_TEST_*` variables:
//! `bash scripts/services.sh start && source .hj-test/env`.

mod pg_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::prelude::*;

use hellojohn_storage::postgres::PgStore;
use hellojohn_storage::sqlite::SqliteStore;
use pg_support::{admin, open, test_db, test_options};
use store::ClientType;
use uuid::Uuid;

/// Several stores (processes) migrating one fresh database at once — directly and through
/// PgBouncer — produce one schema; every call succeeds and reports the same status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrate_gives_one_schema() {
    let db = test_db().await;
    let stores: Vec<Arc<PgStore>> = [
        db.direct_url(),
        db.direct_url(),
        db.bouncer_url(),
        db.bouncer_url(),
    ]
    .iter()
    .map(|url| Arc::new(open(url, test_options())))
    .collect();
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task").expect("concurrent migrate"));
    }
    assert!(statuses[0].pending().is_empty(), "{:?}", statuses[0]);
    assert!(statuses.iter().all(|s| *s == statuses[0]), "{statuses:?}");
    for store in &stores {
        assert_eq!(store.migration_status().await.expect("status"), statuses[0]);
    }
    // One row per version, and the schema works.
    let admin = admin(&db.direct_url()).await;
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows as usize, statuses[0].known.len());
    stores[0]
        .create_tenant("acme", "Acme", Default::default(), 1, None)
        .await
        .expect("tenant");
    assert_eq!(stores[3].list_tenants().await.expect("list").len(), 1);
}

/// The migration files on disk are exactly the versions both backends know, in step.
#[tokio::test]
async fn migration_files_match_known_versions() {
    let versions = |dir: &str| -> Vec<i64> {
        let mut v: Vec<i64> = migration_files(dir)
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                name.split('_')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{name}: expected NNNN_name.sql"))
            })
            .collect();
        v.sort_unstable();
        v
    };
    let (pg_files, sqlite_files) = (versions("postgres"), versions("sqlite"));
    assert_eq!(pg_files, sqlite_files, "both backends migrate in step");

    let db = test_db().await;
    let pg = open(&db.direct_url(), test_options());
    assert_eq!(pg.migration_status().await.expect("status").known, pg_files);
    let dir = std::env::temp_dir().join(format!("hj-pg-ops-{}", Uuid::new_v4().simple()));
    let sqlite = SqliteStore::open(&dir.join("hj.db"), 1).expect("sqlite");
    assert_eq!(
        sqlite.migration_status().await.expect("status").known,
        sqlite_files
    );
    drop(sqlite);
    let _ = std::fs::remove_dir_all(dir);
}

/// The PostgreSQL schema has the same tables and columns as the SQLite one.
#[tokio::test]
async fn schema_matches_sqlite() {
    let db = test_db().await;
    let pg = open(&db.direct_url(), test_options());
    pg.migrate().await.expect("migrate pg");
    let admin = admin(&db.direct_url()).await;
    let mut pg_columns: Vec<(String, String)> = admin
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public'",
            &[],
        )
        .await
        .expect("columns")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    pg_columns.sort();

    let dir = std::env::temp_dir().join(format!("hj-pg-ops-{}", Uuid::new_v4().simple()));
    let path = dir.join("hj.db");
    let sqlite = SqliteStore::open(&path, 1).expect("sqlite");
    sqlite.migrate().await.expect("migrate sqlite");
    drop(sqlite);
    let conn = rusqlite::Connection::open(&path).expect("open sqlite file");
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .expect("prepare");
    let mut sqlite_columns: Vec<(String, String)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    sqlite_columns.sort();
    drop(stmt);
    drop(conn);
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(pg_columns, sqlite_columns);
}

/// The migration files of `backend` before `version`, as (version, name, SQL).
fn migrations_before(backend: &str, version: i64) -> Vec<(i64, String, String)> {
    migration_files(backend)
        .iter()
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?;
            let (number, name) = stem.split_once('_')?;
            let number: i64 = number.parse().ok()?;
            let sql = std::fs::read_to_string(path).expect("migration file");
            (number < version).then(|| (number, name.to_string(), sql))
        })
        .collect()
}

/// A client written by a release before migration 5 (OAuth client settings) reads, after it,
/// as a public client of the authorization-code and refresh-token grants, with no redirect
/// URIs, origins or secret.
#[tokio::test]
async fn clients_from_before_migration_5_get_the_defaults() {
    let db = test_db().await;
    let admin = admin(&db.direct_url()).await;
    admin
        .batch_execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, \
             name text NOT NULL, applied_at bigint NOT NULL)",
        )
        .await
        .expect("schema_migrations");
    for (version, name, sql) in migrations_before("postgres", 5) {
        admin.batch_execute(&sql).await.expect("old migration");
        admin
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)",
                &[&version, &name],
            )
            .await
            .expect("bookkeeping");
    }
    let tenant_id = Uuid::new_v4();
    admin
        .execute(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, 'acme', 'Acme', 1)",
            &[&tenant_id],
        )
        .await
        .expect("old tenant");
    admin
        .execute(
            "INSERT INTO clients (id, tenant_id, client_id, name, scopes, \
             post_logout_redirect_uris, access_token_ttl, refresh_token_ttl, created_at) \
             VALUES ($1, $2, 'web', 'Web', '{openid}', '{https://acme.test/bye}', 60, NULL, 1)",
            &[&Uuid::new_v4(), &tenant_id],
        )
        .await
        .expect("old client");

    let store = open(&db.direct_url(), test_options());
    assert!(store.migrate().await.expect("migrate").pending().is_empty());
    let client = store
        .find_client(tenant_id, "web")
        .await
        .expect("find")
        .expect("the old client");
    assert_eq!(client.scopes, ["openid"]);
    assert_eq!(client.post_logout_redirect_uris, ["https://acme.test/bye"]);
    assert_eq!(client.access_token_ttl, Some(60));
    assert_eq!(client.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(client.client_type, ClientType::Public);
    assert_eq!(client.secret_hash, None);
    assert!(client.redirect_uris.is_empty() && client.allowed_origins.is_empty());
    assert!(!client.require_email_verification);
    assert_eq!(client.id_token_ttl, None);
    // An older instance's insert (without the new columns) still works after the migration.
    admin
        .execute(
            "INSERT INTO clients (id, tenant_id, client_id, name, scopes, \
             post_logout_redirect_uris, access_token_ttl, refresh_token_ttl, created_at) \
             VALUES ($1, $2, 'cli', 'CLI', '{}', '{}', NULL, NULL, 2)",
            &[&Uuid::new_v4(), &tenant_id],
        )
        .await
        .expect("an old release's insert");
    let cli = store
        .find_client(tenant_id, "cli")
        .await
        .expect("find")
        .expect("the client of the old release");
    assert_eq!(cli.client_type, ClientType::Public);
    assert_eq!(cli.grant_types, client.grant_types);
}

/// Sessions written before migration 15 get an id from it, and so do those an older release
/// inserts after it (without naming one): the admin API names every session by its id.
#[tokio::test]
async fn sessions_from_before_migration_15_get_ids() {
    let db = test_db().await;
    let admin = admin(&db.direct_url()).await;
    admin
        .batch_execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, \
             name text NOT NULL, applied_at bigint NOT NULL)",
        )
        .await
        .expect("schema_migrations");
    for (version, name, sql) in migrations_before("postgres", 15) {
        admin.batch_execute(&sql).await.expect("old migration");
        admin
            .execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 0)",
                &[&version, &name],
            )
            .await
            .expect("bookkeeping");
    }
    let (tenant_id, user_id) = (Uuid::new_v4(), Uuid::new_v4());
    admin
        .execute(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, 'acme', 'Acme', 1)",
            &[&tenant_id],
        )
        .await
        .expect("old tenant");
    admin
        .execute(
            "INSERT INTO users (id, tenant_id, email, disabled, created_at) \
             VALUES ($1, $2, 'ada@acme.test', true, 1)",
            &[&user_id, &tenant_id],
        )
        .await
        .expect("old user");
    let old_session = "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, \
                       expires_at) VALUES ($1, $2, $3, 'web', $4, 100)";
    for at in [1i64, 2] {
        admin
            .execute(
                old_session,
                &[&vec![at as u8; 32], &user_id, &tenant_id, &at],
            )
            .await
            .expect("old session");
    }

    let store = open(&db.direct_url(), test_options());
    assert!(store.migrate().await.expect("migrate").pending().is_empty());
    // An older release's insert after the migration.
    admin
        .execute(old_session, &[&vec![3u8; 32], &user_id, &tenant_id, &3i64])
        .await
        .expect("an old release's session");
    let sessions = store
        .list_sessions(store::GrantQuery::tenant(tenant_id, 10))
        .await
        .expect("list");
    assert_eq!(
        sessions.iter().map(|s| s.created_at).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let mut ids: Vec<Uuid> = sessions.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    for session in &sessions {
        assert_eq!(
            store.get_session(tenant_id, session.id).await.expect("get"),
            Some(session.clone())
        );
    }
    // A user disabled before it has no reason.
    let user = store.get_user(user_id).await.expect("get").expect("ada");
    assert_eq!((user.disabled, user.disabled_reason), (true, None));
}

/// Whether each of the listings' indexes exists and is valid (usable by queries).
async fn listing_indexes(admin: &tokio_postgres::Client) -> Vec<(String, bool)> {
    admin
        .query(
            "SELECT c.relname::text, i.indisvalid FROM pg_class c \
             JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname IN ('sessions_id_key', \
             'users_tenant_created', 'sessions_tenant_created', 'refresh_families_tenant_created') \
             ORDER BY 1",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Migration 19 builds its indexes concurrently, outside a transaction (an online migration).
/// An index an interrupted build left invalid (here: a unique build that met duplicates) is
/// dropped and built again by the next `hj migrate`, and the version is recorded only once
/// every index is valid.
#[tokio::test]
async fn the_online_migration_rebuilds_an_index_a_failed_build_left_invalid() {
    let db = test_db().await;
    let store = open(&db.direct_url(), test_options());
    store.migrate().await.expect("migrate");
    let admin = admin(&db.direct_url()).await;
    let all_valid = vec![
        ("refresh_families_tenant_created".to_string(), true),
        ("sessions_id_key".to_string(), true),
        ("sessions_tenant_created".to_string(), true),
        ("users_tenant_created".to_string(), true),
    ];
    assert_eq!(listing_indexes(&admin).await, all_valid);

    // As if a migrate had been killed during 19: its row gone, one index left invalid.
    let (tenant_id, user_id) = (Uuid::new_v4(), Uuid::new_v4());
    let same = Uuid::new_v4();
    admin
        .batch_execute(&format!(
            "DELETE FROM schema_migrations WHERE version = 19; \
             DROP INDEX sessions_id_key; \
             INSERT INTO tenants (id, slug, name, created_at) VALUES ('{tenant_id}', 'acme', 'Acme', 1); \
             INSERT INTO users (id, tenant_id, email, created_at) VALUES ('{user_id}', '{tenant_id}', 'a@acme.test', 1); \
             INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, expires_at, id) VALUES \
               ('\\x{a}', '{user_id}', '{tenant_id}', 'web', 1, 100, '{same}'), \
               ('\\x{b}', '{user_id}', '{tenant_id}', 'web', 2, 100, '{same}');",
            a = "aa".repeat(32),
            b = "bb".repeat(32),
        ))
        .await
        .expect("setup");
    let failed = admin
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY sessions_id_key ON sessions (id)")
        .await;
    assert!(failed.is_err(), "duplicates fail the unique build");
    let mut left = listing_indexes(&admin).await;
    left.retain(|(name, _)| name == "sessions_id_key");
    assert_eq!(
        left,
        [("sessions_id_key".to_string(), false)],
        "left invalid"
    );
    // While the duplicates stay, the rebuild fails too: the migration is not recorded.
    let err = store.migrate().await.expect_err("duplicates");
    assert!(err.to_string().contains("19"), "{err}");
    assert!(!store
        .migration_status()
        .await
        .expect("status")
        .applied
        .contains(&19));
    admin
        .batch_execute("UPDATE sessions SET id = gen_random_uuid() WHERE created_at = 2")
        .await
        .expect("fix");
    let status = store.migrate().await.expect("migrate again");
    assert!(status.pending().is_empty(), "{status:?}");
    assert_eq!(listing_indexes(&admin).await, all_valid);
}

fn migrations_dir(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("migrations")
        .join(backend)
}

fn migration_files(backend: &str) -> Vec<PathBuf> {
    let dir = migrations_dir(backend);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    files
}

/// SQL without comments and with string literals emptied, so that only code is linted.
fn code_only(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '\'' => {
                // '' inside a literal is an escaped quote: the loop re-enters the literal.
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
                out.push_str("''");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The backward-incompatible statements of a migration: what would break the previous
/// release still running during a rolling update (dropping or renaming anything, changing a
/// column's type, making a column mandatory, deleting data). One line per finding.
fn destructive_statements(sql: &str) -> Vec<String> {
    let mut findings = Vec::new();
    for statement in code_only(sql).split(';') {
        let upper = statement.to_uppercase();
        let words: Vec<&str> = upper
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '"'))
            .filter(|w| !w.is_empty())
            .collect();
        let at = |i: usize| words.get(i).copied().unwrap_or("");
        let mut flag = |what: &str| {
            findings.push(format!(
                "{what}: {}",
                statement.split_whitespace().collect::<Vec<_>>().join(" ")
            ))
        };
        for (i, word) in words.iter().enumerate() {
            match *word {
                // DROP NOT NULL only relaxes; every other DROP removes something.
                "DROP" if !(at(i + 1) == "NOT" && at(i + 2) == "NULL") => flag("DROP"),
                "RENAME" => flag("RENAME"),
                "TRUNCATE" => flag("TRUNCATE"),
                "DELETE" if at(i + 1) == "FROM" => flag("DELETE"),
                "TYPE"
                    if i >= 2
                        && (at(i - 1) == "DATA" && at(i - 2) == "SET"
                            || matches!(at(i - 2), "ALTER" | "COLUMN")) =>
                {
                    flag("column TYPE change")
                }
                "SET" if at(i + 1) == "NOT" && at(i + 2) == "NULL" => flag("SET NOT NULL"),
                _ => {}
            }
        }
        // ADD COLUMN ... NOT NULL without a DEFAULT: the previous release's inserts fail.
        if upper.trim_start().starts_with("ALTER TABLE") {
            for added in upper.split(" ADD ").skip(1) {
                let column = added.split(',').next().unwrap_or_default();
                if column.contains("NOT NULL")
                    && !column.contains("DEFAULT")
                    && !column.trim_start().starts_with("CONSTRAINT")
                {
                    flag("ADD COLUMN NOT NULL without DEFAULT");
                }
            }
        }
    }
    findings
}

#[test]
fn migrations_are_additive() {
    let mut findings = Vec::new();
    for backend in ["postgres", "sqlite"] {
        for file in migration_files(backend) {
            let sql = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for finding in destructive_statements(&sql) {
                findings.push(format!("{}: {finding}", file.display()));
            }
        }
    }
    assert!(
        findings.is_empty(),
        "migrations must be additive and backward-compatible (the previous release keeps \
         running during a rolling update):\n{}",
        findings.join("\n")
    );
}

#[test]
fn the_lint_catches_destructive_statements() {
    for bad in [
        "DROP TABLE users",
        "drop table if exists users",
        "alter table users drop column email",
        "ALTER TABLE users DROP email",
        "ALTER TABLE users DROP CONSTRAINT users_tenant_id_email_key",
        "DROP INDEX sessions_user",
        "ALTER TABLE users RENAME COLUMN email TO mail",
        "ALTER TABLE users RENAME TO people",
        "alter table users alter column email type varchar(10)",
        "ALTER TABLE users ALTER email TYPE text USING email::text",
        "ALTER TABLE users ALTER COLUMN email SET DATA TYPE text",
        "ALTER TABLE users ALTER COLUMN name SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN name DROP DEFAULT",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL",
        "ALTER TABLE users ADD COLUMN a int, ADD COLUMN b int NOT NULL",
        "TRUNCATE sessions",
        "DELETE FROM sessions WHERE revoked_at IS NOT NULL",
        "CREATE TABLE x (a int); DROP TABLE y",
    ] {
        assert!(!destructive_statements(bad).is_empty(), "not caught: {bad}");
    }
    for good in [
        "CREATE TABLE x (a int NOT NULL, b uuid REFERENCES y (id) ON DELETE CASCADE)",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free'",
        "ALTER TABLE users ADD COLUMN nickname text",
        "ALTER TABLE users ADD CONSTRAINT users_x CHECK (x IS NOT NULL) NOT VALID",
        "ALTER TABLE users ALTER COLUMN name DROP NOT NULL",
        "ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free'",
        "CREATE INDEX i ON t (a) WHERE b IS NULL",
        "-- DROP TABLE users (only a comment)\nCREATE TABLE z (a int)",
        "/* RENAME me */ CREATE TABLE z (a int)",
        "INSERT INTO t (note) VALUES ('drop table x; rename')",
        "CREATE TABLE t (kind text NOT NULL, type text)",
    ] {
        assert_eq!(destructive_statements(good), Vec::<String>::new(), "{good}");
    }
}
