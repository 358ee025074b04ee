//! Redis, optional shared state for several instances: the distributed GCRA rate limit, the
//! session cache, refresh-family revocation marks and the guards of outbox attempts (mail and
//! webhook deliveries).
//!
//! [`Redis`] wraps one multiplexed connection (standalone, `redis://` or `rediss://`) or one
//! cluster connection (`redis+cluster://n1:6379,n2:6379/0`, `rediss+cluster://…`). Its I/O runs
//! on a dedicated `hj-redis` thread with its own runtime: connections are made and driven there,
//! never on a shard's event loop, so a shard only sends a command and awaits the reply.
//!
//! Redis is never allowed to slow a request down or fail it:
//! * every operation has a short deadline (250 ms by default);
//! * a connection fault or a timeout opens a circuit breaker: until it closes, operations fail at
//!   once with [`RedisError::Unavailable`] and the caller serves locally (local limiter, database
//!   reads);
//! * the `hj-redis` thread pings every second while the breaker is closed (so a dead Redis is
//!   noticed without traffic) and, while it is open, builds a fresh connection every second;
//!   the first that answers closes the breaker.
//!
//! Keys are designed for Redis Cluster: every call touches one key (one hash slot). A session's
//! key is its cookie's SHA-256 (the cookie itself is never sent); an account's key holds no email.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, MultiplexedConnection};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Script, Value};

use uuid::Uuid;

mod gcra;
mod outbox;
mod scripts;
mod sessions;
#[cfg(test)]
mod tests;

pub use crate::model::CachedSession;
use crate::model::TokenHash;
pub use outbox::{AttemptLock, OutboxAttempt};
use scripts::{ATTEMPT_LOCK_LUA, ATTEMPT_RELEASE_LUA};
pub use scripts::{GCRA_LUA, GCRA_REFUND_LUA};

/// What goes wrong with a Redis operation. The caller always has a local answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL cannot be used (never echoes the URL: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The circuit breaker is open: Redis was unreachable recently.
    #[error("redis is unavailable")]
    Unavailable,
    /// The operation did not finish within its deadline.
    #[error("redis operation timed out")]
    Timeout,
    /// Redis answered with an error, or the reply had an unexpected shape.
    #[error("redis: {0}")]
    Failed(String),
}

/// How the client behaves. Defaults suit production.
#[derive(Clone)]
pub struct RedisOptions {
    /// Prepended to every key (`hj:` by default). Tests use their own to stay apart.
    pub key_prefix: String,
    /// Deadline of one operation.
    pub op_timeout: Duration,
    /// Deadline of one connection attempt.
    pub connect_timeout: Duration,
    /// Heartbeat while up; reconnect attempts while down.
    pub probe_interval: Duration,
    /// Called once for every operation that could not use Redis (the caller serves locally).
    pub on_fallback: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "hj:".to_string(),
            op_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_millis(500),
            probe_interval: Duration::from_secs(1),
            on_fallback: None,
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("key_prefix", &self.key_prefix)
            .field("op_timeout", &self.op_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("probe_interval", &self.probe_interval)
            .finish_non_exhaustive()
    }
}

/// The answer of one GCRA call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraReply {
    pub allowed: bool,
    /// Units left after this call.
    pub remaining: u64,
    /// When denied: how long until one unit is available.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset: Duration,
}

/// Where the connections go: parsed from the URL once, reused for every reconnect.
enum Target {
    Single(::redis::Client),
    Cluster(ClusterClient),
}

/// A connection: clones share it (requests are multiplexed over it).
#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A signed-out session's cache value; never valid JSON, so never mistaken for a session.
const TOMBSTONE: &str = "-";
/// Invalidations kept while Redis is unreachable, written once it is back.
const MAX_PENDING: usize = 10_000;

/// An invalidation that could not be written while Redis was down.
#[derive(Debug, Clone)]
enum Pending {
    Session(TokenHash, Duration),
    User(Uuid, Duration),
    Family(Uuid, Duration),
}

struct Inner {
    target: Target,
    opts: RedisOptions,
    conn: RwLock<Option<Conn>>,
    /// The circuit breaker: closed (`true`) while Redis answers.
    up: AtomicBool,
    script: Script,
    attempt_lock: Script,
    attempt_release: Script,
    refund: Script,
    pending: Mutex<VecDeque<Pending>>,
    kind: &'static str,
}

