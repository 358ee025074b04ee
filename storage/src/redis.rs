//! Redis, optional shared state for several instances: the distributed GCRA rate limit, the
//! session cache, refresh-family revocation marks and the guards of webhook attempts.
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
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::model::CachedSession;
use crate::model::{Session, TokenHash, User};

/// The GCRA, run atomically inside Redis with Redis's own clock, so every instance shares one
/// clock and one theoretical arrival time (TAT) per subject.
///
/// KEYS[1]: the subject's TAT (microseconds, Redis time).
/// ARGV[1]: emission interval in µs (PERIOD / COUNT); ARGV[2]: burst (COUNT);
/// ARGV[3]: `1` takes one unit when allowed, `0` only looks.
/// Returns `{allowed, remaining, retry_after_us, reset_us}`.
pub const GCRA_LUA: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local period = interval * burst
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local v = tonumber(stored)
  if v and v > now then tat = v end
end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local remaining = math.floor((now - allow_at) / interval + 0.000001)
if take then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
  return {1, remaining, 0, math.ceil(new_tat - now)}
end
return {1, remaining, 0, math.ceil(tat - now)}
"#;

/// Gives back one unit taken by [`GCRA_LUA`]: the TAT moves back one interval (never before
/// now; a bucket that is full again is deleted). Used when an attempt taken before a password
/// check turns out to be a success, which must not count as a failure.
pub const GCRA_REFUND_LUA: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local v = tonumber(stored)
if not v then return 0 end
local tat = v - interval
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
end
return 1
"#;

/// Takes a webhook attempt's guard: `SET key token NX PX ttl`; when the key exists, its value
/// (another worker's token, or `delivered`). One round trip, one key.
/// Returns `{1, ''}` when taken, else `{0, value}`.
const WEBHOOK_LOCK_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ''}
end
local v = redis.call('GET', KEYS[1])
if not v then v = '' end
return {0, v}
"#;

/// Deletes a webhook attempt's guard only if `ARGV[1]` (the holder's token) still holds it.
const WEBHOOK_RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The value of an attempt's guard once the endpoint answered 2xx.
const WEBHOOK_DELIVERED: &str = "delivered";

/// One webhook attempt, as the Redis guard names it: a delivery, its redelivery generation and
/// the attempts it had made when it was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub delivery_id: Uuid,
    pub generation: u32,
    pub attempts: u32,
}

/// What [`Redis::webhook_lock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookLock {
    /// This worker holds the attempt: send it.
    Acquired,
    /// Another worker holds it (its lease may have expired in the database while it sends).
    Held,
    /// Another worker already got a 2xx for it.
    Delivered,
}

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
    webhook_lock: Script,
    webhook_release: Script,
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

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The JSON kept for a live session.
#[derive(Serialize, Deserialize)]
struct WireSession {
    uid: Uuid,
    tid: Uuid,
    email: String,
    email_verified: bool,
    name: Option<String>,
    custom: serde_json::Value,
    /// Absent from entries written by older instances (a rolling update): read as empty.
    #[serde(default = "empty_object")]
    app: serde_json::Value,
    disabled: bool,
    user_created_at: i64,
    client_id: String,
    created_at: i64,
    expires_at: i64,
}

