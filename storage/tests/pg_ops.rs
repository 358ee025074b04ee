//! Operating the PostgreSQL store: TLS modes, pool bounds and timeouts, and recovery from a
//! PostgreSQL restart. (Migrations: `pg_migrations.rs`.)
//!
//! Needs the test services and FAILS (never skips) without the `HJ_TEST_*` variables:
//! `bash scripts/services.sh start && source .hj-test/env`. `restart_recovery` restarts the
//! test PostgreSQL (`scripts/services.sh restart-postgres`); the other tests of this file wait
//! for it (and it for them) through [`SERVER`].

mod pg_support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::prelude::*;

use hellojohn_storage::postgres::{PgOptions, PgStore};
use pg_support::{admin, open, require_env, test_db, test_options, with_ssl, TestDb};
use serde_json::json;
use store::{NewRefreshToken, NewUser, PoolStats, StoreError};
use tokio::sync::RwLock;
use uuid::Uuid;

/// Held shared by every test here, exclusively by `restart_recovery`.
static SERVER: RwLock<()> = RwLock::const_new(());

// ----- helpers ------------------------------------------------------------------------------

/// Whether each connection the store holds open on `db` is encrypted (from `pg_stat_ssl`).
async fn ssl_of_store_connections(db: &TestDb) -> Vec<bool> {
    let admin = admin(&require_env("HJ_TEST_DATABASE_URL")).await;
    let rows = admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE a.datname = $1 AND a.application_name = 'hellojohn'",
            &[&db.name],
        )
        .await
        .expect("pg_stat_ssl");
    rows.iter().map(|row| row.get(0)).collect()
}

fn tls_store(db: &TestDb, ssl: &str) -> Result<PgStore, StoreError> {
    PgStore::open(&with_ssl(&db.direct_url(), ssl), test_options())
}

fn ca() -> String {
    require_env("HJ_TEST_PG_TLS_CA")
}

/// A CA certificate that signed nothing the test server uses.
const UNRELATED_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBsjCCAVmgAwIBAgIUOmH881v0g43NAlvpjbm1AYt1FRUwCgYIKoZIzj0EAwIw
JjEkMCIGA1UEAwwbaGVsbG9qb2huLXVucmVsYXRlZC10ZXN0LWNhMCAXDTI2MTEy
NzIwNTMyOFoYDzIxMjYxMTAzMjA1MzI4WjAmMSQwIgYDVQQDDBtoZWxsb2pvaG4t
dW5yZWxhdGVkLXRlc3QtY2EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASN3St8
F2SXe/F59jqgBhOgFe0R3YQSsd2t7qHD694kjmz99A5F5+TybYC84inczOOeZ07u
eAiWEYUnnnybQJeYo2MwYTAdBgNVHQ4EFgQUgN36lHYOxFhXHJALuUus69kRcvkw
HwYDVR0jBBgwFoAUgN36lHYOxFhXHJALuUus69kRcvkwDwYDVR0TAQH/BAUwAwEB
/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDRwAwRAIgHqyW3Eeg9Hz6j4hh
xPQ/IWgWx+mLl++1YTpo+jj7NhACIGGNtVRrBEeVugUCxbonDUQVCjSjrKE/+9oS
HEd2sG65
-----END CERTIFICATE-----
";

fn unrelated_ca_file() -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("hj-unrelated-ca-{}.crt", Uuid::new_v4().simple()));
    std::fs::write(&path, UNRELATED_CA).expect("write the unrelated CA");
    path
}

