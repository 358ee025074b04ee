//! The store suite (`suite/`) against PostgreSQL: every case once directly and once through
//! PgBouncer in transaction mode, each on a database of its own (`pg_support::test_db`).
//!
//! Needs the test services and FAILS (never skips) without `HJ_TEST_DATABASE_URL` and
//! `HJ_TEST_PGBOUNCER_URL`: `bash scripts/services.sh start && source .hj-test/env`.

#[macro_use]
mod suite;
mod pg_support;

use std::sync::Arc;

use pg_support::{open, test_db, test_options, TestDb};
use store::Store;

/// A fresh, unmigrated store on a new database, connected directly.
async fn pg_direct(_case: &str) -> (Arc<dyn Store>, TestDb) {
    let db = test_db().await;
    let store = open(&db.direct_url(), test_options());
    (Arc::new(store), db)
}

/// A fresh, unmigrated store on a new database, connected through PgBouncer.
async fn pg_bouncer(_case: &str) -> (Arc<dyn Store>, TestDb) {
    let db = test_db().await;
    let store = open(&db.bouncer_url(), test_options());
    (Arc::new(store), db)
}

/// The database of a case, connected directly, for writes behind the store's back.
fn pg_raw(db: &TestDb) -> suite::Raw {
    suite::Raw::Postgres(db.direct_url())
}

mod direct {
    store_suite_all! {
        factory = super::pg_direct;
        raw = super::pg_raw;
    }
}

mod pgbouncer {
    store_suite_all! {
        factory = super::pg_bouncer;
        raw = super::pg_raw;
    }

    use std::sync::Arc;

    use hellojohn_storage::postgres::PgOptions;
    use serde_json::json;
    use store::{NewRefreshToken, NewUser, RotateOutcome, Store, StoreError};
    use uuid::Uuid;

    use crate::pg_support::{open, test_db};

    fn hash() -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        h[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        h
    }

    /// Many concurrent clients through PgBouncer's transaction pooling, every store method
    /// that writes in a transaction or pipelines statements: no error at all, and in
    /// particular no "prepared statement" error (statements are unnamed).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_clients_without_prepared_statements() {
        let db = test_db().await;
        // 4 pools (one per worker thread) of 3 connections: callers share and wait.
        let store: Arc<dyn Store> = Arc::new(open(
            &db.bouncer_url(),
            PgOptions {
                pools: 4,
                max_open: 12,
                max_idle: 8,
                ..crate::pg_support::test_options()
            },
        ));
        store.migrate().await.expect("migrate");
        let tenant = store
            .create_tenant("acme", "Acme", Default::default(), 1, None)
            .await
            .expect("tenant");

        let mut tasks = Vec::new();
        for i in 0..48 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let mut errors: Vec<StoreError> = Vec::new();
                let mut note = |r: Result<(), StoreError>| {
                    if let Err(e) = r {
                        errors.push(e)
                    }
                };
                let user = NewUser {
                    id: Uuid::new_v4(),
                    tenant_id: tenant.id,
                    email: format!("user{i}@acme.test"),
                    name: None,
                    custom_fields: store::Metadata::from(json!({ "i": i })),
                };
                let first = NewRefreshToken {
                    token_hash: hash(),
                    family_id: Uuid::new_v4(),
                    user_id: user.id,
                    tenant_id: tenant.id,
                    client_id: "app".into(),
                    issued_at: 10,
                    expires_at: 1_000_000,
                };
                let email = user.email.clone();
                note(
                    store
                        .register_user(
                            user.clone(),
                            "$argon2id$h".into(),
                            Some(first.clone()),
                            None,
                            10,
                        )
                        .await
                        .map(|_| ()),
                );
                for round in 0..5i64 {
                    note(
                        store
                            .find_password_login(tenant.id, &email)
                            .await
                            .map(|found| assert!(found.is_some())),
                    );
                    let next = NewRefreshToken {
                        token_hash: hash(),
                        family_id: Uuid::new_v4(),
                        issued_at: 20 + round,
                        ..first.clone()
                    };
                    note(
                        store
                            .insert_refresh_token(next.clone(), None)
                            .await
                            .map(|_| ()),
                    );
                    let successor = NewRefreshToken {
                        token_hash: hash(),
                        ..next.clone()
                    };
                    note(
                        store
                            .rotate_refresh_token(
                                next.token_hash,
                                "app",
                                successor,
                                None,
                                30 + round,
                            )
                            .await
                            .map(|o| assert!(matches!(o, RotateOutcome::Rotated { .. }), "{o:?}")),
                    );
                    note(
                        store
                            .revoke_refresh_family(next.token_hash, None, 40 + round)
                            .await
                            .map(|t| assert!(t.is_some())),
                    );
                    note(store.ping().await);
                }
                note(
                    store
                        .revoke_all_for_user(user.id, None, 50)
                        .await
                        .map(|_| ()),
                );
                errors
            }));
        }
        let mut errors = Vec::new();
        for task in tasks {
            errors.extend(task.await.expect("client task"));
        }
        let prepared = errors
            .iter()
            .filter(|e| e.to_string().contains("prepared statement"))
            .count();
        assert_eq!(prepared, 0, "prepared-statement errors: {errors:?}");
        assert!(errors.is_empty(), "errors through PgBouncer: {errors:?}");
        let stats = store.pool_stats();
        assert_eq!((stats.in_use, stats.max), (0, 12), "{stats:?}");
        // Connections opened beyond `max_idle` for the burst stay for a grace period
        // (`pool::SURPLUS_GRACE`), within the pools' size.
        assert!(stats.idle >= 1 && stats.idle <= 12, "{stats:?}");
    }
}
