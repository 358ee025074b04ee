//! Starts an engine in-process on port 0 with its own data dir and hands the test a client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::config::Config;

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

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hj-it-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(&[]).await
    }

    /// Starts with extra `HELLOJOHN_*` settings.
    pub async fn with(settings: &[(&str, &str)]) -> TestServer {
        let dir = temp_dir("srv");
        let mut map = base_settings(&dir);
        for (k, v) in settings {
            map.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_source(&map).unwrap();
        engine::logging::init(&config);
        let store = engine::open_store(&config).await.unwrap();
        store.migrate().await.unwrap();
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
