//! PostgreSQL test plumbing shared by `pg_suite.rs` and `pg_ops.rs`: the harness variables,
//! and a fresh database per test case, reachable directly and through PgBouncer.
//!
//! These tests need the services of `scripts/services.sh` and FAIL (never skip) when the
//! `HJ_TEST_*` variables are missing.

#![allow(dead_code, unused_imports)] // each test crate uses its own part of it

use std::time::Duration;

use hellojohn_storage::postgres::{PgOptions, PgStore};

pub use testkit::pg::{admin, with_ssl, TestDb};
pub use testkit::require_env;

/// A database of its own for one test case, dropped afterwards. The suite also reaches it
/// through PgBouncer, so that must be configured too.
pub async fn test_db() -> TestDb {
    require_env("HJ_TEST_PGBOUNCER_URL");
    TestDb::create("hj_t").await
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
