//! The store suite (`suite/`), instantiated for every backend: one `#[tokio::test]` per case,
//! each on a fresh store. A new backend adds a factory and one `store_suite!` invocation
//! (PostgreSQL: `pg_suite.rs`).

#[macro_use]
mod suite;

use std::sync::Arc;

use hellojohn_storage::sqlite::SqliteStore;
use store::prelude::*;

use testkit::TempDir;

/// A fresh SQLite store in its own temp dir (the nested directory does not exist yet: `open`
/// creates it). Not migrated.
async fn sqlite_store(case: &str) -> (Arc<dyn Store>, TempDir) {
    let dir = TempDir::new(case);
    let store = SqliteStore::open(&dir.path().join("data").join("hellojohn.db"), 2)
        .expect("open sqlite store");
    (Arc::new(store), dir)
}

/// The database file of [`sqlite_store`]'s store, for writes behind its back.
fn sqlite_raw(dir: &TempDir) -> suite::Raw {
    suite::Raw::Sqlite(dir.path().join("data").join("hellojohn.db"))
}

mod sqlite {
    store_suite_all! {
        factory = super::sqlite_store;
        raw = super::sqlite_raw;
    }

    // ----- SQLite only --------------------------------------------------------------------

    use super::{SqliteStore, TempDir};
    use store::prelude::*;

    /// Dropping the store joins its threads and closes every connection (SQLite then
    /// checkpoints and deletes the WAL); the data is there on reopen, already migrated.
    #[tokio::test]
    async fn drop_closes_and_reopen_keeps_data() {
        let dir = TempDir::new("reopen");
        let path = dir.path().join("a").join("b").join("hj.db");
        let store = SqliteStore::open(&path, 3).expect("open");
        let status = store.migrate().await.expect("migrate");
        let tenant = store
            .create_tenant("acme", "Acme", Default::default(), 1, None)
            .await
            .expect("tenant");
        assert!(path.exists());
        drop(store);
        assert!(
            !path.with_extension("db-wal").exists(),
            "the WAL is gone: all closed"
        );

        let store = SqliteStore::open(&path, 0).expect("reopen with 0 readers (uses 1)");
        assert_eq!(store.migration_status().await.expect("status"), status);
        assert_eq!(store.migrate().await.expect("migrate again"), status);
        assert_eq!(store.find_tenant("acme").await.expect("find"), Some(tenant));
        drop(store);
    }

    /// A client written by a release before migration 5 (OAuth client settings) reads, after
    /// it, as a public client of the authorization-code and refresh-token grants, with no
    /// redirect URIs, origins or secret; an older instance's insert still works after it.
    #[tokio::test]
    async fn clients_from_before_migration_5_get_the_defaults() {
        let dir = TempDir::new("pre-oauth-clients");
        let path = dir.path().join("hj.db");
        let tenant_id = uuid::Uuid::new_v4();
        let old_insert = |conn: &rusqlite::Connection, client_id: &str| {
            conn.execute(
                "INSERT INTO clients (id, tenant_id, client_id, name, scopes, \
                 post_logout_redirect_uris, access_token_ttl, refresh_token_ttl, created_at) \
                 VALUES (?1, ?2, ?3, 'Web', '[\"openid\"]', '[\"https://acme.test/bye\"]', 60, \
                 NULL, 1)",
                rusqlite::params![
                    uuid::Uuid::new_v4().to_string(),
                    tenant_id.to_string(),
                    client_id
                ],
            )
            .expect("an old release's client insert");
        };
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            apply_migrations_before(&conn, 5);
            conn.execute(
                "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, 'acme', 'Acme', 1)",
                [tenant_id.to_string()],
            )
            .expect("old tenant");
            old_insert(&conn, "web");
        }

        let store = SqliteStore::open(&path, 1).expect("open store");
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
        assert_eq!(client.client_type, store::ClientType::Public);
        assert_eq!(client.secret_hash, None);
        assert!(client.redirect_uris.is_empty() && client.allowed_origins.is_empty());
        assert!(!client.require_email_verification);
        assert_eq!(client.id_token_ttl, None);
        drop(store);