fn assert_unavailable_mentioning<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    words: &[&str],
) {
    match result {
        Err(StoreError::Unavailable(message)) => assert!(
            words.iter().any(|w| message.contains(w)),
            "expected one of {words:?} in {message:?}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn hash() -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    h[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    h
}

/// The connection gauges of `s`: (idle, in use, max).
fn gauges(s: &PoolStats) -> (u64, u64, u64) {
    (s.idle, s.in_use, s.max)
}

/// Waits (bounded) until the store's gauges satisfy `ok`.
async fn wait_for_stats(store: &dyn Store, ok: impl Fn(&PoolStats) -> bool) -> PoolStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = store.pool_stats();
        if ok(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "pool stats never matched: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ----- TLS ----------------------------------------------------------------------------------

#[tokio::test]
async fn tls_verify_full_with_the_ca() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let ssl = format!("sslmode=verify-full&sslrootcert={}", ca());
    let store = tls_store(&db, &ssl).expect("open");
    store.ping().await.expect("verify-full with the test CA");
    store.migrate().await.expect("migrate over TLS");
    assert_eq!(ssl_of_store_connections(&db).await, vec![true]);

    // The certificate names localhost too.
    let by_name = db.direct_url().replacen("@127.0.0.1:", "@localhost:", 1);
    assert!(by_name.contains("@localhost:"), "{by_name}");
    let store = PgStore::open(&with_ssl(&by_name, &ssl), test_options()).expect("open");
    store.ping().await.expect("verify-full to localhost");
}

#[tokio::test]
async fn tls_verify_full_without_the_ca_fails_clearly() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    // The system roots do not know the test CA.
    match tls_store(&db, "sslmode=verify-full") {
        Ok(store) => assert_unavailable_mentioning(store.ping().await, &["certificate"]),
        // A machine without system roots refuses at start-up, as clearly.
        Err(StoreError::Internal(m)) => assert!(m.contains("root certificates"), "{m}"),
        Err(e) => panic!("unexpected {e:?}"),
    }
    // An unrelated CA given explicitly.
    let wrong = unrelated_ca_file();
    let store = tls_store(
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    )
    .expect("open");
    assert_unavailable_mentioning(store.ping().await, &["UnknownIssuer", "certificate"]);
    // A missing CA file is a start-up error.
    match tls_store(&db, "sslmode=verify-full&sslrootcert=/nonexistent/ca.crt") {
        Err(StoreError::Internal(m)) => assert!(m.contains("sslrootcert"), "{m}"),
        other => panic!("expected a start-up error, got {other:?}"),
    }
    let _ = std::fs::remove_file(wrong);
}

/// `verify-full` checks the host name; `verify-ca` only the chain.
#[tokio::test]
async fn tls_verify_ca_ignores_the_host_name_verify_full_does_not() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    // Connect to 127.0.0.1 but verify as if the host were another name.
    let other_name = format!(
        "{}&hostaddr=127.0.0.1",
        db.direct_url()
            .replacen("@127.0.0.1:", "@db.other-name.test:", 1)
    );
    let full = PgStore::open(
        &with_ssl(
            &other_name,
            &format!("sslmode=verify-full&sslrootcert={}", ca()),
        ),
        test_options(),
    )
    .expect("open");
    assert_unavailable_mentioning(full.ping().await, &["NotValidForName", "certificate"]);
    let ca_only = PgStore::open(
        &with_ssl(
            &other_name,
            &format!("sslmode=verify-ca&sslrootcert={}", ca()),
        ),
        test_options(),
    )
    .expect("open");
    ca_only
        .ping()
        .await
        .expect("verify-ca accepts any host name");
    assert_eq!(ssl_of_store_connections(&db).await, vec![true]);
}

#[tokio::test]
async fn tls_require_encrypts_without_verification() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let store = tls_store(&db, "sslmode=require").expect("open");
    store.ping().await.expect("require, no CA");
    assert_eq!(ssl_of_store_connections(&db).await, vec![true]);
    drop(store);

    // libpq: `require` with a root certificate verifies the chain, as verify-ca.
    let wrong = unrelated_ca_file();
    let store = tls_store(
        &db,
        &format!("sslmode=require&sslrootcert={}", wrong.display()),
    )
    .expect("open");
    assert_unavailable_mentioning(store.ping().await, &["UnknownIssuer", "certificate"]);
    let store = tls_store(&db, &format!("sslmode=require&sslrootcert={}", ca())).expect("open");
    store.ping().await.expect("require with the right CA");
    let _ = std::fs::remove_file(wrong);
}