/// The Redis client of one instance. Cheap to clone; shared by every shard.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("kind", &self.inner.kind)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// Splits `redis+cluster://[user:pass@]h1:p1,h2:p2[/db][?query]` into node URLs.
fn cluster_nodes(url: &str) -> Result<Vec<String>, RedisError> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("redis+cluster://") {
        ("redis", r)
    } else if let Some(r) = url.strip_prefix("rediss+cluster://") {
        ("rediss", r)
    } else {
        return Err(RedisError::InvalidUrl(
            "expected redis+cluster:// or rediss+cluster://".to_string(),
        ));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let db = path.trim_start_matches('/');
    if !(db.is_empty() || db == "0") {
        return Err(RedisError::InvalidUrl(
            "Redis Cluster has only database 0".to_string(),
        ));
    }
    let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let h = if h.starts_with('[') {
                if h.contains("]:") {
                    h.to_string()
                } else {
                    format!("{h}:6379")
                }
            } else if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:6379")
            };
            match userinfo {
                Some(u) => format!("{scheme}://{u}@{h}/{query}"),
                None => format!("{scheme}://{h}/{query}"),
            }
        })
        .collect();
    if nodes.is_empty() {
        return Err(RedisError::InvalidUrl(
            "a cluster URL needs at least one host:port".to_string(),
        ));
    }
    Ok(nodes)
}

fn target(url: &str, opts: &RedisOptions) -> Result<Target, RedisError> {
    let scheme = url.split("://").next().unwrap_or("");
    match scheme {
        "redis" | "rediss" => ::redis::Client::open(url)
            .map(Target::Single)
            .map_err(|e| RedisError::InvalidUrl(format!("{:?}", e.kind()))),
        "redis+cluster" | "rediss+cluster" => {
            let nodes = cluster_nodes(url)?;
            ClusterClient::builder(nodes)
                .connection_timeout(opts.connect_timeout)
                .response_timeout(opts.op_timeout)
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()
                .map(Target::Cluster)
                .map_err(|e| RedisError::InvalidUrl(format!("{:?}", e.kind())))
        }
        _ => Err(RedisError::InvalidUrl(
            "the scheme must be redis, rediss, redis+cluster or rediss+cluster".to_string(),
        )),
    }
}

/// Whether an error means the connection (not the command) is in trouble.
fn is_connection_fault(e: &::redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ::redis::ErrorKind::ClusterDown
                | ::redis::ErrorKind::MasterDown
                | ::redis::ErrorKind::TryAgain
                | ::redis::ErrorKind::BusyLoadingError
                | ::redis::ErrorKind::ReadOnly
        )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn micros(v: i64) -> Duration {
    Duration::from_micros(u64::try_from(v).unwrap_or(0))
}

impl Redis {
    /// Parses the URL, starts the `hj-redis` thread and makes the first connection attempt.
    /// Only a bad URL (or no thread) is an error: an unreachable Redis gives a client that
    /// starts degraded and connects as soon as Redis answers.
    pub async fn connect(url: &str, opts: RedisOptions) -> Result<Redis, RedisError> {
        let target = target(url, &opts)?;
        let kind = match target {
            Target::Single(_) => "standalone",
            Target::Cluster(_) => "cluster",
        };
        let inner = Arc::new(Inner {
            target,
            opts,
            conn: RwLock::new(None),
            up: AtomicBool::new(false),
            script: Script::new(GCRA_LUA),
            attempt_lock: Script::new(ATTEMPT_LOCK_LUA),
            attempt_release: Script::new(ATTEMPT_RELEASE_LUA),
            refund: Script::new(GCRA_REFUND_LUA),
            pending: Mutex::new(VecDeque::new()),
            kind,
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("hj-redis".to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the redis runtime");
                        return;
                    }
                };
                rt.block_on(run(weak, ready_tx));
            })
            .map_err(|e| RedisError::Failed(format!("cannot start the redis thread: {e}")))?;
        let wait = inner.opts.connect_timeout * 2 + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, ready_rx).await;
        let redis = Redis { inner };
        if redis.is_up() {
            tracing::info!(kind, "redis connected");
        } else {
            tracing::warn!(
                kind,
                "redis unreachable at start; serving without it and retrying every {:?}",
                redis.inner.opts.probe_interval
            );
        }
        Ok(redis)
    }

    /// `standalone` or `cluster`.
    pub fn kind(&self) -> &'static str {
        self.inner.kind
    }

    /// Whether the circuit breaker is closed (Redis answered recently).
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.inner.opts.key_prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(':');
            }
            k.push_str(p);
        }
        k
    }

    fn fallback(&self) {
        if let Some(f) = &self.inner.opts.on_fallback {
            f();
        }
    }

    /// The connection, if the breaker is closed.
    fn begin(&self) -> Result<Conn, RedisError> {
        let conn = if self.is_up() {
            self.inner
                .conn
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        } else {
            None
        };
        conn.ok_or_else(|| {
            self.fallback();
            RedisError::Unavailable
        })
    }

    /// Runs one operation under the deadline; a connection fault opens the breaker.
    async fn finish<T>(
        &self,
        op: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, RedisError> {
        match tokio::time::timeout(self.inner.opts.op_timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.fallback();
                if is_connection_fault(&e) {
                    self.inner.trip(&e.to_string());
                } else {
                    tracing::debug!(error = %e, "redis command failed");
                }
                Err(RedisError::Failed(e.to_string()))
            }
            Err(_) => {
                self.fallback();
                self.inner.trip("operation timed out");
                Err(RedisError::Timeout)
            }
        }
    }

    /// One round trip.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        self.finish(async move { ::redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// Writes the invalidations deferred while Redis was down, on `c`, before the breaker
    /// closes. Returns whether they were all written.
    async fn flush_pending(&self, c: &Conn) -> bool {
        let pending: Vec<Pending> = {
            let mut q = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            q.drain(..).collect()
        };
        if pending.is_empty() {
            return true;
        }
        tracing::info!(
            count = pending.len(),
            "writing invalidations deferred while redis was down"
        );
        let mut all = true;
        for p in pending {
            let r = match &p {
                Pending::Session(id, ttl) => self.tombstone(c.clone(), id, *ttl).await,
                Pending::User(u, ttl) => self.revoke_user_now(c.clone(), *u, *ttl).await,
                Pending::Family(f, ttl) => self.family_mark(c.clone(), *f, *ttl).await,
            };
            if r.is_err() {
                all = false;
                self.inner.defer(p);
            }
        }
        all
    }
}

