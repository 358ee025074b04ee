//! Per-core connection pools.
//!
//! The engine runs one current-thread runtime per core and calls the store from each. Each
//! calling thread is given one of `pools` pools (round-robin on its first call, then always the
//! same), so a pool's connections are opened, and their connection tasks spawned, on the
//! runtime of the threads that use them: nothing is shared between cores on the hot path.
//!
//! A pool opens at most `max` connections. A caller first takes a permit (waiting at most
//! `acquire_timeout`, FIFO), then an idle connection or, when none is left, a new one (opened
//! within `connect_timeout`). Connections return to the pool when the caller is done, unless
//! they are closed (the server went away: `Client::is_closed`) or older than `max_lifetime`.
//!
//! The pool keeps `max_idle` idle connections; connections beyond that, opened for a burst, stay
//! until they have been idle for [`SURPLUS_GRACE`]. Closing them on their return made every
//! burst above `max_idle` open new ones: under an open-loop sign-in flood on PostgreSQL, about
//! 150 connections in 25 s, each a forked backend whose first statements ran with cold caches,
//! which made those store calls 70-150 ms instead of about 1 ms
//! (perf/results/goodput-2026-11-29). With `max_idle` 0 nothing is kept.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Config, NoTls};

use super::tls::MakeRustls;
use crate::{PoolStats, StoreError};

/// How long a connection beyond `max_idle` may stay idle before it is closed.
const SURPLUS_GRACE: Duration = Duration::from_secs(10);

/// Opens connections: the parsed URL and the TLS set-up.
pub(super) struct Connector {
    pub(super) config: Config,
    pub(super) tls: Option<MakeRustls>,
    pub(super) connect_timeout: Duration,
}

impl Connector {
    /// Opens a connection and spawns its connection task on the current runtime.
    async fn connect(&self) -> Result<Client, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Internal("the postgres store is used outside a tokio runtime".into())
        })?;
        let opening = async {
            match &self.tls {
                None => {
                    let (client, connection) = self.config.connect(NoTls).await?;
                    runtime.spawn(drive(connection));
                    Ok::<_, tokio_postgres::Error>(client)
                }
                Some(tls) => {
                    let (client, connection) = self.config.connect(tls.clone()).await?;
                    runtime.spawn(drive(connection));
                    Ok(client)
                }
            }
        };
        match tokio::time::timeout(self.connect_timeout, opening).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(match super::error::db(e) {
                StoreError::Internal(m) => {
                    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {m}"))
                }
                StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("cannot connect to PostgreSQL: {m}"))
                }
                other => other,
            }),
            Err(_) => Err(StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL within {:?}",
                self.connect_timeout
            ))),
        }
    }
}

/// Runs a connection until it closes. Its client sees `is_closed()` from then on.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "postgres connection closed");
    }
}

/// Sizes of every pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max: usize,
    pub(super) max_idle: usize,
    pub(super) max_lifetime: Option<Duration>,
    pub(super) acquire_timeout: Duration,
}

/// The pools of one store and what opens their connections.
pub(super) struct Pools {
    connector: Connector,
    pools: Box<[Pool]>,
    usage: Usage,
}

