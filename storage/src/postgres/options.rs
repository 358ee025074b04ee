//! The pool sizes and time bounds of a PostgreSQL store.

use std::time::Duration;

/// Pool sizes and time bounds of a [`PgStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Number of pools: one per event loop (`HELLOJOHN_SHARDS`). At least 1.
    pub pools: usize,
    /// Connections per instance (`HELLOJOHN_DB_MAX_OPEN_CONNS`), divided across the pools;
    /// each pool gets `max(1, max_open / pools)`.
    pub max_open: u32,
    /// Idle connections kept per instance (`HELLOJOHN_DB_MAX_IDLE_CONNS`), divided likewise
    /// (`max(1, max_idle / pools)`, at most the pool's size); 0 keeps none.
    pub max_idle: u32,
    /// Connections older than this are closed instead of reused
    /// (`HELLOJOHN_DB_CONN_MAX_LIFETIME`); zero means no limit.
    pub max_lifetime: Duration,
    /// The longest a call waits for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// The longest opening a connection (TCP, TLS, authentication) may take. A
    /// `connect_timeout` in the URL bounds the TCP connect alone.
    pub connect_timeout: Duration,
    /// The longest one store call may hold its connection (its statements and transaction,
    /// lock waits included); past it the call fails with `Unavailable` and the connection is
    /// closed. Migrations are not bounded.
    pub query_timeout: Duration,
}

impl Default for PgOptions {
    /// The engine's defaults: 25 connections, 10 idle, 5 minutes of life, one pool; 2 s to get
    /// a connection, 5 s to open one, 30 s per call.
    fn default() -> PgOptions {
        PgOptions {
            pools: 1,
            max_open: 25,
            max_idle: 10,
            max_lifetime: Duration::from_secs(300),
            acquire_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(30),
        }
    }
}
