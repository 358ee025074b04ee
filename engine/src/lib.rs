#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
//! The HelloJohn engine: per-core runtime, HTTP serving, routing, the auth domain, the hash
//! pool and metrics. See `docs/ARCHITECTURE.md` for the map.

pub mod admin;
pub mod app;
pub mod client_ip;
pub mod config;
pub mod conn;
pub mod directory;
pub mod handlers;
pub mod http;
pub mod key_reload;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod origins;
pub mod outbox;
pub mod ports;
pub mod router;
pub mod server;
pub mod webhook;

#[cfg(test)]
mod props;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use store::Store;

pub use config::Config;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Opens the configured store: PostgreSQL when `HELLOJOHN_DATABASE_URL` is set, else the
/// embedded SQLite database in the data dir (migrated on start).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &config.database_url {
        // One pool per shard (each event loop uses its own), the connection budget divided
        // among them. Opening checks the URL and TLS roots; the first call connects.
        let options = storage::postgres::PgOptions {
            pools: config.shards.max(1),
            max_open: config.db_max_open_conns,
            max_idle: config.db_max_idle_conns,
            max_lifetime: config.db_conn_max_lifetime,
            ..storage::postgres::PgOptions::default()
        };
        let store = storage::postgres::PgStore::open(url.expose(), options)
            .context("cannot open the PostgreSQL store (HELLOJOHN_DATABASE_URL)")?;
        return Ok(Arc::new(store));
    }
    // Owner-only when created here (it holds password hashes, token hashes, emails and the
    // development master key); an existing one keeps its mode, with a warning when other users
    // may use it.
    let created = store::files::create_private_dir(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    if !created {
        store::files::warn_if_open_to_others(&config.data_dir, "the data dir");
    }
    let path = config.data_dir.join("hellojohn.db");
    let readers = config.shards.clamp(2, 8);
    let store = storage::sqlite::SqliteStore::open(&path, readers)
        .with_context(|| format!("cannot open the embedded store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Unix seconds now: the clock is read once per request, at the boundary.
pub fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// Unix milliseconds now: the one reading of the wall clock (the webhook worker's leases and
/// backoff need milliseconds; requests use [`unix_now`]).
#[allow(clippy::disallowed_methods)]
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The Redis client when `HELLOJOHN_REDIS_URL` is set. A bad URL stops the start; an
/// unreachable Redis does not (the instance serves locally and connects when Redis answers).
pub async fn connect_redis(
    config: &Config,
    process: Arc<metrics::Process>,
) -> anyhow::Result<Option<storage::redis::Redis>> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    let options = storage::redis::RedisOptions {
        key_prefix: config.redis_key_prefix.clone(),
        on_fallback: Some(Arc::new(move || {
            process
                .redis_fallbacks_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })),
        ..Default::default()
    };
    let redis = storage::redis::Redis::connect(url.expose(), options)
        .await
        .context("HELLOJOHN_REDIS_URL")?;
    Ok(Some(redis))
}

/// The master key of `config` for `store`: `HELLOJOHN_MASTER_KEY`, or generated in the data dir
/// on first use only for the embedded store (see [`auth::MasterKey::resolve`]).
pub fn master_key(config: &Config, store: &dyn Store) -> anyhow::Result<auth::MasterKey> {
    let embedded = store.backend() == "sqlite";
    auth::MasterKey::resolve(
        config.master_key.as_ref().map(|s| s.expose()),
        &config.data_dir,
        embedded,
    )
    .context("master key")
}

/// The signing keys and the hash pool.
async fn build_auth(
    config: &Config,
    store: Arc<dyn Store>,
    master: &auth::MasterKey,
    process: Arc<metrics::Process>,
    limiter: Arc<auth::limiter::Limiter>,
    redis: Option<storage::redis::Redis>,
) -> anyhow::Result<auth::flows::Auth> {
    let keys = auth::KeyRing::load_or_create(
        store.as_ref(),
        master,
        unix_now(),
        config.signed_token_lifetime(),
    )
    .await
    .context("signing keys")?;
    let revocations = auth::revocations::Revocations::new();
    revocations
        .refresh(store.as_ref(), unix_now())
        .await
        .context("revoked access tokens")?;
    let params = config.argon2_params();
    let bounds = config.argon2_bounds();
    let workers = config.workers;
    let budget = config.hash_queue_budget;
    let idle_release = config.hash_arena_idle_release;
    // The pool times one hash at start to seed its admission estimate: off the runtime.
    let pool = tokio::task::spawn_blocking(move || {
        auth::HashPool::with_bounds(
            workers,
            params,
            bounds,
            budget,
            idle_release,
            process.hash.clone(),
        )
    })
    .await
    .context("hash pool start")?
    .context("hash pool")?;
    Ok(auth::flows::Auth {
        store,
        pool: Arc::new(pool),
        keys: Arc::new(keys),
        issuer: config.base_url.clone(),
        access_ttl: config.access_token_ttl,
        refresh_ttl: config.refresh_token_ttl,
        session_ttl: config.session_ttl,
        limiter,
        cache: redis.map(|r| Box::new(ports::RedisPorts(r)) as Box<dyn auth::ports::SessionCache>),
        csrf: auth::CsrfKey::from_bytes(master.derive("hellojohn/csrf/v1")),
        revocations: Arc::new(revocations),
        lifecycle: Some(lifecycle(config, master)?),
    })
}

/// MFA and the email flows: their settings, the master key (TOTP secrets are sealed under it)
/// and the mailer (templates are read here: a bad template stops the start).
fn lifecycle(config: &Config, master: &auth::MasterKey) -> anyhow::Result<auth::flows::Lifecycle> {
    let mailer = mail::EngineMailer::new(config, master.clone()).context("email templates")?;
    Ok(auth::flows::Lifecycle {
        master: master.clone(),
        mfa_issuer: config.mfa_issuer.clone(),
        totp: auth::mfa::TotpParams {
            window: config.mfa_totp_window,
            ..auth::mfa::TotpParams::default()
        },
        challenge_ttl: config.mfa_challenge_ttl,
        remember_ttl: config.mfa_remember_device_ttl,
        reauth_max_age: config.reauth_max_age,
        verify_ttl: config.email_verify_ttl,
        reset_ttl: config.password_reset_ttl,
        mailer: Arc::new(mailer),
    })
}

/// On the first start of an empty embedded store, creates tenant `local` and client
/// `local-app` so a newcomer can register and sign in at once. Returns them when created.
/// PostgreSQL stores are never seeded implicitly.
///
/// `origins` are the configured CORS origins (`HELLOJOHN_CORS_ORIGINS`): the app served from
/// each origin `O` may use the client, with the JS SDK's defaults: redirect URI `O/callback`,
/// post-logout redirect URI `O` and allowed origin `O`.
pub async fn bootstrap_embedded(
    store: &dyn Store,
    origins: &[String],
) -> anyhow::Result<Option<(store::Tenant, store::Client)>> {
    if store.backend() != "sqlite" || !store.list_tenants().await?.is_empty() {
        return Ok(None);
    }
    let now = unix_now();
    // The audit log says where they came from: nobody asked for them.
    let system = |action: &str| Some(store::AuditEntry::new(action, "system", now));
    let tenant = store
        .create_tenant(
            "local",
            "Local",
            Default::default(),
            now,
            system("tenant.create"),
        )
        .await?;
    let origins: Vec<String> = origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .filter(|o| o.starts_with("http://") || o.starts_with("https://"))
        .collect();
    let client = store
        .create_client(
            store::NewClient {
                redirect_uris: origins.iter().map(|o| format!("{o}/callback")).collect(),
                post_logout_redirect_uris: origins.clone(),
                allowed_origins: origins,
                ..store::NewClient::new(tenant.id, "local-app", "Local app")
            },
            now,
            system("client.create"),
        )
        .await?;
    Ok(Some((tenant, client)))
}

/// Makes the schema ready for serving. The embedded store migrates itself on start (there is
/// nobody else to run `hj migrate`); a shared database must already be migrated, because
/// migrations are run once, before a rolling update, not by every instance that starts.
pub async fn prepare_store(store: &dyn Store) -> anyhow::Result<()> {
    if store.backend() == "sqlite" {
        // After a rollback the embedded store holds a newer release's migrations too. With
        // every migration this release knows applied, it serves on that schema (migrations
        // only add within a release, docs/upgrading.md) instead of refusing to start; `hj
        // migrate` still refuses to migrate such a database.
        let status = store
            .migration_status()
            .await
            .context("reading the schema version")?;
        let newer = status.unknown();
        if !newer.is_empty() && status.pending().is_empty() {
            if store::tolerance::note("migration", &format!("{newer:?}")) {
                tracing::warn!(
                    newer = ?newer,
                    "the embedded store has migrations of a newer release; serving on its schema"
                );
            }
            return Ok(());
        }
        store
            .migrate()
            .await
            .context("migrating the embedded store")?;
        return Ok(());
    }
    let status = store
        .migration_status()
        .await
        .context("reading the schema version")?;
    if status.applied.is_empty() {
        anyhow::bail!("the database has no HelloJohn schema: run `hj migrate` first");
    }
    if !status.pending().is_empty() {
        anyhow::bail!(
            "the database lacks migrations {:?}: run `hj migrate` first",
            status.pending()
        );
    }
    Ok(())
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    app: Arc<app::App>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The webhook worker's thread.
    worker: Option<std::thread::JoinHandle<()>>,
    /// The mail worker's thread.
    mail_worker: Option<std::thread::JoinHandle<()>>,
    /// Dropped once the shards have stopped: the workers keep their runtimes (which may drive
    /// database connections the shards also use) until then.
    shards_done: Vec<tokio::sync::oneshot::Sender<()>>,
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
    pub fn join(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.shards_done.clear();
        for t in [self.worker.take(), self.mail_worker.take()]
            .into_iter()
            .flatten()
        {
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
    config.warn_unknown_settings();
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
    let redis = connect_redis(&config, hub.process.clone()).await?;
    let shared = redis
        .clone()
        .map(|r| Box::new(ports::RedisPorts(r)) as Box<dyn auth::ports::SharedLimiter>);
    let limiter = Arc::new(auth::limiter::Limiter::new(config.rates(), shared));
    let master = master_key(&config, store.as_ref())?;
    let auth = Arc::new(
        build_auth(
            &config,
            store.clone(),
            &master,
            hub.process.clone(),
            limiter.clone(),
            redis.clone(),
        )
        .await?,
    );
    let client_origins = Arc::new(origins::ClientOrigins::default());
    client_origins
        .refresh(store.as_ref())
        .await
        .context("reading the clients' allowed origins")?;
    let app = Arc::new(app::App {
        config,
        hub,
        lifecycle: app::Lifecycle::new(),
        store,
        auth,
        limiter,
        redis,
        client_origins,
        started: Instant::now(),
        version: VERSION,
    });
    let threads =
        server::spawn_shards(app.clone(), listeners, collectors).context("cannot start shards")?;
    // The webhook worker: its own thread, stopped by the same shutdown as the shards.
    let webhooks = webhook::worker::WebhookSettings::from_config(&app.config);
    let worker = outbox::Worker {
        store: app.store.clone(),
        redis: app.redis.clone(),
        process: app.hub.process.clone(),
        settings: webhooks.worker.clone(),
    };
    // The signing-key reloader: its own thread, ended when the server is gone (not joined).
    if let Err(e) = key_reload::spawn(
        app.auth.keys.clone(),
        app.auth.revocations.clone(),
        app.client_origins.clone(),
        app.store.clone(),
        app.config.key_reload_interval,
        app.lifecycle.subscribe(),
    ) {
        app.lifecycle.begin_shutdown();
        return Err(anyhow::Error::new(e).context("cannot start the signing-key reloader"));
    }
    let (shards_done, shards_stopped) = tokio::sync::oneshot::channel();
    let mut shards_done = vec![shards_done];
    let worker = match webhook::worker::spawn(
        worker,
        webhooks,
        master.clone(),
        app.lifecycle.subscribe(),
        shards_stopped,
    ) {
        Ok(t) => t,
        Err(e) => {
            app.lifecycle.begin_shutdown();
            return Err(anyhow::Error::new(e).context("cannot start the webhook worker"));
        }
    };
    // The mail worker, beside it. Without SMTP settings it sends nothing (mails stay in the
    // outbox, pending, until an instance that has them sends them) but still prunes.
    let mail_settings = mail::worker::MailSettings::from_config(&app.config);
    if mail_settings.smtp.is_none() {
        tracing::info!(
            "mail is disabled (HELLOJOHN_SMTP_HOST is not set): account mails stay in the \
             outbox, pending, until an instance with SMTP settings sends them"
        );
    }
    let (done, stopped) = tokio::sync::oneshot::channel();
    shards_done.push(done);
    let mailer = outbox::Worker {
        store: app.store.clone(),
        redis: app.redis.clone(),
        process: app.hub.process.clone(),
        settings: mail_settings.worker.clone(),
    };
    let mail_worker = match mail::worker::spawn(
        mailer,
        mail_settings,
        master,
        app.lifecycle.subscribe(),
        stopped,
    ) {
        Ok(t) => t,
        Err(e) => {
            app.lifecycle.begin_shutdown();
            return Err(anyhow::Error::new(e).context("cannot start the mail worker"));
        }
    };
    Ok(ServerHandle {
        addr,
        app,
        threads,
        worker: Some(worker),
        mail_worker: Some(mail_worker),
        shards_done,
    })
}