#[tokio::test]
async fn tls_disable_and_prefer() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let plain = tls_store(&db, "sslmode=disable").expect("open");
    plain.ping().await.expect("disable");
    assert_eq!(ssl_of_store_connections(&db).await, vec![false]);
    drop(plain);
    // The connection task notices the dropped client on its next poll.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let preferred = tls_store(&db, "").expect("open");
    preferred.ping().await.expect("prefer (the default)");
    assert!(ssl_of_store_connections(&db).await.contains(&true));

    // PgBouncer here offers no TLS to clients: prefer falls back to plain, require refuses.
    let bouncer = PgStore::open(
        &with_ssl(&db.bouncer_url(), "sslmode=prefer"),
        test_options(),
    )
    .expect("open");
    bouncer
        .ping()
        .await
        .expect("prefer through PgBouncer (no TLS)");
    let bouncer = PgStore::open(
        &with_ssl(&db.bouncer_url(), "sslmode=require"),
        test_options(),
    )
    .expect("open");
    assert_unavailable_mentioning(bouncer.ping().await, &["TLS"]);
}

// ----- pools --------------------------------------------------------------------------------

#[test]
fn pool_sizes_follow_the_settings() {
    let url = "postgresql://u:p@127.0.0.1:1/db?sslmode=disable";
    let stats = |pools: usize, max_open: u32| {
        PgStore::open(
            url,
            PgOptions {
                pools,
                max_open,
                ..PgOptions::default()
            },
        )
        .expect("open (no connection is made)")
        .pool_stats()
    };
    // 25 per instance over 4 cores: 6 per core.
    assert_eq!(gauges(&stats(4, 25)), (0, 0, 24));
    assert_eq!(stats(1, 25).max, 25);
    // At least one connection per core.
    assert_eq!(stats(8, 2).max, 8);
    assert_eq!(stats(0, 3).max, 3);
}

/// A pool of one connection: while a caller holds it (its statement waits on a lock), another
/// caller waits at most the acquire timeout, then gets `Unavailable`. Once the first finishes,
/// the connection is idle again and serves the next call.
#[tokio::test]
async fn waiting_for_a_connection_is_bounded() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let store = Arc::new(open(
        &db.direct_url(),
        PgOptions {
            pools: 1,
            max_open: 1,
            max_idle: 1,
            acquire_timeout: Duration::from_millis(300),
            ..test_options()
        },
    ));
    store.migrate().await.expect("migrate");
    assert_eq!(gauges(&store.pool_stats()), (1, 0, 1));

    let locker = admin(&db.direct_url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let holder = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.list_tenants().await })
    };
    wait_for_stats(store.as_ref(), |s| s.in_use == 1).await;

    let started = Instant::now();
    let waited = store.ping().await;
    let elapsed = started.elapsed();
    assert_unavailable_mentioning(waited, &["no database connection"]);
    // The wait is counted, with its length (hellojohn_db_pool_wait_seconds_total).
    let counted = store.pool_stats();
    assert_eq!(counted.waits, 1, "{counted:?}");
    assert!(counted.wait_us >= 290_000, "{counted:?}");
    assert!(
        counted.by_method.contains(&("ping", 1))
            && counted.by_method.contains(&("list_tenants", 1)),
        "{counted:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    assert_eq!(gauges(&store.pool_stats()), (0, 1, 1));

    locker.batch_execute("COMMIT").await.expect("unlock");
    assert_eq!(holder.await.expect("task").expect("the held call"), vec![]);
    store.ping().await.expect("the connection serves again");
    assert_eq!(gauges(&store.pool_stats()), (1, 0, 1));
}