        old_insert(&rusqlite::Connection::open(&path).expect("reopen"), "cli");
        let store = SqliteStore::open(&path, 1).expect("open store");
        let cli = store
            .find_client(tenant_id, "cli")
            .await
            .expect("find")
            .expect("the old release's client");
        assert_eq!(cli.client_type, store::ClientType::Public);
        assert_eq!(cli.grant_types, client.grant_types);
    }

    /// Sessions written before migration 15 get an id from it, and so do those an older
    /// release inserts after it (without naming one: the trigger gives one).
    #[tokio::test]
    async fn sessions_from_before_migration_15_get_ids() {
        let dir = TempDir::new("pre-session-ids");
        let path = dir.path().join("hj.db");
        let (tenant_id, user_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let old_session = |conn: &rusqlite::Connection, at: i64| {
            conn.execute(
                "INSERT INTO sessions (id_hash, user_id, tenant_id, client_id, created_at, \
                 expires_at) VALUES (randomblob(32), ?1, ?2, 'web', ?3, 100)",
                rusqlite::params![user_id.to_string(), tenant_id.to_string(), at],
            )
            .expect("an old release's session");
        };
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            apply_migrations_before(&conn, 15);
            conn.execute(
                "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, 'acme', 'Acme', 1)",
                [tenant_id.to_string()],
            )
            .expect("old tenant");
            conn.execute(
                "INSERT INTO users (id, tenant_id, email, disabled, created_at) \
                 VALUES (?1, ?2, 'ada@acme.test', 1, 1)",
                [user_id.to_string(), tenant_id.to_string()],
            )
            .expect("old user");
            old_session(&conn, 1);
            old_session(&conn, 2);
        }
        let store = SqliteStore::open(&path, 1).expect("open store");
        assert!(store.migrate().await.expect("migrate").pending().is_empty());
        drop(store);
        old_session(&rusqlite::Connection::open(&path).expect("reopen"), 3);
        let store = SqliteStore::open(&path, 1).expect("open store");
        let sessions = store
            .list_sessions(store::GrantQuery::tenant(tenant_id, 10))
            .await
            .expect("list");
        assert_eq!(
            sessions.iter().map(|s| s.created_at).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let mut ids: Vec<uuid::Uuid> = sessions.iter().map(|s| s.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        for session in &sessions {
            assert_eq!(
                store.get_session(tenant_id, session.id).await.expect("get"),
                Some(session.clone())
            );
        }
        let user = store.get_user(user_id).await.expect("get").expect("ada");
        assert_eq!((user.disabled, user.disabled_reason), (true, None));
    }

    /// Applies the migration files before `version` as a release that shipped them did.
    fn apply_migrations_before(conn: &rusqlite::Connection, version: i64) {
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, \
             name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .expect("schema_migrations");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for file in files {
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let (number, name) = stem.split_once('_').expect("NNNN_name.sql");
            let number: i64 = number.parse().expect("version");
            if number >= version {
                continue;
            }
            conn.execute_batch(&std::fs::read_to_string(&file).expect("read"))
                .expect("old migration");
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?1, ?2, 0)",
                rusqlite::params![number, name],
            )
            .expect("bookkeeping");
        }
    }

    /// Reads run on reader threads while the writer is busy: many concurrent reads and writes
    /// all complete, and a store dropped with jobs still queued shuts down cleanly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn readers_and_writer_in_parallel() {
        let dir = TempDir::new("parallel");
        let store: std::sync::Arc<dyn Store> =
            std::sync::Arc::new(SqliteStore::open(&dir.path().join("hj.db"), 4).expect("open"));
        store.migrate().await.expect("migrate");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = std::sync::Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    store
                        .create_tenant(&format!("t{i}"), "T", Default::default(), i, None)
                        .await
                        .map(|_| ())
                } else {
                    store.list_tenants().await.map(|_| ())
                }
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("store call");
        }
        assert_eq!(store.list_tenants().await.expect("list").len(), 100);
        // A future dropped unpolled queues nothing (store futures are lazy).
        let unpolled = store.ping();
        drop(unpolled);
        drop(store);
    }
}