fn decode_hex(s: &str, out: &mut [u8; 32]) -> bool {
    let b = s.as_bytes();
    if b.len() != 64 {
        return false;
    }
    let val = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        match (val(b[2 * i]), val(b[2 * i + 1])) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

impl Inner {
    /// Opens the breaker (idempotent; logs the transition once).
    fn trip(&self, why: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                reason = why,
                "redis unreachable; serving locally (local rate limits, database reads) until it answers"
            );
        }
    }

    fn defer(&self, p: Pending) {
        let mut q = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if q.len() >= MAX_PENDING {
            q.pop_front();
        }
        q.push_back(p);
    }

    /// A fresh connection that answers PING, with the GCRA script loaded.
    async fn open(&self) -> Result<Conn, ::redis::RedisError> {
        let mut conn = match &self.target {
            Target::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(self.opts.connect_timeout)
                    .set_response_timeout(self.opts.op_timeout);
                Conn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                )
            }
            Target::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        };
        ::redis::cmd("PING").query_async::<Value>(&mut conn).await?;
        // SCRIPT LOAD once (on every primary of a cluster); calls are EVALSHA from then on.
        self.script.prepare_invoke().load_async(&mut conn).await?;
        Ok(conn)
    }

    async fn heartbeat(&self) -> bool {
        let conn = self
            .conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(mut conn) = conn else { return false };
        matches!(
            tokio::time::timeout(
                self.opts.op_timeout * 2,
                ::redis::cmd("PING").query_async::<Value>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        )
    }
}

/// The `hj-redis` thread: first connection, then the heartbeat / reconnect loop. Ends when the
/// client is dropped.
async fn run(weak: Weak<Inner>, ready: tokio::sync::oneshot::Sender<()>) {
    if let Some(inner) = weak.upgrade() {
        reconnect(inner).await;
    }
    let _ = ready.send(());
    loop {
        let interval = match weak.upgrade() {
            Some(inner) => inner.opts.probe_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.up.load(Ordering::Acquire) {
            if !inner.heartbeat().await {
                inner.trip("heartbeat failed");
            }
        } else {
            reconnect(inner).await;
        }
    }
}

async fn reconnect(inner: Arc<Inner>) {
    // The breaker may have opened on one slow answer while the connection is fine (a cluster
    // connection also heals by itself): keep a connection that answers.
    let existing = if inner.heartbeat().await {
        inner
            .conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    } else {
        None
    };
    let conn = match existing {
        Some(c) => c,
        None => match tokio::time::timeout(inner.opts.connect_timeout * 2, inner.open()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis connection attempt failed");
                return;
            }
            Err(_) => {
                tracing::debug!("redis connection attempt timed out");
                return;
            }
        },
    };
    let redis = Redis {
        inner: inner.clone(),
    };
    // Deferred invalidations first, then traffic: a session signed out while Redis was down
    // must not be served from a copy cached before.
    if !redis.flush_pending(&conn).await {
        return;
    }
    *inner.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
    inner.up.store(true, Ordering::Release);
    tracing::info!(kind = inner.kind, "redis reachable");
}
