//! Starts an engine in-process on port 0 with its own data dir and hands the test a client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::config::Config;
use testkit::pg::with_database;
use testkit::require_env;

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    handle: Option<engine::ServerHandle>,
}

/// Settings every test server gets unless the test overrides them: loopback, port 0, cheap
/// Argon2, no rate limits.
fn base_settings(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("HELLOJOHN_LISTEN", "127.0.0.1:0"),
        ("HELLOJOHN_SHARDS", "1"),
        ("HELLOJOHN_WORKERS", "1"),
        ("HELLOJOHN_ARGON2_MEMORY_KIB", "64"),
        ("HELLOJOHN_ARGON2_ITERATIONS", "1"),
        ("HELLOJOHN_RATE_LIMIT_ENABLED", "false"),
        ("HELLOJOHN_LOG", "warn"),
    ] {
        m.insert(k.to_string(), v.to_string());
    }
    m.insert("HELLOJOHN_DATA_DIR".into(), dir.display().to_string());
    m
}

/// The master key test servers use with PostgreSQL (where none is generated).
pub const TEST_MASTER_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Which store the suite runs on: `HJ_TEST_STORE` = `sqlite` (default), `postgres` (direct) or
/// `pgbouncer` (PostgreSQL through PgBouncer in transaction mode). `scripts/test.sh` runs the
/// suite once per store.
pub fn test_store() -> String {
    std::env::var("HJ_TEST_STORE").unwrap_or_else(|_| "sqlite".to_string())
}

/// A fresh, empty database for one test server, when the suite runs on PostgreSQL.
pub async fn test_store_url() -> Option<String> {
    let store = test_store();
    if store == "sqlite" {
        return None;
    }
    let db = testkit::pg::create_database("hj_it").await;
    Some(match store.as_str() {
        "postgres" => with_database(&require_env("HJ_TEST_DATABASE_URL"), &db),
        "pgbouncer" => with_database(&require_env("HJ_TEST_PGBOUNCER_URL"), &db),
        other => panic!("HJ_TEST_STORE={other}: expected sqlite, postgres or pgbouncer"),
    })
}

