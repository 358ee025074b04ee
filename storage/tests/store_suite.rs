//! The store suite (`suite/`), instantiated for every backend: one `#[tokio::test]` per case,
//! each on a fresh store. A new backend adds a factory and one `store_suite!` invocation
//! (PostgreSQL: `pg_suite.rs`).

#[macro_use]
mod suite;

use std::sync::Arc;

use hellojohn_storage::sqlite::SqliteStore;
use hellojohn_storage::Store;

use testkit::TempDir;

/// A fresh SQLite store in its own temp dir (the nested directory does not exist yet: `open`
/// creates it). Not migrated.
async fn sqlite_store(case: &str) -> (Arc<dyn Store>, TempDir) {
    let dir = TempDir::new(case);
    let store = SqliteStore::open(&dir.path().join("data").join("hellojohn.db"), 2)
        .expect("open sqlite store");
    (Arc::new(store), dir)
}

mod sqlite {
    store_suite_all! {
        factory = super::sqlite_store;
    }

    // ----- SQLite only --------------------------------------------------------------------

    use super::{SqliteStore, TempDir};
    use hellojohn_storage::Store;

    /// Dropping the store joins its threads and closes every connection (SQLite then
    /// checkpoints and deletes the WAL); the data is there on reopen, already migrated.
    #[tokio::test]
    async fn drop_closes_and_reopen_keeps_data() {
        let dir = TempDir::new("reopen");
        let path = dir.path().join("a").join("b").join("hj.db");
        let store = SqliteStore::open(&path, 3).expect("open");
        let status = store.migrate().await.expect("migrate");
        let tenant = store
            .create_tenant("acme", "Acme", 1)
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
                        .create_tenant(&format!("t{i}"), "T", i)
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