/// Connections opened for a burst beyond `max_idle` are kept for a grace period, so the next
/// burst reuses them instead of opening new ones (each a new backend on the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_max_idle_reuses_its_connections() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let store = Arc::new(open(
        &db.direct_url(),
        PgOptions {
            pools: 1,
            max_open: 4,
            max_idle: 1,
            ..test_options()
        },
    ));
    store.migrate().await.expect("migrate");
    // The test's own two connections (the watcher that counts and the locker that holds the
    // burst) live through the whole test and are not counted: a connection closed by the test
    // would linger as a backend for a moment and make the count racy.
    let watcher = admin(&db.direct_url()).await;
    let locker = admin(&db.direct_url()).await;
    let locker_pid: i32 = locker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    let backends = || async {
        watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1",
                &[&locker_pid],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    // Four calls held at once (behind a lock), then released together.
    let burst = || async {
        locker
            .batch_execute("BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.list_tenants().await })
            })
            .collect();
        wait_for_stats(store.as_ref(), |s| s.in_use == 4).await;
        locker.batch_execute("COMMIT").await.expect("unlock");
        for call in calls {
            call.await.expect("task").expect("list");
        }
    };
    burst().await;
    assert_eq!(
        wait_for_stats(store.as_ref(), |s| s.in_use == 0).await.idle,
        4,
        "the burst's connections stay idle"
    );
    let after_first = backends().await;
    assert_eq!(after_first, 4);
    burst().await;
    assert_eq!(
        backends().await,
        after_first,
        "the second burst opened none"
    );
}

/// A call that runs past the query timeout fails with `Unavailable`, and its connection (state
/// unknown) is closed, not reused.
#[tokio::test]
async fn a_stuck_call_times_out_and_its_connection_is_discarded() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let store = open(
        &db.direct_url(),
        PgOptions {
            pools: 1,
            max_open: 2,
            max_idle: 2,
            query_timeout: Duration::from_millis(400),
            ..test_options()
        },
    );
    store.migrate().await.expect("migrate");
    let locker = admin(&db.direct_url()).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    assert_unavailable_mentioning(store.list_tenants().await, &["did not finish"]);
    assert_eq!(gauges(&store.pool_stats()), (0, 0, 2));
    locker.batch_execute("COMMIT").await.expect("unlock");
    assert_eq!(store.list_tenants().await.expect("list"), vec![]);
}

/// The engine never holds a connection across a password hash: with a pool of ONE, two
/// concurrent sign-ins (read, hash, write) both complete without waiting for each other's
/// hash, and within a short acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_serves_concurrent_sign_ins() {
    let _server = SERVER.read().await;
    let db = test_db().await;
    let store: Arc<dyn Store> = Arc::new(open(
        &db.direct_url(),
        PgOptions {
            pools: 1,
            max_open: 1,
            max_idle: 1,
            acquire_timeout: Duration::from_millis(500),
            ..test_options()
        },
    ));
    store.migrate().await.expect("migrate");
    let tenant = store
        .create_tenant("acme", "Acme", Default::default(), 1, None)
        .await
        .expect("tenant");
    let mut users = Vec::new();
    for email in ["a@acme.test", "b@acme.test"] {
        let user = NewUser {
            id: Uuid::new_v4(),
            tenant_id: tenant.id,
            email: email.into(),
            name: None,
            custom_fields: store::Metadata::empty(),
        };
        let token = NewRefreshToken {
            token_hash: hash(),
            family_id: Uuid::new_v4(),
            user_id: user.id,
            tenant_id: tenant.id,
            client_id: "app".into(),
            issued_at: 1,
            expires_at: 100,
        };
        store
            .register_user(user.clone(), "$argon2id$h".into(), Some(token), None, 1)
            .await
            .expect("register");
        users.push(user);
    }
    let started = Instant::now();
    let sign_ins: Vec<_> = users
        .into_iter()
        .map(|user| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let login = store
                    .find_password_login(user.tenant_id, &user.email)
                    .await?
                    .expect("login");
                // The hash: on another thread, no connection held.
                tokio::time::sleep(Duration::from_millis(800)).await;
                store
                    .insert_refresh_token(
                        NewRefreshToken {
                            token_hash: hash(),
                            family_id: Uuid::new_v4(),
                            user_id: login.user.id,
                            tenant_id: login.user.tenant_id,
                            client_id: "app".into(),
                            issued_at: 2,
                            expires_at: 100,
                        },
                        None,
                    )
                    .await
            })
        })
        .collect();
    for sign_in in sign_ins {
        sign_in.await.expect("task").expect("sign-in");
    }
    // Both hashes overlapped: well under two hash times.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

// ----- recovery -----------------------------------------------------------------------------