/// A fresh directory for one test server, owner-only as a real data dir should be (the server
/// warns at start about one that others can read).
pub fn temp_dir(tag: &str) -> PathBuf {
    testkit::temp_dir(&format!("it-{tag}"))
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(&[]).await
    }

    /// Starts with extra `HELLOJOHN_*` settings.
    pub async fn with(settings: &[(&str, &str)]) -> TestServer {
        TestServer::with_options(settings, StartOptions::default()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The metrics page as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    pub fn handle(&self) -> &engine::ServerHandle {
        self.handle.as_ref().unwrap()
    }

    /// Shuts down gracefully and waits for the shards.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.wait().await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            // Not joined: a test that fails should not hang on a stuck connection.
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of one sample line of the Prometheus text, e.g.
/// `metric(&text, r#"hellojohn_http_requests_total{method="GET",path="/ping",status="200"}"#)`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// A tenant and one of its clients, created directly in the store of a test server.
pub struct Fixture {
    pub tenant: store::Tenant,
    pub client: store::Client,
}

impl Fixture {
    /// The tenant's slug.
    pub fn slug(&self) -> &str {
        &self.tenant.slug
    }

    /// The client's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }
}

/// A password that satisfies the policy (length, upper, lower, digit).
pub const PASSWORD: &str = "Correct-Horse-42";

impl TestServer {
    /// The server's store (the same one its handlers use).
    pub fn store(&self) -> std::sync::Arc<dyn store::Store> {
        self.handle().app().store.clone()
    }

    /// Creates tenant `slug` with one client `client_id` through the store.
    pub async fn fixture_with(&self, slug: &str, client_id: &str) -> Fixture {
        let store = self.store();
        let now = engine::unix_now();
        let tenant = store
            .create_tenant(slug, slug, Default::default(), now, None)
            .await
            .unwrap();
        let client = self.add_client(&tenant, client_id).await;
        Fixture { tenant, client }
    }

    /// Tenant `acme` with client `acme-web`.
    pub async fn fixture(&self) -> Fixture {
        self.fixture_with("acme", "acme-web").await
    }

    /// Another client in an existing tenant.
    pub async fn add_client(&self, tenant: &store::Tenant, client_id: &str) -> store::Client {
        self.store()
            .create_client(
                store::NewClient::new(tenant.id, client_id, client_id),
                engine::unix_now(),
                None,
            )
            .await
            .unwrap()
    }

    /// What `hj serve` does on a fresh embedded store: tenant `local`, client `local-app`.
    /// On PostgreSQL nothing is created implicitly: the same tenant and client are made
    /// through the store, as an operator would with `hj tenant create` / `hj client create`.
    pub async fn bootstrap(&self) -> Fixture {
        let origins = self.handle().app().config.cors_origins.clone();
        let created = engine::bootstrap_embedded(self.store().as_ref(), &origins)
            .await
            .unwrap();
        if test_store() != "sqlite" {
            assert!(
                created.is_none(),
                "PostgreSQL stores are never seeded implicitly"
            );
            let store = self.store();
            let now = engine::unix_now();
            let tenant = store
                .create_tenant("local", "Local", Default::default(), now, None)
                .await
                .unwrap();
            let client = store
                .create_client(
                    store::NewClient::new(tenant.id, "local-app", "Local app"),
                    now,
                    None,
                )
                .await
                .unwrap();
            return Fixture { tenant, client };
        }
        let (tenant, client) = created.expect("a fresh embedded store is bootstrapped");
        Fixture { tenant, client }
    }

    /// A form-encoded POST.
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    /// A JSON POST with an `Authorization: Bearer` header.
    pub async fn post_json_bearer(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A GET with an `Authorization: Bearer` header.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Registers `email` with [`PASSWORD`]; panics unless the answer is 200. Returns the body.
    pub async fn register(&self, fx: &Fixture, email: &str) -> serde_json::Value {
        let resp = self
            .post_json(
                "/v2/auth/register",
                &serde_json::json!({
                    "tenant_id": fx.slug(),
                    "client_id": fx.client_id(),
                    "email": email,
                    "password": PASSWORD,
                }),
            )
            .await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "register {email}: {body}");
        body
    }

    /// Signs `email` in with `password` (JSON). Returns status and body.
    pub async fn login(
        &self,
        fx: &Fixture,
        email: &str,
        password: &str,
    ) -> (u16, serde_json::Value) {
        let resp = self
            .post_json(
                "/v2/auth/login",
                &serde_json::json!({
                    "tenant_id": fx.slug(),
                    "client_id": fx.client_id(),
                    "email": email,
                    "password": password,
                }),
            )
            .await;
        status_and_json(resp).await
    }

    /// `POST /v2/auth/refresh` (JSON). Returns status and body.
    pub async fn refresh(&self, client_id: &str, token: &str) -> (u16, serde_json::Value) {
        let resp = self
            .post_json(
                "/v2/auth/refresh",
                &serde_json::json!({ "client_id": client_id, "refresh_token": token }),
            )
            .await;
        status_and_json(resp).await
    }

    /// A metric series of the current `/metrics` page, 0 when absent.
    pub async fn metric_value(&self, series: &str) -> f64 {
        metric(&self.metrics().await, series).unwrap_or(0.0)
    }
}

/// The status and JSON body of a response (`Null` for an empty body).
pub async fn status_and_json(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "status {status}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, body)
}

/// The `Set-Cookie` header values of a response, raw.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value of cookie `name` among raw `Set-Cookie` headers.
pub fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        let first = c.split(';').next()?.trim();
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// How [`TestServer::with_options`] starts a server beyond its settings.
#[derive(Default)]
pub struct StartOptions {
    /// Prefix of this server's Redis keys, so tests sharing one Redis stay apart.
    pub redis_key_prefix: Option<String>,
    /// Serve from this store (another server's): two instances of one deployment.
    pub store: Option<std::sync::Arc<dyn store::Store>>,
    /// Changes to the configuration that have no `HELLOJOHN_*` setting (webhook backoff, lease).
    pub configure: Option<fn(&mut Config)>,
}

impl TestServer {
    /// Starts with extra `HELLOJOHN_*` settings and [`StartOptions`].
    pub async fn with_options(settings: &[(&str, &str)], options: StartOptions) -> TestServer {
        let dir = temp_dir("srv");
        let mut map = base_settings(&dir);
        for (k, v) in settings {
            map.insert(k.to_string(), v.to_string());
        }
        if options.store.is_none() && !map.contains_key("HELLOJOHN_DATABASE_URL") {
            if let Some(url) = test_store_url().await {
                map.insert("HELLOJOHN_DATABASE_URL".into(), url);
                map.entry("HELLOJOHN_MASTER_KEY".into())
                    .or_insert_with(|| TEST_MASTER_KEY.to_string());
            }
        }
        let mut config = Config::from_source(&map).unwrap();
        if let Some(prefix) = options.redis_key_prefix {
            config.redis_key_prefix = prefix;
        }
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        engine::logging::init(&config);
        let store = match options.store {
            Some(store) => store,
            None => {
                let store = engine::open_store(&config).await.unwrap();
                store.migrate().await.unwrap();
                store
            }
        };
        let handle = engine::start(config, store).await.unwrap();
        let addr = handle.addr();
        TestServer {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            dir,
            handle: Some(handle),
        }
    }

    /// `GET /health`: status and body.
    pub async fn health(&self) -> (u16, serde_json::Value) {
        status_and_json(self.get("/health").await).await
    }
}
