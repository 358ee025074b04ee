//! PostgreSQL test plumbing shared by `pg_suite.rs` and `pg_ops.rs`: the harness variables,
//! and a fresh database per test case, reachable directly and through PgBouncer.
//!
//! These tests need the services of `scripts/services.sh` and FAIL (never skip) when the
//! `HJ_TEST_*` variables are missing.

#![allow(dead_code)] // each test crate uses its own part of it

use std::time::Duration;

use hellojohn_storage::postgres::{PgOptions, PgStore};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// The value of a harness variable, or a panic that says how to get it.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the PostgreSQL tests need the test services. Run \
             `scripts/test.sh`, or `bash scripts/services.sh start && source .hj-test/env` \
             before `cargo test`."
        ),
    }
}

/// `url` with its database name replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with `sslmode` (and any `sslrootcert`) replaced by `params` (e.g.
/// `sslmode=verify-full&sslrootcert=/path`).
pub fn with_ssl(url: &str, params: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode=") && !p.starts_with("sslrootcert="))
        .collect();
    if !params.is_empty() {
        kept.push(params);
    }
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// A plain connection (no TLS) for administration and checks behind the store's back.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A database created for one test case, dropped (best effort, `WITH (FORCE)`) on drop.
pub struct TestDb {
    pub name: String,
    admin_url: String,
}

impl TestDb {
    /// `CREATE DATABASE hj_t_<uuid>` over a direct connection to `HJ_TEST_DATABASE_URL`.
    pub async fn create() -> TestDb {
        let admin_url = require_env("HJ_TEST_DATABASE_URL");
        require_env("HJ_TEST_PGBOUNCER_URL");
        let name = format!("hj_t_{}", Uuid::new_v4().simple());
        let client = admin(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb { name, admin_url }
    }

    /// The database, directly.
    pub fn direct_url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// The database through PgBouncer (transaction pooling; its `[databases]` has `*`).
    pub fn bouncer_url(&self) -> String {
        with_database(&require_env("HJ_TEST_PGBOUNCER_URL"), &self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: a thread of its own with a runtime of its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.ok()?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// Options for tests: small pools, generous bounds (the machine may be busy).
pub fn test_options() -> PgOptions {
    PgOptions {
        pools: 2,
        max_open: 8,
        max_idle: 4,
        max_lifetime: Duration::from_secs(300),
        acquire_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
        query_timeout: Duration::from_secs(30),
    }
}

pub fn open(url: &str, options: PgOptions) -> PgStore {
    PgStore::open(url, options).unwrap_or_else(|e| panic!("PgStore::open: {e}"))
}

#[test]
fn url_rewriting() {
    assert_eq!(
        with_database(
            "postgresql://u:p@127.0.0.1:5/hellojohn?sslmode=disable",
            "x"
        ),
        "postgresql://u:p@127.0.0.1:5/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
    assert_eq!(
        with_ssl("postgres://h/x?sslmode=disable&a=b", "sslmode=require"),
        "postgres://h/x?a=b&sslmode=require"
    );
    assert_eq!(
        with_ssl("postgres://h/x?sslmode=disable", ""),
        "postgres://h/x"
    );
}