#[derive(Debug)]
struct Attempt {
    user: NewUser,
    token: [u8; 32],
    finished: Instant,
    result: Result<(), StoreError>,
}

/// PostgreSQL restarts under load: calls during the restart fail with `Unavailable` (never a
/// panic or `Internal`), service resumes by itself within seconds, and every registration is
/// either wholly present or wholly absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovery() {
    let _server = SERVER.write().await;
    let services = require_env("HJ_TEST_SERVICES_SH");
    let db = test_db().await;
    let store: Arc<dyn Store> = Arc::new(open(
        &db.direct_url(),
        PgOptions {
            pools: 2,
            max_open: 4,
            max_idle: 4,
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(5),
            ..test_options()
        },
    ));
    store.migrate().await.expect("migrate");
    let tenant = store
        .create_tenant("acme", "Acme", Default::default(), 1, None)
        .await
        .expect("tenant");

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let (store, stop, attempts) =
                (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&attempts));
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let user = NewUser {
                        id: Uuid::new_v4(),
                        tenant_id: tenant.id,
                        email: format!("w{worker}-{n}@acme.test"),
                        name: None,
                        custom_fields: store::Metadata::from_json(json!({ "n": n })),
                    };
                    let token = NewRefreshToken {
                        token_hash: hash(),
                        family_id: Uuid::new_v4(),
                        user_id: user.id,
                        tenant_id: tenant.id,
                        client_id: "app".into(),
                        issued_at: 1,
                        expires_at: 100,
                    };
                    let result = store
                        .register_user(
                            user.clone(),
                            "$argon2id$h".into(),
                            Some(token.clone()),
                            None,
                            1,
                        )
                        .await
                        .map(|_| ());
                    let failed = result.is_err();
                    attempts.lock().expect("attempts").push(Attempt {
                        user,
                        token: token.token_hash,
                        finished: Instant::now(),
                        result,
                    });
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let restart = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(services)
            .arg("restart-postgres")
            .status()
    })
    .await
    .expect("restart task")
    .expect("run services.sh restart-postgres");
    assert!(restart.success(), "restart-postgres failed: {restart}");
    let restarted = Instant::now();

    // Service resumes by itself.
    loop {
        match store.ping().await {
            Ok(()) => break,
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("after the restart: {e:?}"),
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "the store did not recover within 10 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_in = restarted.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }

    let attempts = std::mem::take(&mut *attempts.lock().expect("attempts"));
    let unexpected: Vec<_> = attempts
        .iter()
        .filter(|a| !matches!(a.result, Ok(()) | Err(StoreError::Unavailable(_))))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only Unavailable may fail: {unexpected:?}"
    );
    let failed = attempts.iter().filter(|a| a.result.is_err()).count();
    assert!(
        failed > 0,
        "no call failed during the restart ({} calls)",
        attempts.len()
    );
    let ok_after = attempts
        .iter()
        .filter(|a| a.result.is_ok() && a.finished > restarted)
        .count();
    assert!(ok_after > 0, "no registration succeeded after the restart");

    // All or nothing, for every attempt.
    for attempt in &attempts {
        let user = store.get_user(attempt.user.id).await.expect("get_user");
        let login = store
            .find_password_login(tenant.id, &attempt.user.email)
            .await
            .expect("login");
        let token = store
            .find_refresh_token(attempt.token)
            .await
            .expect("token");
        let parts = [user.is_some(), login.is_some(), token.is_some()];
        assert!(
            parts == [true; 3] || parts == [false; 3],
            "half-written registration {parts:?}: {attempt:?}"
        );
        if attempt.result.is_ok() {
            assert_eq!(parts, [true; 3], "{attempt:?}");
        }
    }
    let mut messages: Vec<String> = attempts
        .iter()
        .filter_map(|a| a.result.as_ref().err().map(|e| e.to_string()))
        .collect();
    messages.sort();
    messages.dedup();
    eprintln!("restart: failures seen: {messages:#?}");
    eprintln!(
        "restart: {} calls, {failed} failed (Unavailable), recovered {recovered_in:?} after \
         restart-postgres returned",
        attempts.len()
    );
}