/// Counters of store calls (see [`PoolStats`]): atomics, and one short-held lock per call for
/// the per-method count (a call is a database round trip: the lock costs nothing beside it).
#[derive(Default)]
struct Usage {
    calls: AtomicU64,
    waits: AtomicU64,
    wait_us: AtomicU64,
    by_method: Mutex<Vec<(&'static str, u64)>>,
}

thread_local! {
    /// This thread's pool number (taken modulo the number of pools), fixed on first use.
    static SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

fn slot() -> usize {
    SLOT.with(|slot| match slot.get() {
        Some(n) => n,
        None => {
            let n = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
            slot.set(Some(n));
            n
        }
    })
}

impl Pools {
    /// A connection of its own, outside the pools (closed when dropped): what `hj migrate`
    /// holds the migration lock on while an online migration builds indexes on another.
    pub(super) async fn dedicated(&self) -> Result<Client, StoreError> {
        self.connector.connect().await
    }

    pub(super) fn new(connector: Connector, count: usize, limits: Limits) -> Pools {
        Pools {
            connector,
            pools: (0..count.max(1)).map(|_| Pool::new(limits)).collect(),
            usage: Usage::default(),
        }
    }

    /// A connection from the calling thread's pool, for store method `what` (counted).
    pub(super) async fn acquire(&self, what: &'static str) -> Result<Conn<'_>, StoreError> {
        let pool = &self.pools[slot() % self.pools.len()];
        let u = &self.usage;
        u.calls.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut by) = u.by_method.lock() {
            match by.iter_mut().find(|(m, _)| *m == what) {
                Some((_, n)) => *n += 1,
                None => by.push((what, 1)),
            }
        }
        if pool.permits.available_permits() > 0 {
            return pool.acquire(&self.connector).await;
        }
        let started = Instant::now();
        let conn = pool.acquire(&self.connector).await;
        u.waits.fetch_add(1, Ordering::Relaxed);
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        u.wait_us.fetch_add(waited, Ordering::Relaxed);
        conn
    }

    pub(super) fn stats(&self) -> PoolStats {
        let u = &self.usage;
        let base = PoolStats {
            calls: u.calls.load(Ordering::Relaxed),
            waits: u.waits.load(Ordering::Relaxed),
            wait_us: u.wait_us.load(Ordering::Relaxed),
            by_method: u.by_method.lock().map(|b| b.clone()).unwrap_or_default(),
            ..PoolStats::default()
        };
        self.pools.iter().fold(base, |sum, pool| {
            let idle = pool.idle.lock().map(|idle| idle.len()).unwrap_or(0);
            PoolStats {
                idle: sum.idle + idle as u64,
                in_use: sum.in_use + pool.in_use.load(Ordering::Relaxed),
                max: sum.max + pool.limits.max as u64,
                ..sum
            }
        })
    }
}

struct Idle {
    client: Client,
    opened: Instant,
    /// When it was last given back.
    returned: Instant,
}

struct Pool {
    limits: Limits,
    permits: Semaphore,
    idle: Mutex<Vec<Idle>>,
    in_use: AtomicU64,
}

impl Pool {
    fn new(limits: Limits) -> Pool {
        Pool {
            limits,
            permits: Semaphore::new(limits.max),
            idle: Mutex::new(Vec::with_capacity(limits.max_idle)),
            in_use: AtomicU64::new(0),
        }
    }

    fn expired(&self, opened: Instant) -> bool {
        self.limits
            .max_lifetime
            .is_some_and(|lifetime| opened.elapsed() >= lifetime)
    }

    async fn acquire<'a>(&'a self, connector: &Connector) -> Result<Conn<'a>, StoreError> {
        let permit =
            match tokio::time::timeout(self.limits.acquire_timeout, self.permits.acquire()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(StoreError::Unavailable("the pool is closed".into())),
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "no database connection became free within {:?} (pool of {})",
                        self.limits.acquire_timeout, self.limits.max
                    )))
                }
            };
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let mut conn = Conn {
            pool: self,
            client: None,
            opened: Instant::now(),
            discard: false,
            _permit: permit,
        };
        // The newest idle connection first (the most likely to be alive); dead or expired ones
        // are closed on the way.
        loop {
            let next = match self.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(_) => None,
            };
            let Some(idle) = next else { break };
            if !idle.client.is_closed() && !self.expired(idle.opened) {
                conn.client = Some(idle.client);
                conn.opened = idle.opened;
                return Ok(conn);
            }
        }
        conn.client = Some(connector.connect().await?);
        conn.opened = Instant::now();
        Ok(conn)
    }
}

/// A connection lent by a pool. Dropping it gives it back (or closes it).
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    opened: Instant,
    discard: bool,
    // Released after `drop` has put the connection back, so the next waiter finds it idle.
    _permit: SemaphorePermit<'a>,
}

impl Conn<'_> {
    pub(super) fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Internal("pooled connection without a client".into()))
    }

    /// Closes the connection instead of returning it (its state is unknown: a timed-out call).
    pub(super) fn discard(&mut self) {
        self.discard = true;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
        let Some(client) = self.client.take() else {
            return;
        };
        if self.discard || client.is_closed() || self.pool.expired(self.opened) {
            return;
        }
        let max_idle = self.pool.limits.max_idle;
        if max_idle == 0 {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(Idle {
                client,
                opened: self.opened,
                returned: Instant::now(),
            });
            // The least recently used come first (`acquire` takes from the end): close those
            // beyond `max_idle` once they have been idle for the grace period.
            let surplus = idle.len().saturating_sub(max_idle);
            let stale = idle[..surplus]
                .iter()
                .take_while(|c| c.returned.elapsed() >= SURPLUS_GRACE)
                .count();
            idle.drain(..stale);
        }
    }
}