impl WireSession {
    fn from_session(s: &Session) -> WireSession {
        WireSession {
            uid: s.user.id,
            tid: s.user.tenant_id,
            email: s.user.email.clone(),
            email_verified: s.user.email_verified,
            name: s.user.name.clone(),
            custom: s.user.custom_fields.clone(),
            app: s.user.app_metadata.clone(),
            disabled: s.user.disabled,
            user_created_at: s.user.created_at,
            client_id: s.client_id.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }

    fn into_session(self) -> Session {
        Session {
            user: User {
                id: self.uid,
                tenant_id: self.tid,
                email: self.email,
                email_verified: self.email_verified,
                name: self.name,
                custom_fields: self.custom,
                app_metadata: self.app,
                disabled: self.disabled,
                created_at: self.user_created_at,
            },
            client_id: self.client_id,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: None,
        }
    }
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
            webhook_lock: Script::new(WEBHOOK_LOCK_LUA),
            webhook_release: Script::new(WEBHOOK_RELEASE_LUA),
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

    /// One GCRA step for `subject` (e.g. `rl:sign_in:203.0.113.7`): `burst` units, one more
    /// every `interval`. `take` consumes a unit when allowed; otherwise the call only looks.
    pub async fn gcra(
        &self,
        subject: &str,
        interval: Duration,
        burst: u32,
        take: bool,
    ) -> Result<GcraReply, RedisError> {
        let mut c = self.begin()?;
        let key = self.key(&[subject]);
        let interval_us = interval.as_secs_f64() * 1e6;
        let script = &self.inner.script;
        let reply: Vec<i64> = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(interval_us).arg(burst).arg(u8::from(take));
                inv.invoke_async(&mut c).await
            })
            .await?;
        match reply.as_slice() {
            [allowed, remaining, retry_after, reset] => Ok(GcraReply {
                allowed: *allowed == 1,
                remaining: u64::try_from(*remaining).unwrap_or(0),
                retry_after: micros(*retry_after),
                reset: micros(*reset),
            }),
            _ => {
                self.fallback();
                Err(RedisError::Failed("unexpected GCRA reply".to_string()))
            }
        }
    }

    /// Gives back one unit of `subject` taken by [`Redis::gcra`] (see [`GCRA_REFUND_LUA`]).
    pub async fn gcra_refund(&self, subject: &str, interval: Duration) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.key(&[subject]);
        let interval_us = interval.as_secs_f64() * 1e6;
        let script = &self.inner.refund;
        let _: i64 = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(interval_us);
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(())
    }

    fn session_key(&self, id: &TokenHash) -> String {
        self.key(&["sess", &hex(id)])
    }

    fn user_sessions_key(&self, user_id: Uuid) -> String {
        self.key(&["usess", &user_id.to_string()])
    }

    fn family_key(&self, family_id: Uuid) -> String {
        self.key(&["fam", &family_id.to_string()])
    }

    /// The cached state of the session whose cookie hashes to `id`; `None` on a miss.
    pub async fn session_get(&self, id: &TokenHash) -> Result<Option<CachedSession>, RedisError> {
        let mut c = self.begin()?;
        let key = self.session_key(id);
        let v: Option<String> = self
            .finish(async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await })
            .await?;
        Ok(match v.as_deref() {
            None => None,
            Some(TOMBSTONE) => Some(CachedSession::Revoked),
            Some(json) => serde_json::from_str::<WireSession>(json)
                .ok()
                .map(|w| CachedSession::Live(Box::new(w.into_session()))),
        })
    }

    /// Caches a live session for `ttl`, unless the key already holds something (a sign-out's
    /// tombstone must win over a concurrent read that saw the session still live).
    pub async fn session_put(
        &self,
        id: &TokenHash,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let json = serde_json::to_string(&WireSession::from_session(session))
            .map_err(|e| RedisError::Failed(e.to_string()))?;
        let mut c = self.begin()?;
        let key = self.session_key(id);
        let set_key = self.user_sessions_key(session.user.id);
        let member = hex(id);
        let ms = millis(ttl);
        self.finish(async move {
            // First the user's list of cached sessions (so signing out everywhere reaches this
            // one), then the session itself.
            ::redis::pipe()
                .cmd("SADD")
                .arg(&set_key)
                .arg(member)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&set_key)
                .arg(ms)
                .ignore()
                .query_async::<()>(&mut c)
                .await?;
            ::redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Marks a session signed out for `ttl` (at least as long as any cached copy lives).
    /// When Redis is unreachable the mark is kept and written once it is back.
    pub async fn session_revoke(&self, id: &TokenHash, ttl: Duration) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.tombstone(c, id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::Session(*id, ttl));
        }
        r
    }

    /// `SET key value PX ttl`: the one write shared by the sign-out, family and webhook marks.
    async fn set_px(
        &self,
        mut c: Conn,
        key: String,
        value: &'static str,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let ms = millis(ttl);
        self.finish(async move {
            ::redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    async fn tombstone(&self, c: Conn, id: &TokenHash, ttl: Duration) -> Result<(), RedisError> {
        self.set_px(c, self.session_key(id), TOMBSTONE, ttl).await
    }

    /// Marks every cached session of a user signed out (sign-out everywhere).
    pub async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.revoke_user_now(c, user_id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::User(user_id, ttl));
        }
        r
    }

    async fn revoke_user_now(
        &self,
        c: Conn,
        user_id: Uuid,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let set_key = self.user_sessions_key(user_id);
        let mut c2 = c.clone();
        let members: Vec<String> = self
            .finish(async move {
                ::redis::cmd("SMEMBERS")
                    .arg(set_key)
                    .query_async(&mut c2)
                    .await
            })
            .await?;
        for m in members {
            let mut id = [0u8; 32];
            if decode_hex(&m, &mut id) {
                self.tombstone(c.clone(), &id, ttl).await?;
            }
        }
        let mut c = c;
        let set_key = self.user_sessions_key(user_id);
        self.finish(async move {
            ::redis::cmd("DEL")
                .arg(set_key)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Marks a refresh family revoked for `ttl`: a fast "no" before the database is asked.
    pub async fn family_revoke(&self, family_id: Uuid, ttl: Duration) -> Result<(), RedisError> {
        let r = match self.begin() {
            Ok(c) => self.family_mark(c, family_id, ttl).await,
            Err(e) => Err(e),
        };
        if r.is_err() {
            self.inner.defer(Pending::Family(family_id, ttl));
        }
        r
    }

    async fn family_mark(&self, c: Conn, family_id: Uuid, ttl: Duration) -> Result<(), RedisError> {
        self.set_px(c, self.family_key(family_id), "1", ttl).await
    }

    /// Whether the family was marked revoked recently. `false` means "ask the database".
    pub async fn family_revoked(&self, family_id: Uuid) -> Result<bool, RedisError> {
        let mut c = self.begin()?;
        let key = self.family_key(family_id);
        self.finish(async move {
            ::redis::cmd("EXISTS")
                .arg(key)
                .query_async::<bool>(&mut c)
                .await
        })
        .await
    }

    fn webhook_key(&self, attempt: &WebhookAttempt) -> String {
        self.key(&[
            "wh",
            &attempt.delivery_id.to_string(),
            &attempt.generation.to_string(),
            &attempt.attempts.to_string(),
        ])
    }

    /// Takes the guard of a webhook attempt for `ttl` with `token`, unless another worker holds
    /// it or already delivered it.
    pub async fn webhook_lock(
        &self,
        attempt: &WebhookAttempt,
        token: Uuid,
        ttl: Duration,
    ) -> Result<WebhookLock, RedisError> {
        let mut c = self.begin()?;
        let key = self.webhook_key(attempt);
        let script = &self.inner.webhook_lock;
        let (taken, value): (i64, String) = self
            .finish(async move {
                let mut inv = script.key(key);
                inv.arg(token.to_string()).arg(millis(ttl));
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(match (taken, value.as_str()) {
            (1, _) => WebhookLock::Acquired,
            (_, WEBHOOK_DELIVERED) => WebhookLock::Delivered,
            // Gone between the SET and the GET (it expired): held a moment ago; the next claim
            // after the database lease ends tries again.
            _ => WebhookLock::Held,
        })
    }

    /// Drops the guard of an attempt that failed, if `token` still holds it, so that the retry
    /// (a new attempt, a new key) is not delayed and the key does not linger.
    pub async fn webhook_release(
        &self,
        attempt: &WebhookAttempt,
        token: Uuid,
    ) -> Result<(), RedisError> {
        let mut c = self.begin()?;
        let key = self.webhook_key(attempt);
        let script = &self.inner.webhook_release;
        self.finish(async move {
            let mut inv = script.key(key);
            inv.arg(token.to_string());
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// Marks an attempt delivered for `ttl`: a worker that claims it again (its database update
    /// was lost) records it as delivered instead of sending it again.
    pub async fn webhook_delivered(
        &self,
        attempt: &WebhookAttempt,
        ttl: Duration,
    ) -> Result<(), RedisError> {
        let c = self.begin()?;
        self.set_px(c, self.webhook_key(attempt), WEBHOOK_DELIVERED, ttl)
            .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_become_node_urls() {
        assert_eq!(
            cluster_nodes("redis+cluster://n1:6379,n2:6380,n3/0").unwrap(),
            ["redis://n1:6379/", "redis://n2:6380/", "redis://n3:6379/"]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://u:p%40ss@a:1,[::1]:2").unwrap(),
            ["rediss://u:p%40ss@a:1/", "rediss://u:p%40ss@[::1]:2/"]
        );
        assert!(cluster_nodes("redis+cluster://a:1,b:2/3").is_err());
        assert!(cluster_nodes("redis+cluster:///0").is_err());
    }

    #[test]
    fn targets_by_scheme() {
        let o = RedisOptions::default();
        assert!(matches!(
            target("redis://127.0.0.1:6379/0", &o),
            Ok(Target::Single(_))
        ));
        assert!(matches!(
            target("rediss://h:6380", &o),
            Ok(Target::Single(_))
        ));
        assert!(matches!(
            target("redis+cluster://a:1,b:2/0", &o),
            Ok(Target::Cluster(_))
        ));
        assert!(matches!(
            target("rediss+cluster://a:1,b:2", &o),
            Ok(Target::Cluster(_))
        ));
        let err = target("http://user:hunter2@h", &o)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn hex_round_trip() {
        let id: TokenHash = core::array::from_fn(|i| (i * 7) as u8);
        let mut back = [0u8; 32];
        assert!(decode_hex(&hex(&id), &mut back));
        assert_eq!(back, id);
        assert!(!decode_hex("zz", &mut back));
    }

    #[test]
    fn sessions_survive_the_wire() {
        let s = Session {
            user: User {
                id: Uuid::now_v7(),
                tenant_id: Uuid::now_v7(),
                email: "ada@example.com".into(),
                email_verified: false,
                name: Some("Ada".into()),
                custom_fields: serde_json::json!({"plan": "pro"}),
                app_metadata: serde_json::json!({"role": "admin"}),
                disabled: false,
                created_at: 5,
            },
            client_id: "web".into(),
            created_at: 10,
            expires_at: 20,
            revoked_at: None,
        };
        let json = serde_json::to_string(&WireSession::from_session(&s)).unwrap();
        let back = serde_json::from_str::<WireSession>(&json)
            .unwrap()
            .into_session();
        assert_eq!(back, s);
    }

    /// Entries cached by an instance that predates app metadata (during a rolling update)
    /// still read, with empty app metadata.
    #[test]
    fn sessions_cached_before_app_metadata_still_read() {
        let old = serde_json::json!({
            "uid": Uuid::now_v7(), "tid": Uuid::now_v7(), "email": "ada@example.com",
            "email_verified": false, "name": null, "custom": {"plan": "pro"}, "disabled": false,
            "user_created_at": 5, "client_id": "web", "created_at": 10, "expires_at": 20,
        });
        let back = serde_json::from_value::<WireSession>(old)
            .unwrap()
            .into_session();
        assert_eq!(back.user.app_metadata, serde_json::json!({}));
        assert_eq!(back.user.custom_fields, serde_json::json!({"plan": "pro"}));
    }
}

/// Property tests (see docs/testing.md): any `HELLOJOHN_REDIS_URL` is taken apart or refused,
/// and any session JSON read back from Redis decodes or is refused, never a panic.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::{cluster_nodes, target, RedisOptions, WireSession};

    fn url() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(
            &[
                "redis://",
                "rediss://",
                "redis+cluster://",
                "rediss+cluster://",
                "redis:/",
                "http://",
                "",
            ][..],
        );
        let user = prop::sample::select(&["", "u:p@", ":p@", "@", "a@b@"][..]);
        let hosts = prop::collection::vec(
            prop::sample::select(
                &[
                    "h",
                    "h:6379",
                    "[::1]",
                    "[::1]:7000",
                    "h:",
                    ":",
                    "h:x",
                    "",
                    " ",
                ][..],
            ),
            0..4,
        );
        let tail = prop::sample::select(
            &[
                "",
                "/",
                "/0",
                "/1",
                "/x",
                "?a=b",
                "#f",
                "/0?protocol=resp3",
                "//",
            ][..],
        );
        (scheme, user, hosts, tail).prop_map(|(s, u, h, t)| format!("{s}{u}{}{t}", h.join(",")))
    }

    proptest! {
        #![proptest_config({
            let mut c = ProptestConfig::default();
            if std::env::var_os("PROPTEST_CASES").is_none() { c.cases = 512; }
            c
        })]

        #[test]
        fn redis_urls_parse_or_are_refused(text in prop_oneof![any::<String>(), url()]) {
            if let Ok(nodes) = cluster_nodes(&text) {
                prop_assert!(!nodes.is_empty());
                for n in &nodes {
                    prop_assert!(n.starts_with("redis://") || n.starts_with("rediss://"), "{}", n);
                }
            }
            let _ = target(&text, &RedisOptions::default());
        }

        #[test]
        fn cached_sessions_decode_or_are_refused(json in prop_oneof![
            any::<String>(),
            prop::collection::vec(
                prop::sample::select(&[
                    "{", "}", "[", "]", ",", ":", "\"uid\"", "\"tid\"", "\"custom\"", "\"exp\"",
                    "\"00000000-0000-0000-0000-000000000000\"", "1", "-1", "null", "\"x\"",
                ][..]),
                0..40,
            )
            .prop_map(|t| t.concat()),
            (1usize..5_000).prop_map(|n| format!("{{\"custom\":{}1{}}}", "[".repeat(n), "]".repeat(n))),
        ]) {
            let _ = serde_json::from_str::<WireSession>(&json);
        }
    }
}
