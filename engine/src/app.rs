//! Process-wide state ([`App`], shared by all shards) and per-shard state ([`Shard`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use storage::redis::Redis;
use store::Store;
use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::{Hub, ShardMetrics};
use auth::flows::Auth;
use auth::limiter::Limiter;

/// Where the server is in its life. Shards watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// SIGTERM received: `/health` answers 503; listeners close after the shutdown delay.
    Draining,
}

pub struct Lifecycle {
    draining: AtomicBool,
    tx: watch::Sender<Phase>,
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        let (tx, _) = watch::channel(Phase::Running);
        Lifecycle {
            draining: AtomicBool::new(false),
            tx,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts the graceful shutdown. Idempotent.
    pub fn begin_shutdown(&self) {
        if !self.draining.swap(true, Ordering::SeqCst) {
            self.tx.send_replace(Phase::Draining);
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

/// Everything every shard shares. Read-only after start, except for interior atomics.
pub struct App {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub lifecycle: Lifecycle,
    pub store: Arc<dyn Store>,
    pub auth: Arc<Auth>,
    /// The rate limiter of this instance (Redis-backed when configured), shared by all shards.
    pub limiter: Arc<Limiter>,
    /// The Redis client, when `HELLOJOHN_REDIS_URL` is set.
    pub redis: Option<Redis>,
    /// The browser origins the clients registered (CORS and the same-site check).
    pub client_origins: Arc<crate::origins::ClientOrigins>,
    pub started: Instant,
    pub version: &'static str,
}

/// One event loop's state. Lives on its own thread (`Rc`, never `Send`).
pub struct Shard {
    pub index: usize,
    pub app: Arc<App>,
    pub metrics: ShardMetrics,
    /// Tenants and clients recently looked up by this shard.
    pub directory: crate::directory::Directory,
    /// Access tokens this shard verified, until they expire.
    pub verified_tokens: auth::token_cache::TokenCache,
    /// Users behind Bearer tokens and sessions, each trusted for a few seconds.
    pub users: auth::token_cache::UserCache,
    /// Prefix of this process's request ids, so ids from several instances do not collide.
    id_prefix: u32,
    seq: Cell<u64>,
}

impl Shard {
    pub fn new(index: usize, app: Arc<App>, metrics: ShardMetrics, id_prefix: u32) -> Shard {
        Shard {
            index,
            app,
            metrics,
            directory: crate::directory::Directory::default(),
            verified_tokens: auth::token_cache::TokenCache::default(),
            users: auth::token_cache::UserCache::default(),
            id_prefix,
            seq: Cell::new(0),
        }
    }

    /// A new request id: process prefix, shard, sequence.
    pub fn next_request_id(&self) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        format!("{:08x}-{:02x}-{:010x}", self.id_prefix, self.index, n)
    }
}
