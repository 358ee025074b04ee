//! The HelloJohn engine: per-core runtime, HTTP serving, routing, the auth domain, the hash
//! pool and metrics. See `docs/ARCHITECTURE.md` for the map.

pub mod app;
pub mod config;
pub mod handlers;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod router;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use storage::Store;

pub use config::Config;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Opens the configured store: PostgreSQL when `HELLOJOHN_DATABASE_URL` is set, else the
/// embedded SQLite database in the data dir (migrated on start).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.database_url.is_some() {
        anyhow::bail!("the PostgreSQL store is not available in this build yet");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let path = config.data_dir.join("hellojohn.db");
    let readers = config.shards.clamp(2, 8);
    let store = storage::sqlite::SqliteStore::open(&path, readers)
        .with_context(|| format!("cannot open the embedded store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    app: Arc<app::App>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn app(&self) -> &Arc<app::App> {
        &self.app
    }

    /// Begins the graceful shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        self.app.lifecycle.begin_shutdown();
    }

    /// Blocks until every shard has drained and stopped.
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Waits for the shards without blocking an async runtime.
    pub async fn wait(self) {
        let _ = tokio::task::spawn_blocking(move || self.join()).await;
    }
}

/// Binds the listeners, prepares the store and starts one shard per configured core.
pub async fn start(mut config: Config, store: Arc<dyn Store>) -> anyhow::Result<ServerHandle> {
    let listeners = server::bind_listeners(config.listen, config.shards)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listeners
        .first()
        .context("no listener")?
        .local_addr()
        .context("listener has no address")?;
    if config.listen.port() == 0 && config.base_url == "http://localhost:0" {
        config.base_url = format!("http://localhost:{}", addr.port());
    }
    let (hub, collectors) = metrics::Hub::new(listeners.len());
    let app = Arc::new(app::App {
        config,
        hub,
        lifecycle: app::Lifecycle::new(),
        store,
        started: Instant::now(),
        version: VERSION,
    });
    let threads =
        server::spawn_shards(app.clone(), listeners, collectors).context("cannot start shards")?;
    Ok(ServerHandle { addr, app, threads })
}
